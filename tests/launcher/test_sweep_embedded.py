"""The headline command through an embedded local Ray:
`python launch.py -m model=cnn,lstm lr=1e-3,1e-4` runs 4 trials, one Hydra job folder each, and ends with a
leaderboard that agrees with every trial's metrics.json."""

from __future__ import annotations

import csv
import json
import time

import pytest
import yaml

from .conftest import QUICK, sweep


def test_grid_runs_each_job_as_a_trial_and_ranks_them(tmp_path):
    sweep_dir = tmp_path / "sweep"
    started = time.time()
    result = sweep(["model=cnn,lstm", "lr=1e-3,1e-4", *QUICK], sweep_dir)
    elapsed = time.time() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    console = result.stdout + result.stderr
    print(f"4-trial grid on embedded Ray: {elapsed:.0f} s")

    # Hydra's conventions: one numbered folder per job, its overrides recorded, hydra.job.num set.
    expected = {
        0: ["model=cnn", "lr=0.001"], 1: ["model=cnn", "lr=0.0001"],
        2: ["model=lstm", "lr=0.001"], 3: ["model=lstm", "lr=0.0001"],
    }
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert board["metric"] == "val_loss" and board["mode"] == "min"
    assert [row["job"] for row in board["trials"]] == [0, 1, 2, 3]
    for num, overrides in expected.items():
        job_dir = sweep_dir / str(num)
        assert yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())[:2] == overrides
        hydra_cfg = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["job"]["num"] == num
        metrics = json.loads((job_dir / "metrics.json").read_text())
        row = board["trials"][num]
        assert row["status"] == "COMPLETED"
        assert row["overrides"].split()[:2] == overrides
        assert row["value"] == metrics["best_value"]
        assert row["best_epoch"] == metrics["best_epoch"]
        assert row["job_dir"] == str(job_dir)
        assert (job_dir / "checkpoints" / "best.keras").is_file()
        # Each trial's own output went to its own log, not to the sweep's console.
        assert "Epoch 1/2" in (job_dir / "trial.log").read_text()
        assert (job_dir / "trial.json").is_file()

    best_num = min(board["trials"], key=lambda row: row["value"])["job"]
    assert board["best"]["job"] == best_num
    assert board["best"]["checkpoint"] == str(sweep_dir / str(best_num) / "checkpoints" / "best.keras")
    with (sweep_dir / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["job"]) for row in rows] == [0, 1, 2, 3]
    assert [row["best"] for row in rows].count("True") == 1 and rows[best_num]["best"] == "True"
    assert abs(float(rows[best_num]["value"]) - board["best"]["value"]) < 1e-9

    # One sweep-level view: trial counts with the best so far, then the leaderboard; no per-trial
    # Keras epochs and none of Tune's per-trial result tables.
    assert "4 trials: 0 pending, 0 running, 4 done, 0 failed | best val_loss" in console
    assert "Epoch 1/2" not in console and "Trial job_0 result" not in console
    assert f"* best: job {best_num}" in result.stdout


@pytest.mark.slow  # about 70 s on 2 cores
def test_ctrl_c_interrupts_the_sweep_with_a_non_zero_exit_and_the_same_command_resumes_it(tmp_path):
    """Ctrl-C (SIGINT to the driver) ends the sweep as a shell expects, non-zero; the trials it cut short say
    INTERRUPTED (not STOPPED, which is the scheduler's), and rerunning the command finishes them."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import LAUNCH, PROJECT_ROOT, wait_for

    from .conftest import launch_env

    sweep_dir = tmp_path / "sweep"
    args = ["model=cnn", "seed=0,1", "trainer.epochs=5", "data.max_train_samples=1500", "storage.uri=null",
            "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false",
            "hydra.launcher.max_concurrent_trials=1"]
    driver = subprocess.Popen([sys.executable, str(LAUNCH), "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
                              cwd=str(PROJECT_ROOT), env=launch_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        progress = sweep_dir / "0" / "state" / "progress.json"
        wait_for(lambda: progress.is_file() and json.loads(progress.read_text())["epochs_completed"] >= 1, 300,
                 "job 0 to train an epoch", interval=0.1)
        os.kill(driver.pid, signal.SIGINT)
        output, _ = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode != 0, output[-3000:]
    assert f"rerun the same command with hydra.sweep.dir={sweep_dir} to resume" in output
    assert "Traceback" not in output
    statuses = [row["status"] for row in json.loads((sweep_dir / "leaderboard.json").read_text())["trials"]]
    assert "INTERRUPTED" in statuses and set(statuses) <= {"INTERRUPTED", "COMPLETED"}, statuses

    resumed = sweep(args, sweep_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED", "COMPLETED"]
    history = json.loads((sweep_dir / "0" / "metrics.json").read_text())["history"]
    assert [epoch["epoch"] for epoch in history] == [1, 2, 3, 4, 5]
