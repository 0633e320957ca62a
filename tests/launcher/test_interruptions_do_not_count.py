"""`hydra.launcher.max_failures` counts crashes only (cluster/launcher/trial_failures.py): a trial whose process is
told to stop (SIGTERM, as a preempted spot VM's processes are) is retried as often as it is interrupted and
finishes, while a trial whose job fails with an error is still FAILED once it has used up max_failures."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from .conftest import read_json, start_sweep, wait_for

# Two sweeps on a Ray cluster: about 3 minutes on 2 cores. CI runs it.
pytestmark = pytest.mark.slow

SIGTERMS = 3  # more than max_failures
QUICK = ["model=mlp", "model.dropout=0", "seed=0", "data.max_train_samples=600", "trainer.verbose=2",
         "trainer.callbacks.early_stopping.enabled=false", "trainer.callbacks.reduce_lr_on_plateau.enabled=false",
         "hydra.launcher.max_failures=1"]


def run_sweep(args: list[str], sweep_dir: Path, cluster, interrupt=None) -> tuple[int, str]:
    driver = start_sweep(args, sweep_dir, address=cluster.address)
    try:
        if interrupt is not None:
            interrupt()
        status = driver.wait(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    return status, (sweep_dir.parent / f"{sweep_dir.name}.console.log").read_text()


def test_a_trial_sigtermed_more_often_than_max_failures_still_finishes(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    job_dir = sweep_dir / "0"
    args = [*QUICK, "trainer.epochs=6", "trainer.batch_size=4", "trainer.save_every_steps=20",
            f"storage.uri={tmp_path / 'store'}", "storage.sync_seconds=1"]

    def sigterm_each_attempt_once_it_saved_a_state():
        for attempt in range(1, SIGTERMS + 1):
            def saved_by_this_attempt():
                record, progress = read_json(job_dir / "trial.json"), job_dir / "state" / "progress.json"
                if not record or len(record["attempts"]) != attempt or not progress.is_file():
                    return None
                started = record["attempts"][-1]["started"]
                return record["attempts"][-1]["pid"] if progress.stat().st_mtime > started + 0.5 else None

            pid = wait_for(saved_by_this_attempt, 300, f"attempt {attempt} to save a state", interval=0.05)
            os.kill(pid, signal.SIGTERM)

    status, console = run_sweep(args, sweep_dir, two_node_cluster, sigterm_each_attempt_once_it_saved_a_state)
    assert status == 0, console[-5000:]
    assert len(read_json(job_dir / "trial.json")["attempts"]) == SIGTERMS + 1
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2, 3, 4, 5, 6]
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED"]
    # Interruptions are not crashes: the leaderboard names none.
    assert not any("crashed" in event for event in board["trials"][0]["events"]), board["trials"][0]["events"]
    assert "retried after a crash" not in console


def test_a_trial_whose_job_fails_every_time_is_failed_after_max_failures(tmp_path, two_node_cluster):
    """Image files that are not images: the job fails with an error on each attempt; 1 + max_failures attempts."""
    images = tmp_path / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for index in range(4):
            (images / label / f"{index}.png").write_bytes(os.urandom(300))
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    args = [*QUICK, "data=image_folder", f"data.path={images}", "trainer.epochs=1", "storage.uri=null"]
    status, console = run_sweep(args, sweep_dir, two_node_cluster)
    assert status != 0, console[-5000:]
    assert len(read_json(sweep_dir / "0" / "trial.json")["attempts"]) == 2, console[-5000:]
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["FAILED"]
