"""Every search preset of conf/hparams_search/ run as it ships (its num_samples, its scheduler, its
max_concurrent_trials) on the two-node cluster with a store: as many trials as it asks for, each its own job
with its own folder, leaderboard row and store prefix. Issue 19: the shipped optuna preset (4 trials at once)
numbered every trial job 0, kept one row of four and exited 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

from .conftest import read_json, sweep

PRESETS = sorted(path.stem for path in (PROJECT_ROOT / "conf" / "hparams_search").glob("*.yaml") if path.stem != "none")
# Small jobs; everything that shapes the search itself stays as shipped.
JOB = ["model=mlp", "data.max_train_samples=200", "trainer.epochs=2", "trainer.verbose=2",
       "trainer.callbacks.early_stopping.enabled=false", "lr=tag(log,interval(1e-4,1e-2))"]


def shipped_num_samples(preset: str) -> int:
    config = yaml.safe_load((PROJECT_ROOT / "conf" / "hparams_search" / f"{preset}.yaml").read_text()) or {}
    return int(config["hydra"]["sweeper"]["num_samples"])


def test_every_preset_is_run_here():
    assert PRESETS == ["asha", "hyperband", "optuna", "optuna_asha", "pbt", "random"]


@pytest.mark.slow  # 4 to 16 trials each, two at a time: 30-90 s a preset on 2 cores
@pytest.mark.parametrize("preset", PRESETS)
def test_a_preset_as_shipped_runs_every_trial_as_its_own_job(preset, tmp_path, two_node_cluster):
    expected = shipped_num_samples(preset)
    sweep_dir, store = tmp_path / "sweep", tmp_path / "store"
    result = sweep([f"hparams_search={preset}", *JOB, f"storage.uri={store}"], sweep_dir,
                   address=two_node_cluster.address, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((sweep_dir / "leaderboard.json").read_text())["trials"]
    assert sorted(row["job"] for row in rows) == list(range(expected)), rows
    assert len({row["trial_id"] for row in rows}) == expected
    assert all(row["status"] in ("COMPLETED", "STOPPED") for row in rows), rows
    for row in rows:  # each folder written by its own trial, and only by it
        record = read_json(sweep_dir / str(row["job"]) / "trial.json")
        assert record is not None and record["trial_id"] == row["trial_id"], (row, record)
        assert {attempt["pid"] for attempt in record["attempts"]}, record
    # The store: one prefix per trial, holding that trial's record, config and best checkpoint (also of a
    # trial a scheduler STOPPED: its process waits for its last uploads), a completed trial's final metrics.
    (stored_sweep,) = [path for path in store.iterdir() if path.is_dir()]
    trials = stored_sweep / "trials"
    assert sorted(int(path.name) for path in trials.iterdir()) == list(range(expected))
    for row in rows:
        stored = trials / str(row["job"])
        assert json.loads((stored / "trial.json").read_text())["trial_id"] == row["trial_id"], row
        assert (stored / "resolved_config.yaml").is_file() and (stored / "best.json").is_file(), row
        if row["status"] == "COMPLETED":
            assert (stored / "metrics.json").is_file(), row
    assert Path(json.loads((stored_sweep / "best.json").read_text())["checkpoint"]["key"]).name.endswith(".keras")
