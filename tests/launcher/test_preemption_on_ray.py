"""A trial's process told to end mid-epoch (SIGTERM, as a spot VM's preemption sends it): Ray's worker exits its
main thread, the trial's job hears the process's exit (trainers/preemption.py), saves its state at the next step's
end and uploads it; Tune retries the trial, which continues from that step, and the sweep succeeds."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from .conftest import read_json, start_sweep, wait_for

# A Ray cluster's sweep: about a minute on 2 cores.
pytestmark = pytest.mark.slow

STEPS = 150  # 600 examples in batches of 4


def test_a_trial_sigtermed_mid_epoch_saves_its_step_and_its_retry_continues_there(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    store = tmp_path / "store"
    args = ["model=mlp", "model.dropout=0", "seed=0", "data.max_train_samples=600", "trainer.batch_size=4",
            "trainer.epochs=2", "trainer.verbose=2", "trainer.save_every_steps=20", f"storage.uri={store}",
            "storage.sync_seconds=1", "trainer.callbacks.early_stopping.enabled=false",
            "trainer.callbacks.reduce_lr_on_plateau.enabled=false", "hydra.launcher.max_failures=1"]
    driver = start_sweep(args, sweep_dir, address=two_node_cluster.address)
    job_dir = sweep_dir / "0"
    try:
        def mid_epoch():
            record, progress = read_json(job_dir / "trial.json"), read_json(job_dir / "state" / "progress.json")
            return record and progress and progress.get("steps_into_epoch", 0) >= 20 and record

        record = wait_for(mid_epoch, 300, "the trial to save a state within an epoch", interval=0.01)
        os.kill(record["attempts"][-1]["pid"], signal.SIGTERM)
        assert driver.wait(timeout=600) == 0, (sweep_dir.parent / "sweep.console.log").read_text()[-5000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)

    log = (job_dir / "trial.log").read_text()
    stopped = re.search(r"stopped \(.*\) after step (\d+) of epoch (\d+); its state is saved", log)
    assert stopped, log[-5000:]
    step, epoch = int(stopped[1]), int(stopped[2])
    assert 20 <= step < STEPS
    assert len(read_json(job_dir / "trial.json")["attempts"]) == 2
    retry = log.split("resuming from")[-1]
    assert retry.startswith(f" {job_dir / 'state'} (step {step} of epoch {epoch})"), retry[:300]
    # The retry trains the rest of the epoch it was stopped in, not the whole epoch again.
    trained = [int(count) for count in re.findall(r"^(\d+)/\1 ", retry, re.MULTILINE)]
    assert trained == [STEPS - step] + [STEPS] * (2 - epoch), log[-3000:]
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2]
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED"]
