"""Sweeps sent to a real two-node Ray cluster on 127.0.0.1 (started once per session by `ray start`):
placement across nodes, per-trial GPUs rehearsed on CPU, retries that resume from the last epoch,
a killed driver resumed by rerunning the command, and ASHA stopping poor sampled trials early."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import yaml

from .conftest import QUICK, TEST_CONF, read_json, start_sweep, sweep, wait_for

SEARCHPATH = f"hydra.searchpath=[file://{TEST_CONF}]"


def _record(job_dir):
    return read_json(job_dir / "trial.json")


def _epochs_done(job_dir) -> int:
    progress = read_json(job_dir / "state" / "progress.json")
    return progress["epochs_completed"] if progress else 0


def test_trials_spread_over_both_nodes_with_the_gpus_each_asked_for(tmp_path, two_node_cluster):
    """cnn_1gpu asks for 1 GPU per trial and cnn_2gpu for 2 (their model configs say so); on this CPU-only
    machine each trial rehearses its GPUs as that many CPU replicas."""
    sweep_dir = tmp_path / "sweep"
    result = sweep([SEARCHPATH, "model=cnn_1gpu,cnn_2gpu", "seed=0,1", "resources.cpus=0.5",
                    "resources.rehearse_gpus_on_cpu=true", *QUICK], sweep_dir, address=two_node_cluster.address)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    # Said before launch: without a bucket, what trials leave on other nodes stays there.
    assert "Note: this Ray cluster has 2 nodes and storage.uri=null" in result.stdout
    cluster_nodes = {node["NodeID"] for node in two_node_cluster.nodes()}

    records, seen_nodes = {}, set()
    for num, gpus in ((0, 1), (1, 1), (2, 2), (3, 2)):
        job_dir = sweep_dir / str(num)
        record = _record(job_dir)
        attempt = record["attempts"][-1]
        metrics = json.loads((job_dir / "metrics.json").read_text())
        resolved = yaml.safe_load((job_dir / "resolved_config.yaml").read_text())
        assert resolved["resources"]["gpus"] == gpus
        assert len(attempt["gpu_ids"]) == gpus, attempt
        # Ray's assignment reached the trial's process, and the job built one replica per GPU.
        assert attempt["cuda_visible_devices"] == ",".join(attempt["gpu_ids"])
        assert resolved["distribution"]["cpu_replicas"] == gpus
        assert metrics["replicas"] == gpus
        assert attempt["node_id"] in cluster_nodes
        seen_nodes.add(attempt["node_id"])
        records[num] = attempt
    assert seen_nodes == cluster_nodes, "trials did not use both nodes"

    # Trials that ran at the same time on the same node were given different GPUs.
    for a in records.values():
        for b in records.values():
            if a is not b and a["node_id"] == b["node_id"] and a["started"] < b["ended"] and b["started"] < a["ended"]:
                assert not set(a["gpu_ids"]) & set(b["gpu_ids"]), (a, b)

    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED"] * 4
    # What each job is judged on (its test metrics) is in the leaderboard beside the sweep's metric.
    for row in board["trials"]:
        metrics = json.loads((sweep_dir / str(row["job"]) / "metrics.json").read_text())
        assert row["summary"]["test_accuracy"] == metrics["test"]["accuracy"] == metrics["summary"]["test_accuracy"]
    assert "test_accuracy" in (sweep_dir / "leaderboard.csv").read_text().splitlines()[0].split(",")


@pytest.mark.slow  # about 40 s on 2 cores
def test_killed_trial_resumes_from_its_last_epoch_and_one_that_keeps_dying_fails(tmp_path, two_node_cluster):
    """Job 0's process is killed once: Tune restarts it and it continues from its last saved epoch.
    Job 1's process is killed on every attempt: after hydra.launcher.max_failures restarts it is FAILED,
    while job 0 still finishes."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    args = ["model=lstm", "seed=0,1", "trainer.epochs=6", "data.max_train_samples=600", "storage.uri=null",
            "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false", "hydra.launcher.max_failures=1"]
    driver = start_sweep(args, sweep_dir, address=two_node_cluster.address)
    try:
        kills: dict[int, list[int]] = {0: [], 1: []}

        def kill_after_an_epoch(num: int, attempt: int) -> None:
            job_dir = sweep_dir / str(num)
            wait_for(lambda: _record(job_dir) and len(_record(job_dir)["attempts"]) == attempt
                     and _epochs_done(job_dir) >= kills_needed_epochs(num, attempt), 240,
                     f"job {num} attempt {attempt} to finish an epoch", interval=0.2)
            pid = _record(job_dir)["attempts"][-1]["pid"]
            kills[num].append(_epochs_done(job_dir))
            os.kill(pid, signal.SIGKILL)

        def kills_needed_epochs(num: int, attempt: int) -> int:
            return attempt  # kill attempt 1 after epoch 1, attempt 2 after epoch 2

        kill_after_an_epoch(0, 1)
        kill_after_an_epoch(1, 1)
        kill_after_an_epoch(1, 2)
        driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    console = (sweep_dir.parent / "sweep.console.log").read_text()
    assert driver.returncode != 0, "a failed trial must fail the command (as in Hydra's basic launcher)"

    metrics = json.loads((sweep_dir / "0" / "metrics.json").read_text())
    assert len(_record(sweep_dir / "0")["attempts"]) == 2
    assert metrics["resumed_from_epoch"] >= 1, "the retried trial started over from epoch 0"
    assert metrics["resumed_from_epoch"] >= kills[0][0]
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2, 3, 4, 5, 6]
    assert f"resuming from {sweep_dir / '0' / 'state'}" in (sweep_dir / "0" / "trial.log").read_text()

    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    statuses = {row["job"]: row["status"] for row in board["trials"]}
    assert statuses == {0: "COMPLETED", 1: "FAILED"}, statuses
    assert board["best"]["job"] == 0
    # The crash Tune retried is on the record, not hidden behind "0 failed".
    events = {row["job"]: row["events"] for row in board["trials"]}
    assert events[0] == ["crashed 1 time and was retried (see its trial.log)"], events
    assert "1 retried after a crash" in console
    assert len(_record(sweep_dir / "1")["attempts"]) == 2
    assert "FAILED" in console


