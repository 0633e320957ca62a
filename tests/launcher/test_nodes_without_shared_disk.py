"""Sweeps on a cluster whose worker node has a disk of its own, as every cloud VM or GKE pod has, with the
results in a bucket (the GCS emulator): the driver builds its leaderboard without the worker's disk,
TensorBoard over the bucket shows every trial, and a node killed mid-sweep costs at most an epoch.

The worker node runs in a mount namespace of its own, where the folder holding the sweeps is an empty
tmpfs: its trials write their job folders there, invisible to the driver and to the head node. Its
processes are found (and killed) by that namespace. Needs root; under CI=true a missing capability fails.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import run_launch, wait_for
from tests.tensorboard.conftest import TensorBoard

from .conftest import CloudLikeCluster, start_sweep, sweep

# A second cluster with a private-disk worker and its sweeps: about 6 minutes on 2 cores. CI runs it.
pytestmark = pytest.mark.slow

QUICK = ["data.max_train_samples=300", "trainer.epochs=2", "trainer.verbose=2", "resources.cpus=1",
         "storage.sync_seconds=1"]


def store_of(cloud: CloudLikeCluster):
    from cluster.store import open_store

    return open_store(f"gs://{cloud.bucket}/exp")


def stored_json(cloud: CloudLikeCluster, key: str):
    from cluster.store.pointers import read_json

    return read_json(store_of(cloud), key)[0]


def test_a_sweep_on_a_node_with_its_own_disk_is_ranked_watched_and_pulled_from_the_bucket(cloud, tmp_path):
    sweep_dir = cloud.base / "own-disk-sweep"
    uri = f"gs://{cloud.bucket}/exp"
    cloud.hold_head()
    tensorboard = TensorBoard(f"{uri}/own-disk-sweep", tmp_path / "tensorboard.log",
                              options=["--sync-seconds", "1", "--mirror", str(tmp_path / "mirror")])
    try:
        result = sweep(["model=cnn,mlp", "seed=0,1", f"storage.uri={uri}", *QUICK], sweep_dir,
                       address=cloud.cluster.address, extra_env={"STORAGE_EMULATOR_HOST": cloud.emulator})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        # The sweep says how to watch it from anywhere: through the bucket, not the driver's folder.
        assert result.stdout.splitlines()[1].startswith(
            f"Watch it: python launch.py tensorboard {uri}/own-disk-sweep"), result.stdout[:500]

        ids = cloud.node_ids()
        board = json.loads((sweep_dir / "leaderboard.json").read_text())
        assert [row["status"] for row in board["trials"]] == ["COMPLETED"] * 4
        for row in board["trials"]:
            trial = str(row["job"])
            # Every trial ran on the worker: nothing of it is on the driver's disk...
            assert not (sweep_dir / trial / "metrics.json").exists()
            record = stored_json(cloud, f"own-disk-sweep/trials/{trial}/trial.json")
            assert [attempt["node_id"] for attempt in record["attempts"]] == [ids["worker"]]
            # ...yet its row is complete, from what it reported and uploaded, its checkpoint named in the bucket.
            metrics = stored_json(cloud, f"own-disk-sweep/trials/{trial}/metrics.json")
            assert row["value"] == metrics["best_value"] and row["best_epoch"] == metrics["best_epoch"]
            pointer = stored_json(cloud, f"own-disk-sweep/trials/{trial}/best.json")
            assert row["checkpoint"] == f"{uri}/{pointer['checkpoint']['key']}"
        best = min(board["trials"], key=lambda row: row["value"])
        assert board["best"]["job"] == best["job"] and board["best"]["checkpoint"].startswith(f"{uri}/own-disk-sweep/")
        manifest = stored_json(cloud, "own-disk-sweep/manifest.json")
        assert manifest["best_trial"] == str(best["job"]) and len(manifest["leaderboard"]) == 4
        assert all(trial["finished"] for trial in manifest["trials"])

        # TensorBoard over the bucket lists all four trials in the HParams dashboard.
        tensorboard.wait_ready()

        def four_sessions():
            groups = tensorboard.session_groups()
            return len(groups) == 4 and groups

        groups = wait_for(four_sessions, 120, "4 trials in TensorBoard's HParams dashboard", interval=2)
        assert sorted(groups) == [f"{trial}/tensorboard" for trial in "0123"]
        models = {name: group["hparams"]["model"] for name, group in groups.items()}
        assert sorted(models.values()) == ["cnn", "cnn", "mlp", "mlp"]
    finally:
        tensorboard.stop()
        cloud.release_head()

    # From a third folder: the four models, checksums verified, each loading in Keras.
    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    pulled = run_launch("pull", f"{uri}/own-disk-sweep", "--top", "4", "--to", str(elsewhere / "top"),
                        cwd=elsewhere, env={"STORAGE_EMULATOR_HOST": cloud.emulator})
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-3000:]
    import keras
    import numpy as np

    models = sorted((elsewhere / "top").glob("*/best.keras"))
    assert len(models) == 4
    for path in models:
        model = keras.models.load_model(path, safe_mode=True)
        assert model.predict(np.zeros((1, *model.input_shape[1:])), verbose=0).shape == (1, 10)


def _epochs_on_node(cloud: CloudLikeCluster, sweep_dir: Path, job: int) -> int:
    """How many epochs the trial had finished on the worker (its own disk, read through /proc)."""
    try:
        progress = cloud.worker.path_seen_by_node(sweep_dir / str(job) / "state" / "progress.json")
        return json.loads(progress.read_text())["epochs_completed"]
    except (OSError, ValueError, IndexError):
        return 0


def test_a_node_killed_mid_sweep_costs_its_trials_at_most_the_epoch_in_progress(cloud, tmp_path):
    sweep_dir = cloud.base / "node-dies"
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    uri = f"gs://{cloud.bucket}/exp"
    epochs = 10
    ids = cloud.node_ids()  # the worker's is gone once it is killed
    cloud.hold_head()
    released = False
    driver = start_sweep(["model=cnn", "seed=0,1", f"storage.uri={uri}", "data.max_train_samples=1500",
                          f"trainer.epochs={epochs}", "trainer.verbose=2", "resources.cpus=1", "storage.sync_seconds=1",
                          "trainer.callbacks.early_stopping.enabled=false",
                          # A lost node is no crash of its trials: they are retried even when none may crash.
                          "hydra.launcher.max_failures=0"],
                         sweep_dir, address=cloud.cluster.address)
    try:
        def stored_epoch(trial: str) -> int:
            pointer = stored_json(cloud, f"node-dies/trials/{trial}/state.json")
            return pointer["epoch"] if pointer else 0

        wait_for(lambda: min(stored_epoch("0"), stored_epoch("1")) >= 3, 600,
                 "both trials to store the state of epoch 3", interval=0.5)
        # The node stops dead: what it had finished is read from its disk, then it is gone.
        cloud.worker.freeze()
        finished_on_node = {job: _epochs_on_node(cloud, sweep_dir, job) for job in (0, 1)}
        killed = cloud.worker.kill()
        assert killed, "no process of the worker node was found"
        time.sleep(2)  # nothing of the node can still write
        in_bucket = {job: stored_epoch(str(job)) for job in (0, 1)}
        cloud.release_head()  # the head can take the retries now
        released = True
        assert driver.wait(timeout=900) == 0, (sweep_dir.parent / "node-dies.console.log").read_text()[-5000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
        if not released:
            cloud.release_head()
        cloud.replace_worker()  # for the tests that follow

    for job in (0, 1):
        # The retry ran on the head, whose disk never held this trial: it resumed from the bucket.
        record = stored_json(cloud, f"node-dies/trials/{job}/trial.json")
        assert [attempt["node_id"] for attempt in record["attempts"]][-1] == ids["head"]
        assert len(record["attempts"]) == 2
        metrics = json.loads((sweep_dir / str(job) / "metrics.json").read_text())
        assert metrics["resumed_from_epoch"] == in_bucket[job] >= 3
        assert [entry["epoch"] for entry in metrics["history"]] == list(range(1, epochs + 1)), "a gap or a repeat"
        assert "resuming after epoch" in (sweep_dir / str(job) / "trial.log").read_text()
        # What the dead node had finished but not stored: at most the epoch in progress.
        assert 3 <= finished_on_node[job] and finished_on_node[job] - in_bucket[job] <= 1, (finished_on_node, in_bucket)
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED", "COMPLETED"]
    assert not [event for row in board["trials"] for event in row["events"] if "crashed" in event], board["trials"]
    print(f"epochs finished on the killed node {finished_on_node}, resumed from the bucket at {in_bucket}")


def test_a_killed_driver_resumes_without_the_workers_disk(cloud, tmp_path):
    """Job 0 finishes on the worker, job 1 gets 2 epochs in there, then the driver is killed. Rerunning the
    same command finds job 0's result in the bucket (not rerun, though its folder exists only on the
    worker) and job 1 continues from its stored state."""
    sweep_dir = cloud.base / "driver-dies"
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    uri = f"gs://{cloud.bucket}/exp"
    args = ["model=cnn", "seed=0,1", f"storage.uri={uri}", "data.max_train_samples=600", "trainer.epochs=6",
            "trainer.verbose=2", "resources.cpus=1", "storage.sync_seconds=1", "hydra.launcher.max_concurrent_trials=1",
            "trainer.callbacks.early_stopping.enabled=false"]
    cloud.hold_head()
    try:
        driver = start_sweep(args, sweep_dir, address=cloud.cluster.address)
        try:
            def progress():
                finished = stored_json(cloud, "driver-dies/trials/0/metrics.json")
                state = stored_json(cloud, "driver-dies/trials/1/state.json")
                return finished and state and state["epoch"] >= 2

            wait_for(progress, 600, "job 0 to finish and job 1 to store 2 epochs", interval=0.5)
        finally:
            os.killpg(driver.pid, 9)  # the driver dies; Ray ends its trials with it
            driver.wait(timeout=60)
        first_result = stored_json(cloud, "driver-dies/trials/0/metrics.json")
        assert not (sweep_dir / "0" / "metrics.json").exists(), "job 0 ran on the worker's own disk"
        time.sleep(2)
        result = sweep(args, sweep_dir, address=cloud.cluster.address)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    finally:
        cloud.release_head()
    record = stored_json(cloud, "driver-dies/trials/0/trial.json")
    assert len(record["attempts"]) == 1, "the finished job was run again"
    assert stored_json(cloud, "driver-dies/trials/0/metrics.json") == first_result
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED", "COMPLETED"]
    assert board["trials"][0]["value"] == first_result["best_value"]
    resumed = stored_json(cloud, "driver-dies/trials/1/metrics.json")
    assert resumed["resumed_from_epoch"] >= 2
    assert [entry["epoch"] for entry in resumed["history"]] == list(range(1, 7))
