"""TensorBoard over a sweep answers, through its HTTP data API, with every trial's scalars and hparams."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import LAUNCH, PROJECT_ROOT
from tests.tensorboard.conftest import TRIALS, TensorBoard, history_of

# (run below the trial folder, TensorBoard tag, key in the job's metrics.json history)
SCALARS = [
    ("tensorboard/train", "epoch_loss", "loss"),
    ("tensorboard/train", "epoch_accuracy", "accuracy"),
    ("tensorboard/train", "epoch_learning_rate", "learning_rate"),
    ("tensorboard/train", "epoch_samples_per_second", "samples_per_second"),
    ("tensorboard/train", "epoch_input_wait_fraction", "input_wait_fraction"),
    ("tensorboard/validation", "epoch_loss", "val_loss"),
    ("tensorboard/validation", "epoch_accuracy", "val_accuracy"),
]


def eventually(check, timeout: float = 60, interval: float = 0.5):
    """Retry `check` until it stops raising AssertionError: TensorBoard loads event files in the background."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def test_each_trial_is_a_run_with_per_epoch_scalars_equal_to_what_the_job_logged(sweep_dir, sweep_tensorboard):
    def all_tags_loaded():
        tags = sweep_tensorboard.get("/data/plugin/scalars/tags")
        for name in TRIALS:
            for run, tag, _ in SCALARS:
                assert tag in tags.get(f"{name}/{run}", {}), (name, run, tag, sorted(tags))
        return tags

    eventually(all_tags_loaded)
    # One run per trial (its train/ and validation/ beside it), nothing else: no second copy from Ray.
    assert sorted(sweep_tensorboard.get("/data/runs")) == sorted(
        f"{name}/tensorboard{split}" for name in TRIALS for split in ("", "/train", "/validation")
    )
    for name in TRIALS:
        history = history_of(sweep_dir / name)
        assert [epoch["epoch"] for epoch in history] == [1, 2]
        for run, tag, key in SCALARS:
            points = sweep_tensorboard.get("/data/plugin/scalars/scalars", run=f"{name}/{run}", tag=tag)
            assert [step for _, step, _ in points] == [0, 1], (name, run, tag)
            assert [value for _, _, value in points] == pytest.approx([epoch[key] for epoch in history], rel=1e-5), \
                (name, tag)
        assert history[-1]["learning_rate"] == pytest.approx(TRIALS[name]["lr"])
        assert min(epoch["samples_per_second"] for epoch in history) > 0


def test_hparams_dashboard_lists_every_trial_with_its_hyperparameters_and_final_metrics(sweep_dir, sweep_tensorboard):
    def all_sessions_finished():
        groups = sweep_tensorboard.session_groups()
        assert sorted(groups) == [f"{name}/tensorboard" for name in TRIALS]
        for group in groups.values():
            assert len(group["metricValues"]) == 7, group
            assert group["sessions"][0].get("status") == "STATUS_SUCCESS", group
        return groups

    groups = eventually(all_sessions_finished)
    for name, trial in TRIALS.items():
        group = groups[f"{name}/tensorboard"]
        hparams = group["hparams"]
        assert hparams["model"] == trial["model"]
        assert hparams["lr"] == pytest.approx(trial["lr"])
        assert (hparams["data"], hparams["optimizer"], hparams["precision"]) == ("digits", "adam", "auto")
        assert (hparams["seed"], hparams["trainer.batch_size"]) == (0, 64)
        assert (hparams["trainer.epochs"], hparams["data.max_train_samples"]) == (2, 300)
        final = history_of(sweep_dir / name)[-1]
        values = {(m["name"]["group"], m["name"]["tag"]): m["value"] for m in group["metricValues"]}
        assert values[("validation", "epoch_loss")] == pytest.approx(final["val_loss"], rel=1e-5)
        assert values[("validation", "epoch_accuracy")] == pytest.approx(final["val_accuracy"], rel=1e-5)
        assert values[("train", "epoch_samples_per_second")] == pytest.approx(final["samples_per_second"], rel=1e-5)

    experiment = sweep_tensorboard.post("/data/plugin/hparams/experiment",
                                        {"experimentName": "", "includeMetrics": True})
    names = [info["name"] for info in experiment["hparamInfos"]]
    # The dashboard shows the first five hparams by default: the ones set on the command line come first,
    # except run settings such as storage.uri, which are no hyperparameters.
    assert set(names[:4]) == {"data.max_train_samples", "lr", "model", "trainer.epochs"}, names
    assert "storage.uri" not in names
    assert {"data", "optimizer", "precision", "seed", "trainer.batch_size"} <= set(names)
    metrics = {(m["name"]["group"], m["name"]["tag"]): m.get("displayName") for m in experiment["metricInfos"]}
    assert metrics == {
        ("validation", "epoch_loss"): "val_loss", ("validation", "epoch_accuracy"): "val_accuracy",
        ("train", "epoch_loss"): "loss", ("train", "epoch_accuracy"): "accuracy",
        ("train", "epoch_learning_rate"): "learning_rate", ("train", "epoch_samples_per_second"): "samples_per_second",
        ("train", "epoch_input_wait_fraction"): "input_wait_fraction",
    }


