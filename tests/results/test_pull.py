"""`launch.py pull` (in-process: cluster.results.pull.main, and in a subprocess as a user runs it) against sweeps in a
local folder and in the emulator."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from cluster.results.manifest import write_sweep_manifest
from cluster.results.pull import main as pull
from cluster.results.uploader import TrialUploader
from cluster.store import open_store
from cluster.store.pointers import read_json
from tests.conftest import run_launch

from .jobdir import JobFolder

VALUES = {"0": 0.5, "1": 0.2, "2": 0.9}  # val_loss per trial: trial 1 is best, then 0


def model_bytes(tmp_path, seed: int) -> bytes:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / f"model-{seed}.keras"
    model.save(path)
    return path.read_bytes()


def make_sweep(store, tmp_path, checkpoints=None) -> dict:
    """Three finished trials uploaded as the launcher's trials upload them, then the sweep manifest."""
    saved = {}
    for trial, value in VALUES.items():
        job = JobFolder(tmp_path / f"job{trial}")
        uploader = TrialUploader(store, "sw", trial, job.path, "val_loss", "min", sync_seconds=0.2)
        data = (checkpoints or {}).get(trial) or model_bytes(tmp_path, int(trial))
        uploader.on_epoch_end(*job.end_epoch(1, value, checkpoint=data))
        job.finish()
        assert not uploader.close(timeout=30).failures
        saved[trial] = data
    write_sweep_manifest(store, "sw", command=["launch.py", "-m", "lr=1,2,3"])
    return saved


def lambda_model_bytes(tmp_path) -> bytes:
    """A real .keras file that keras.models.load_model(safe_mode=True) refuses: it holds a Python lambda."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Dense(3)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path.read_bytes()


def snapshot(folder: Path) -> dict:
    """Every path under `folder` (the folder itself included) with its bytes, or None for a folder."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in [folder, *folder.rglob("*")]}


def a_users_folder(work: Path) -> Path:
    """`work/best` holding files a pull of sweep `sw` would otherwise write, and files of the user's own."""
    target = work / "best"
    (target / "notes").mkdir(parents=True)
    (target / "best.json").write_text('{"mine": true}')
    (target / "best.keras").write_bytes(b"my own model")
    (target / "notes" / "todo.txt").write_text("keep me")
    return target


def system_staging() -> set:
    """Staging folders in the system's temporary folder (the fallback when nothing beside the target is writable)."""
    return set(Path(tempfile.gettempdir()).glob("raylaunch-pull-staging-*"))


@pytest.fixture
def sweep(store_uri, tmp_path):
    store = open_store(store_uri)
    return store, make_sweep(store, tmp_path)


def test_list_shows_sweeps_trials_and_best_metric(sweep, store_uri, capsys):
    assert pull(["--list", store_uri]) == 0
    out = capsys.readouterr().out
    assert f"{store_uri}/sw  [finished]  best: trial 1, val_loss 0.2000 (min)" in out
    for trial, value in VALUES.items():
        assert f"  {trial}      {value:.4f}" in out


