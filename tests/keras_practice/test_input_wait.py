"""Fed at GPU speed, and seen when not: each epoch's `input_wait_fraction` (the part of its training time spent
waiting for the next batch, trainers/input_wait.py) in the history, metrics.json, its summary and TensorBoard;
a slow input shows as such, a fast one does not. Each replica of a MirroredStrategy reads its own part of
every global batch, and every dataset a job feeds to Keras shards without a tf.data complaint (trainers/sharding.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.keras_practice.slow_input import train_on_slow_digits

# 256 training examples in batches of 32, no cache: every epoch reads the stream again.
NUM_TRAIN, SECONDS_PER_EXAMPLE = 256, 0.004
JOB = ["model=mlp", f"data.max_train_samples={NUM_TRAIN}", "trainer.batch_size=32", "trainer.epochs=2",
       "data.cache=false", "trainer.verbose=0", "trainer.callbacks.early_stopping.enabled=false"]


def tensorboard_scalars(job_dir: Path, tag: str) -> list[float]:
    """The values of `tag` in the job's tensorboard/train event files, by step."""
    import tensorflow as tf

    points = {}
    for path in sorted((job_dir / "tensorboard" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    points[event.step] = float(tf.make_ndarray(value.tensor))
    return [points[step] for step in sorted(points)]


def seconds_waited(epoch: dict, num_examples: int) -> float:
    """The epoch's wait in seconds: its fraction of the training seconds (examples over samples/s)."""
    return epoch["input_wait_fraction"] * num_examples / epoch["samples_per_second"]


def test_a_slow_input_shows_as_waiting_and_a_fast_one_does_not(tmp_path):
    slow = train_on_slow_digits(str(tmp_path / "slow"), SECONDS_PER_EXAMPLE, JOB)
    fast = train_on_slow_digits(str(tmp_path / "fast"), 0.0, JOB)
    for metrics in (slow, fast):
        written = json.loads((Path(tmp_path / ("slow" if metrics is slow else "fast")) / "metrics.json").read_text())
        assert written["input_wait_fraction"] == metrics["input_wait_fraction"]
        assert written["summary"]["input_wait_fraction"] == metrics["input_wait_fraction"]
        assert all(0 <= epoch["input_wait_fraction"] <= 1 for epoch in written["history"]), written["history"]
    # Reading an example takes 4 ms, computing a batch of 32 about 1 ms: training waits almost all the time, and the
    # wait it reports is the time the reads took (less what overlapped with the model's steps). The first epoch
    # also traces the train function (seconds here): its fraction is lower, its wait the same.
    for epoch in slow["history"]:
        assert seconds_waited(epoch, NUM_TRAIN) > 0.8 * NUM_TRAIN * SECONDS_PER_EXAMPLE, slow["history"]
    assert slow["history"][-1]["input_wait_fraction"] > 0.8 and slow["input_wait_fraction"] > 0.8, slow["history"]
    assert fast["input_wait_fraction"] < 0.5, fast["history"]
    assert slow["input_wait_fraction"] - fast["input_wait_fraction"] > 0.4
    # The epoch's figure in TensorBoard, in the `train` run beside samples_per_second.
    for name, metrics in (("slow", slow), ("fast", fast)):
        written = tensorboard_scalars(tmp_path / name, "epoch_input_wait_fraction")
        assert written == pytest.approx([epoch["input_wait_fraction"] for epoch in metrics["history"]], rel=1e-5)


def test_a_job_that_does_not_time_its_input_reports_no_fraction(tmp_path):
    metrics = train_on_slow_digits(str(tmp_path), 0.0, [*JOB, "trainer.epochs=1", "trainer.time_input_wait=false"])
    assert metrics["input_wait_fraction"] is None and "input_wait_fraction" not in metrics["summary"]
    assert "input_wait_fraction" not in metrics["history"][0]
    assert tensorboard_scalars(tmp_path, "epoch_input_wait_fraction") == []


def test_under_mirrored_strategy_the_wait_is_the_replicas_wait(tmp_path):
    """Two replicas on logical CPU devices: the batches reach them through the distribution's multi-device
    iterator, whose thread is what waits on the pipeline (its own process: devices are set once per process).
    A step of two CPU replicas costs a large, load-dependent part of a second here, so the fraction is not
    the figure checked: the seconds waited are, against the seconds the reads took."""
    job_dir = tmp_path / "job"
    result = subprocess.run(
        [sys.executable, "-m", "tests.keras_practice.slow_input", str(job_dir), str(SECONDS_PER_EXAMPLE), *JOB,
         "distribution.cpu_replicas=2", "trainer.batch_size=16"],
        cwd=str(PROJECT_ROOT), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["global_batch_size"] == 32
    reads = NUM_TRAIN * SECONDS_PER_EXAMPLE
    for epoch in metrics["history"]:
        # Counted once per global batch (not once per replica), and no more than the reads took (a sleep of 4 ms
        # takes up to about 6 under load).
        assert 0.8 * reads < seconds_waited(epoch, NUM_TRAIN) < 2 * reads, metrics["history"]


# Run in its own process: 2 logical CPU devices, a MirroredStrategy over them, the job's own pipelines.
REPLICA_PARTS = r"""
import json, sys
import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf

from trainers import devices
from trainers.input_wait import InputWaitClock
from trainers.pipeline import build_pipelines
from trainers.splits import Splits

devices.configure_devices(2)
strategy = devices.build_strategy(2)
# Each example's feature is its own number: which examples a replica got is read off its batch.
def numbered(start, count):
    x = np.arange(start, start + count, dtype="float32")[:, None]
    return x, (np.arange(count) % 3).astype("int32")
splits = Splits(*numbered(0, 200), *numbered(2000, 50), *numbered(1000, 60))  # train, test, validation
cfg = OmegaConf.create({"input_kind": "tabular", "task": "multiclass", "num_words": 0, "cache": True,
                        "shuffle_buffer": 64})
pipelines = build_pipelines(cfg, splits, global_batch_size=16, seed=3)
training = InputWaitClock().timed(pipelines.train.every_epoch())
report = {"replicas": strategy.num_replicas_in_sync, "policies": {}}
for name, dataset in (("train", training), ("validation", pipelines.validation), ("test", pipelines.test)):
    policy = dataset.options().experimental_distribute.auto_shard_policy
    report["policies"][name] = tf.data.experimental.AutoShardPolicy(policy).name
    steps = []
    for batch in strategy.experimental_distribute_dataset(dataset):
        steps.append([part.numpy()[:, 0].astype(int).tolist() for part in batch[0].values])
    report[name] = steps
# What a multi-worker strategy does to each of them (2 workers, 1 replica each): tf.data's auto-shard rewrite.
from tensorflow.python.distribute import input_ops
for name, dataset in (("train", training), ("validation", pipelines.validation)):
    report["workers_" + name] = [
        sorted(int(v) for batch in input_ops.auto_shard_dataset(dataset, 2, index, 2) for v in batch[0].numpy()[:, 0])
        for index in range(2)]
print(json.dumps(report))
"""


def test_each_replica_reads_its_own_part_of_every_batch():
    result = subprocess.run([sys.executable, "-c", REPLICA_PARTS], cwd=str(PROJECT_ROOT), capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["policies"] == dict.fromkeys(("train", "validation", "test"), "DATA")
    for name, first, count in (("train", 0, 200), ("validation", 1000, 60), ("test", 2000, 50)):
        seen = []
        for step in report[name]:
            assert len(step) == 2 and all(step), (name, step)  # both replicas get examples at every step
            assert not set(step[0]) & set(step[1]), (name, step)  # no example twice in one global batch
            seen += step[0] + step[1]
        assert sorted(seen) == list(range(first, first + count)), name  # the epoch: every example once
    # Two workers: each keeps its own share of the batches, together every example once.
    for name, first, count in (("train", 0, 200), ("validation", 1000, 60)):
        workers = report["workers_" + name]
        assert all(workers) and not set(workers[0]) & set(workers[1]), name
        assert sorted(workers[0] + workers[1]) == list(range(first, first + count)), name
    # tf.data says nothing about sharding: no AUTO falling back to DATA, no unshardable source.
    said = [line for line in result.stderr.splitlines() if "shard" in line.lower()]
    assert not said, said