def test_a_trial_is_listed_in_hparams_after_its_first_epoch_while_it_still_runs(tmp_path):
    """The job is frozen (SIGSTOP) right after its first epoch: whatever TensorBoard shows then was on
    disk at that moment, so this also checks the epoch's scalars are flushed, not held in a buffer."""
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    log = open(tmp_path / "job.log", "w")
    # No early stopping and many epochs: the job is far from done when it is frozen.
    job = subprocess.Popen(
        [sys.executable, str(LAUNCH), "trainer.epochs=200", "trainer.callbacks.early_stopping.enabled=false",
         "data.max_train_samples=600", "model=mlp", "lr=0.002", "storage.uri=null", f"hydra.run.dir={live_dir / '0'}"],
        cwd=str(PROJECT_ROOT), stdout=log, stderr=subprocess.STDOUT,
    )
    server = TensorBoard(live_dir, tmp_path / "tensorboard.log")
    job_log = lambda: (tmp_path / "job.log").read_text()[-3000:]  # noqa: E731
    try:
        progress = live_dir / "0" / "state" / "progress.json"
        deadline = time.monotonic() + 180
        while not progress.is_file():
            assert job.poll() is None and time.monotonic() < deadline, job_log()
            time.sleep(0.02)
        os.kill(job.pid, signal.SIGSTOP)
        history = json.loads(progress.read_text())["history"]
        assert 1 <= len(history) < 200

        server.wait_ready()

        def listed_with_first_epochs():
            groups = server.session_groups()
            assert "0/tensorboard" in groups, groups
            group = groups["0/tensorboard"]
            values = {(m["name"]["group"], m["name"]["tag"]): m for m in group.get("metricValues", [])}
            assert ("validation", "epoch_loss") in values, values
            return group, values[("validation", "epoch_loss")]

        group, val_loss = eventually(listed_with_first_epochs, timeout=60)
        assert job.poll() is None, "the trial must still be unfinished while it is listed"
        assert (group["hparams"]["model"], group["hparams"]["lr"]) == ("mlp", pytest.approx(0.002))
        assert group["sessions"][0].get("status", "STATUS_UNKNOWN") == "STATUS_UNKNOWN"  # no end record yet
        # Every epoch the job's state recorded is in TensorBoard (it may have been frozen just after the
        # next epoch's scalars went out).
        assert val_loss["trainingStep"] >= len(history) - 1
        for run, tag, key in SCALARS:
            points = server.get("/data/plugin/scalars/scalars", run=f"0/{run}", tag=tag)
            assert [value for _, _, value in points][: len(history)] == pytest.approx(
                [epoch[key] for epoch in history], rel=1e-5
            ), (run, tag)
    finally:
        if job.poll() is None:
            os.kill(job.pid, signal.SIGKILL)  # also ends a stopped process
            job.wait()
        log.close()
        server.stop()