def _kill_driver_once_job_0_ended_and_job_1_ran_2_epochs(args, sweep_dir, cluster) -> None:
    driver = start_sweep(args, sweep_dir, address=cluster.address)
    try:
        wait_for(lambda: (sweep_dir / "0" / "metrics.json").is_file() and _epochs_done(sweep_dir / "1") >= 2, 300,
                 "job 0 to finish and job 1 to get 2 epochs in", interval=0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies; Ray ends its trials with it
        driver.wait(timeout=60)


@pytest.mark.slow  # about 30 s idle, 90 s on a busy machine; run with `pytest -m slow`
def test_killed_driver_is_resumed_by_rerunning_the_command(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    args = ["model=cnn", "seed=0,1", "trainer.epochs=8", "data.max_train_samples=600", "storage.uri=null",
            "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false",
            "hydra.launcher.max_concurrent_trials=1"]
    _kill_driver_once_job_0_ended_and_job_1_ran_2_epochs(args, sweep_dir, two_node_cluster)
    first_metrics = (sweep_dir / "0" / "metrics.json").read_text()
    epochs_before = _epochs_done(sweep_dir / "1")
    time.sleep(2)

    result = sweep(args, sweep_dir, address=two_node_cluster.address)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    # The finished trial was not run again; the interrupted one continued where it was.
    assert (sweep_dir / "0" / "metrics.json").read_text() == first_metrics
    assert len(_record(sweep_dir / "0")["attempts"]) == 1
    metrics = json.loads((sweep_dir / "1" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] >= epochs_before >= 2
    assert [entry["epoch"] for entry in metrics["history"]] == list(range(1, 9))
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert [row["status"] for row in board["trials"]] == ["COMPLETED", "COMPLETED"]


def _sampled_lrs(sweep_dir, rows) -> list[float]:
    lrs = []
    for row in rows:
        overrides = yaml.safe_load((sweep_dir / str(row["job"]) / ".hydra" / "overrides.yaml").read_text())
        lrs.append(float(next(item for item in overrides if item.startswith("lr=")).split("=", 1)[1]))
    return lrs


ASHA_SEARCH = ["hparams_search=asha", "lr=tag(log,interval(1e-6,3e-2))", "hydra.sweeper.num_samples=6",
               "hydra.sweeper.seed=3", "model=cnn", "data.max_train_samples=300", "storage.uri=null",
               "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false"]


@pytest.mark.slow  # about 2 minutes on 2 cores
def test_asha_search_samples_trials_and_stops_poor_ones_early(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    result = sweep([*ASHA_SEARCH, "trainer.epochs=4"], sweep_dir, address=two_node_cluster.address, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    rows = board["trials"]
    assert [row["job"] for row in rows] == list(range(6))
    lrs = _sampled_lrs(sweep_dir, rows)
    assert all(1e-6 <= lr <= 3e-2 for lr in lrs)
    assert len(set(lrs)) == 6, "each trial samples its own lr"
    stopped = [row for row in rows if row["status"] == "STOPPED"]
    assert stopped, f"ASHA stopped no trial: {rows}"
    assert all(row["epochs"] < 4 for row in stopped)
    assert any(row["status"] == "COMPLETED" and row["epochs"] == 4 for row in rows)
    assert board["best"]["status"] == "COMPLETED"


@pytest.mark.slow  # two searches of 6 trials: about 4 minutes on 2 cores
def test_a_seed_draws_the_same_trials_whatever_the_scheduler(tmp_path, two_node_cluster):
    """So that a search with ASHA and the same search run to the end can be compared trial for trial
    (bench/run.py's asha_vs_full relies on it): ASHA ends trials early and so starts the next ones sooner,
    which must not change what they sample."""
    lrs = {}
    for scheduler in ("asha", "fifo"):
        sweep_dir = tmp_path / scheduler
        # fifo: the same search with no scheduler (every trial runs to the end).
        no_scheduler = ["hydra.sweeper.scheduler=null"] if scheduler == "fifo" else []
        result = sweep([*ASHA_SEARCH, *no_scheduler, "trainer.epochs=2",
                        "data.max_train_samples=100"], sweep_dir, address=two_node_cluster.address, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        rows = json.loads((sweep_dir / "leaderboard.json").read_text())["trials"]
        lrs[scheduler] = _sampled_lrs(sweep_dir, rows)
    assert len(set(lrs["asha"])) == 6
    assert lrs["asha"] == lrs["fifo"]


@pytest.mark.slow  # about 1 minute idle; run with `pytest -m slow`
@pytest.mark.parametrize("searcher", [[], ["hparams_search=optuna"]], ids=["random", "optuna"])
def test_killed_driver_of_a_sampled_search_is_resumed_with_the_same_trials(tmp_path, two_node_cluster, searcher):
    """Resuming a search must not draw new samples: the trials already started keep their values, the
    finished one is not run again, and the search still ends with num_samples trials (Optuna's study, saved
    by Tune with the experiment, is restored with it)."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    # Epochs long enough that job 1, caught after 2 epochs, cannot end before the driver's kill lands.
    args = [*searcher, "lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.num_samples=3", "hydra.sweeper.seed=5",
            "model=cnn", "trainer.epochs=8", "data.max_train_samples=1500", "storage.uri=null",
            "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false",
            "hydra.launcher.max_concurrent_trials=1"]
    _kill_driver_once_job_0_ended_and_job_1_ran_2_epochs(args, sweep_dir, two_node_cluster)
    first_metrics = (sweep_dir / "0" / "metrics.json").read_text()
    started_lrs = _sampled_lrs(sweep_dir, [{"job": 0}, {"job": 1}])
    time.sleep(2)

    result = sweep(args, sweep_dir, address=two_node_cluster.address)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    rows = json.loads((sweep_dir / "leaderboard.json").read_text())["trials"]
    assert [row["job"] for row in rows] == [0, 1, 2]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 3
    lrs = _sampled_lrs(sweep_dir, rows)
    assert lrs[:2] == started_lrs and len(set(lrs)) == 3
    assert (sweep_dir / "0" / "metrics.json").read_text() == first_metrics
    assert json.loads((sweep_dir / "1" / "metrics.json").read_text())["resumed_from_epoch"] >= 2


@pytest.mark.slow  # about 1.5 minutes on 2 cores
def test_killed_driver_of_optuna_at_its_shipped_concurrency_resumes_every_trial_as_its_own_job(
    tmp_path, two_node_cluster
):
    """Issue 19: the optuna preset runs 4 trials at once; Tune creates them in one burst. Killed while jobs
    run on both nodes and others wait, the same command resumes: each of the 4 trials is one job with its own
    folder, the finished one is not rerun, the books agree."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    args = ["hparams_search=optuna", "lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.num_samples=4",
            "hydra.sweeper.seed=5", "model=cnn", "trainer.epochs=8", "data.max_train_samples=1500", "storage.uri=null",
            "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false"]
    _kill_driver_once_job_0_ended_and_job_1_ran_2_epochs(args, sweep_dir, two_node_cluster)
    first_metrics = (sweep_dir / "0" / "metrics.json").read_text()
    numbered = [json.loads(line)["job"] for line in (sweep_dir / "job_numbers.jsonl").read_text().splitlines()]
    assert len(numbered) == len(set(numbered)) >= 2, numbered

    result = sweep(args, sweep_dir, address=two_node_cluster.address)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    rows = json.loads((sweep_dir / "leaderboard.json").read_text())["trials"]
    assert [row["job"] for row in rows] == [0, 1, 2, 3]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 4
    assert len({row["trial_id"] for row in rows}) == 4 and len(set(_sampled_lrs(sweep_dir, rows))) == 4
    for row in rows:
        assert json.loads((sweep_dir / str(row["job"]) / "trial.json").read_text())["trial_id"] == row["trial_id"]
    assert (sweep_dir / "0" / "metrics.json").read_text() == first_metrics