def test_pull_best_verifies_and_loads_the_model(sweep, store_uri, tmp_path, capsys):
    store, saved = sweep
    target = tmp_path / "best"
    assert pull([f"{store_uri}/sw", "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert "#1 trial 1: val_loss 0.2000 at epoch 1" in out and "loads: 15 parameters" in out
    assert (target / "best.keras").read_bytes() == saved["1"]
    assert json.loads((target / "best.json").read_text())["trial"] == "1"
    assert json.loads((target / "metrics.json").read_text())["best_value"] == 0.2
    assert (target / "resolved_config.yaml").is_file()
    assert sorted(p.name for p in target.iterdir()) == [
        "best.json", "best.keras", "metrics.json", "resolved_config.yaml"
    ]

    manifest = json.loads(store.read_bytes("sw/manifest.json")[0])
    assert manifest["best_trial"] == "1" and manifest["command"] == "launch.py -m lr=1,2,3"
    assert set(manifest["resolved_configs"]) == {"0", "1", "2"} and manifest["versions"]["keras"]


def test_pull_top_k_puts_each_trial_in_its_folder(sweep, store_uri, tmp_path):
    _, saved = sweep
    target = tmp_path / "top"
    assert pull([f"{store_uri}/sw", "--top", "2", "--to", str(target), "--tensorboard"]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["0", "1"]
    assert (target / "0" / "best.keras").read_bytes() == saved["0"]
    assert (target / "1" / "tensorboard" / "train" / "events.out.tfevents.1.host.1.v2").is_file()


def test_pull_never_overwrites_silently(sweep, store_uri, tmp_path, capsys):
    target = tmp_path / "best"
    target.mkdir()
    (target / "best.keras").write_bytes(b"my own work")
    assert pull([f"{store_uri}/sw", "--to", str(target), "--no-load-check"]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "--overwrite" in err
    assert (target / "best.keras").read_bytes() == b"my own work"
    assert not (target / "metrics.json").exists()  # nothing was half-done either
    assert pull([f"{store_uri}/sw", "--to", str(target), "--overwrite", "--no-load-check"]) == 0
    assert (target / "best.keras").read_bytes() != b"my own work"


def test_pull_refuses_a_model_keras_cannot_load(store_uri, tmp_path, capsys):
    store = open_store(store_uri)
    make_sweep(store, tmp_path, checkpoints={t: b"PK not a model " + t.encode() for t in VALUES})
    assert pull([f"{store_uri}/sw", "--to", str(tmp_path / "best")]) == 1
    assert "does not load with keras.models.load_model(safe_mode=True)" in capsys.readouterr().err


def test_corrupted_object_in_the_bucket_is_refused(gcs_disk, tmp_path, capsys):
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp")
    make_sweep(store, tmp_path)
    key = read_json(store, "sw/trials/1/best.json")[0]["checkpoint"]["key"]
    on_disk = server.object_file(bucket, f"exp/{key}")
    data = bytearray(on_disk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size: only a checksum notices
    on_disk.write_bytes(bytes(data))

    target = tmp_path / "best"
    before = sorted(tmp_path.iterdir())
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and key in err
    assert sorted(tmp_path.iterdir()) == before  # no target, no model, no staging folder, no half of the files


def test_corrupted_file_in_a_local_store_is_refused(tmp_path, capsys):
    uri = str(tmp_path / "results")
    store = open_store(uri)
    make_sweep(store, tmp_path)
    key = read_json(store, "sw/trials/1/best.json")[0]["checkpoint"]["key"]
    path = tmp_path / "results" / key
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))

    target = tmp_path / "best"
    before = sorted(tmp_path.iterdir())
    assert pull([f"{uri}/sw", "--to", str(target)]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == before


def test_object_names_that_would_escape_the_target_are_refused(gcs, tmp_path, capsys):
    from google.cloud import storage

    _, bucket = gcs
    store = open_store(f"gs://{bucket}/exp")
    make_sweep(store, tmp_path)
    raw = storage.Client().bucket(bucket)
    escape = "../" * 6 + "escaped.txt"
    raw.blob(f"exp/sw/trials/1/tensorboard/{escape}").upload_from_string(b"evil")

    target = tmp_path / "deep" / "er" / "best"
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target), "--tensorboard", "--no-load-check"]) == 1
    assert "Refusing object name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path / "deep").exists()  # refused while planning, before any download or folder

    # A pointer naming a checkpoint outside the trial's folder is refused too.
    record, _ = read_json(store, "sw/trials/1/best.json")
    record["checkpoint"]["key"] = "sw/trials/1/checkpoints/../../../../outside.keras"
    raw.blob("exp/sw/trials/1/best.json").upload_from_string(json.dumps(record))
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target), "--no-load-check"]) == 1
    assert "Refusing checkpoint name" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists()
    target.mkdir(parents=True)
    (target / "best.json").write_text("mine")
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target), "--overwrite", "--no-load-check"]) == 1
    assert "Refusing checkpoint name" in capsys.readouterr().err
    assert snapshot(tmp_path / "deep") == {".": None, "er": None, "er/best": None, "er/best/best.json": b"mine"}


@pytest.mark.parametrize("argv, message", [
    (["gs://my-bucket", "--to", "x"], "names no sweep"),
    (["gs://Bad_Bucket/sw", "--to", "x"], "breaks Cloud Storage's rules"),
])
def test_bad_pull_arguments_say_what_to_type(argv, message, capsys):
    assert pull(argv) == 1
    assert message in capsys.readouterr().err


def test_safe_join_refuses_climbing_and_symlinks_out_of_the_target(tmp_path):
    from cluster.results.pull import safe_join
    from cluster.store import UnsafePath

    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (target / "link").symlink_to(tmp_path / "elsewhere")
    assert safe_join(target, "a/b.txt") == target / "a" / "b.txt"
    for name in ["../x", "/etc/passwd", "a/../../x", "link/x", "a\\..\\x", ""]:
        with pytest.raises(UnsafePath):
            safe_join(target, name)


