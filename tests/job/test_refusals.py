"""Bad input as a new user meets it (issue 20): everything that can be checked cheaply is checked before
anything is printed, uploaded or started, and a refusal is one line with exit status 2, for a single job and
for a sweep alike. TensorFlow is made unimportable: a refusal must not need it."""

from __future__ import annotations

import pytest

from tests.conftest import run_launch

SINGLE = [
    (["model=mlp", "data=csv"], "Config error: data=csv needs data.path: a CSV file with a header row."),
    (["model=mlp", "data=csv", "data.path=no-such.csv"], "Config error: data.path: 'no-such.csv' does not exist"),
    (["data=image_folder"], "Config error: data=image_folder needs data.path: a folder with one sub-folder"),
    (["storage.uri=gs://"], "Storage error: Invalid storage URI 'gs://': no bucket name after gs://."),
    (["trainer.epochs=-1"], "Config error: Invalid value for `trainer.epochs`: received -1."),
    (["model=cnnn"], "Config error: model=cnnn: there is no such option in conf/model/."),
]


@pytest.mark.parametrize("overrides, first_words", SINGLE, ids=[" ".join(args) for args, _ in SINGLE])
def test_a_refused_job_prints_one_line_and_nothing_before_it(tmp_path, tensorflow_unimportable, overrides, first_words):
    store = tmp_path / "store"
    args = ([*overrides] if any(arg.startswith("storage.uri") for arg in overrides)
            else [*overrides, f"storage.uri={store}"])
    result = run_launch(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=tensorflow_unimportable)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout  # no watch line, no upload report
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(first_words), result.stderr
    assert not store.exists()  # nothing was uploaded


@pytest.mark.parametrize("overrides, first_words", [
    (["trainer.epochs=-1"],
     "Job #0 (trainer.epochs=-1) cannot run, so no job of this sweep was started: Invalid value"),
    (["model=mlp", "data=csv"],
     "Job #0 (model=mlp data=csv) cannot run, so no job of this sweep was started: data=csv"),
    (["model=cnnn,mlp"], "Config error: model=cnnn: there is no such option in conf/model/."),
], ids=["epochs", "csv-without-path", "unknown-option"])
def test_a_refused_sweep_exits_2_with_one_line(tmp_path, tensorflow_unimportable, overrides, first_words):
    result = run_launch("-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
                        env=tensorflow_unimportable)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith(first_words), \
        result.stderr
    assert "HYDRA_FULL_ERROR" not in result.stderr and "Watch it" not in result.stdout