# ---------------------------------------------------------------- a refused pull leaves the target as it was
def test_launch_pull_refusing_a_lambda_model_leaves_the_target_as_it_was(store_uri, tmp_path):
    """Issue 25: `python launch.py pull STORE/SWEEP --to ./best` with a best checkpoint that safe mode refuses
    (a Lambda layer) exits 1 and installs nothing, even with --overwrite over the user's own files."""
    store = open_store(store_uri)
    make_sweep(store, tmp_path, checkpoints={"1": lambda_model_bytes(tmp_path)})
    work = tmp_path / "work"
    a_users_folder(work)
    before, temp_before = snapshot(work), system_staging()

    result = run_launch("pull", f"{store_uri}/sw", "--to", "./best", "--overwrite", cwd=work, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert snapshot(work) == before  # the user's files byte for byte, nothing new, no staging folder beside
    assert system_staging() == temp_before
    refusal = [line for line in result.stderr.splitlines() if line.startswith("pull: error: ")]
    assert len(refusal) == 1, result.stderr
    assert "pull refused, ./best left as it was" in refusal[0] and "Lambda" in refusal[0]
    assert "trial 1's model" in refusal[0]
    assert "does not load with keras.models.load_model(safe_mode=True)" in refusal[0]
    assert "#1 trial" not in result.stdout


def test_top_k_pull_with_one_lambda_model_creates_nothing(tmp_path, capsys):
    """--top 2: trial 1's model is fine, trial 0's holds a Lambda: neither is installed and the target
    (and its missing parent) are not created."""
    uri = str(tmp_path / "results")
    make_sweep(open_store(uri), tmp_path, checkpoints={"0": lambda_model_bytes(tmp_path)})
    work = tmp_path / "work"
    work.mkdir()
    (work / "other.txt").write_text("unrelated")
    before = snapshot(work)

    assert pull([f"{uri}/sw", "--top", "2", "--to", str(work / "pulls" / "top"), "--tensorboard"]) == 1
    assert snapshot(work) == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trial 0's model" in err and "Lambda" in err


def test_keep_staging_keeps_the_refused_files_outside_the_target(tmp_path, capsys):
    uri = str(tmp_path / "results")
    lambda_bytes = lambda_model_bytes(tmp_path)
    make_sweep(open_store(uri), tmp_path, checkpoints={"1": lambda_bytes})
    work = tmp_path / "work"
    target = a_users_folder(work)
    before = snapshot(target)

    assert pull([f"{uri}/sw", "--to", str(target), "--overwrite", "--keep-staging"]) == 1
    err = capsys.readouterr().err
    found = re.search(r"kept in (\S+) \(--keep-staging\)", err)
    assert found and "safe_mode=True" in err, err
    staging = Path(found.group(1))
    assert staging.is_dir() and not staging.resolve().is_relative_to(target.resolve())
    assert (staging / "best.keras").read_bytes() == lambda_bytes
    assert sorted(p.name for p in staging.iterdir()) == [
        "best.json", "best.keras", "metrics.json", "resolved_config.yaml"
    ]
    assert snapshot(target) == before


@pytest.mark.parametrize("backend", ["local", "gs"])
def test_checksum_mismatch_leaves_an_existing_target_as_it_was(backend, tmp_path, capsys, request):
    if backend == "gs":
        server, bucket = request.getfixturevalue("gcs_disk")
        uri = f"gs://{bucket}/exp"
    else:
        uri = str(tmp_path / "results")
    store = open_store(uri)
    make_sweep(store, tmp_path)
    key = read_json(store, "sw/trials/1/best.json")[0]["checkpoint"]["key"]
    on_disk = server.object_file(bucket, f"exp/{key}") if backend == "gs" else tmp_path / "results" / key
    data = bytearray(on_disk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    on_disk.write_bytes(bytes(data))
    work = tmp_path / "work"
    a_users_folder(work)
    before = snapshot(work)

    # Into a folder that does not exist yet: it still does not exist afterwards.
    assert pull([f"{uri}/sw", "--to", str(work / "new" / "best")]) == 1
    assert snapshot(work) == before
    for extra in ([], ["--overwrite"]):  # the existing files block it; with --overwrite the checksum does
        assert pull([f"{uri}/sw", "--to", str(work / "best"), *extra]) == 1
        assert snapshot(work) == before
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("pull: error: pull refused,") and key in err
    assert ("checksum mismatch" if backend == "gs" else "corrupt") in err


def test_a_failed_install_is_undone(tmp_path, capsys):
    """Every check passes, then a move fails (a file named like a trial's folder is in the way): the trials
    already moved into place are taken out again and their folders removed."""
    uri = str(tmp_path / "results")
    make_sweep(open_store(uri), tmp_path)
    target = tmp_path / "top"
    target.mkdir()
    (target / "0").write_text("a file, not trial 0's folder")  # trial 1 (the best) is installed first
    before = snapshot(target)

    assert pull([f"{uri}/sw", "--top", "2", "--to", str(target), "--no-load-check"]) == 1
    assert snapshot(target) == before
    assert "pull refused" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if "staging" in p.name) == []


def test_successful_pull_leaves_no_staging_folder(sweep, store_uri, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    assert pull([f"{store_uri}/sw", "--to", str(work / "a" / "best"), "--no-load-check", "--keep-staging"]) == 0
    assert sorted(snapshot(work)) == [".", "a", "a/best", "a/best/best.json", "a/best/best.keras",
                                      "a/best/metrics.json", "a/best/resolved_config.yaml"]
