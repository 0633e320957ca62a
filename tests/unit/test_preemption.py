"""A job stopped by SIGTERM (a spot VM's preemption) saves its state at the next step's end, uploads it and exits
with status 75; its rerun continues from that step, on the same disk or from the store, and ends with the
weights and history of a run never interrupted. trainer.save_every_steps saves within epochs too. The data
order of an epoch depends on (seed, epoch) only, which makes the skip of a resumed epoch exact."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hydra import compose, initialize_config_dir

from tests.conftest import LAUNCH, PROJECT_ROOT, SCRATCH_CWD
from tests.unit.test_config_compose import refusal
from trainers.epoch_order import TrainingOrder
from trainers.job_files import PREVIOUS_STATE, STATE, STATE_MODEL, Progress
from trainers.preemption import PREEMPTED_EXIT_STATUS, clear_stop_request, request_stop
from trainers.schema import register_schemas, validate

register_schemas()

# 400 training examples in batches of 4: 100 steps an epoch, a few ms each. No dropout (Keras does not save a
# dropout layer's random state, see README), no callback whose counting restarts with each `fit`.
JOB = ["model=mlp", "model.units=[32]", "model.dropout=0", "data.max_train_samples=400", "trainer.batch_size=4",
       "trainer.epochs=2", "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false",
       "trainer.callbacks.reduce_lr_on_plateau.enabled=false", "trainer.callbacks.tensorboard.enabled=false"]
STEPS = 100


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _launch(job_dir: Path, *overrides: str) -> subprocess.Popen:
    log = open(f"{job_dir}.log", "a")
    return subprocess.Popen([sys.executable, str(LAUNCH), *JOB, *overrides, f"hydra.run.dir={job_dir}"],
                            cwd=str(SCRATCH_CWD), stdout=log, stderr=subprocess.STDOUT)


def _progress(job_dir: Path):
    try:
        return Progress.read(job_dir / STATE)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _weights(job_dir: Path) -> list:
    return keras.models.load_model(job_dir / STATE / STATE_MODEL).get_weights()


def test_sigterm_mid_epoch_saves_the_step_and_the_rerun_from_the_store_ends_as_an_uninterrupted_run(tmp_path):
    store = tmp_path / "store"
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"
    storage = [f"storage.uri={store}", "storage.sync_seconds=1"]
    # Saves every 20 steps tell the test where training is: it signals right after the first save.
    job = _launch(interrupted, *storage, "trainer.save_every_steps=20")
    deadline = time.monotonic() + 60
    while not ((_progress(interrupted) or Progress(0)).steps_into_epoch >= 20):
        assert job.poll() is None and time.monotonic() < deadline, Path(f"{interrupted}.log").read_text()[-3000:]
        time.sleep(0.005)
    reached = _progress(interrupted).position
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=40) == PREEMPTED_EXIT_STATUS, Path(f"{interrupted}.log").read_text()[-3000:]
    log = Path(f"{interrupted}.log").read_text()
    stopped = re.search(r"stopped \(SIGTERM\) after step (\d+) of epoch (\d+)", log)
    assert stopped, log[-3000:]
    saved = _progress(interrupted)
    step, epoch = int(stopped[1]), int(stopped[2])
    # Saved at the end of the step the signal came in: nothing trained before it is lost.
    assert (saved.epochs_completed + 1, saved.steps_into_epoch) == (epoch, step)
    assert saved.position >= reached and 0 < step < STEPS, (reached, saved.position)
    # ...and uploaded before the process exited.
    pointer = json.loads(next(store.glob("*/trials/*/state.json")).read_text())
    assert (pointer["epoch"], pointer.get("step")) == saved.position

    # A new node: the job folder has no state; the rerun takes the store's.
    shutil.rmtree(interrupted / STATE)
    shutil.rmtree(interrupted / PREVIOUS_STATE, ignore_errors=True)
    rerun = _launch(interrupted, *storage, "trainer.save_every_steps=20")
    assert rerun.wait(timeout=60) == 0, Path(f"{interrupted}.log").read_text()[-3000:]
    log = Path(f"{interrupted}.log").read_text()
    assert f"at step {step} of epoch {epoch}" in log, log[-3000:]
    # The resumed epoch trains its remaining steps only: no step is redone.
    trained = [int(count) for count in re.findall(r"^(\d+)/\1 ", log.split("resuming from")[-1], re.MULTILINE)]
    assert trained == [STEPS - step] + [STEPS] * (2 - epoch), log[-3000:]
    # Same batches in the same order, same optimizer state: the same weights and history as never interrupted
    # (trained here, in this process: same code, same ops, deterministic).
    from trainers.job import train

    train(_cfg(*JOB, "storage.uri=null"), uninterrupted)
    for resumed, straight in zip(_weights(interrupted), _weights(uninterrupted)):
        np.testing.assert_array_equal(resumed, straight)
    history = [json.loads((folder / "metrics.json").read_text())["history"] for folder in (interrupted, uninterrupted)]
    drop = ("samples_per_second", "input_wait_fraction")  # timings
    assert [{k: v for k, v in e.items() if k not in drop} for e in history[0]] == \
           [{k: v for k, v in e.items() if k not in drop} for e in history[1]]


@pytest.fixture
def no_stop_request():
    clear_stop_request()
    yield
    clear_stop_request()


def test_save_every_steps_saves_within_epochs_and_a_stop_request_raises_preempted(tmp_path, no_stop_request):
    from trainers.job import train
    from trainers.preemption import Preempted

    saved: list[tuple] = []

    def on_state_saved(state_dir: str) -> None:
        saved.append(Progress.read(Path(state_dir)).position)
        if len(saved) == 4:
            request_stop("test")

    with pytest.raises(Preempted) as stopped:
        train(_cfg(*JOB, "storage.uri=null", "trainer.save_every_steps=30"), tmp_path, on_state_saved=on_state_saved)
    # Every 30 steps counted over the job (epoch 2 starts at step 100): 30, 60, 90, then 120 = step 20 of epoch 2.
    assert saved[:4] == [(0, 30), (0, 60), (0, 90), (1, 20)]
    assert saved[4] == (1, 21) and "after step 21 of epoch 2" in str(stopped.value)
    assert _progress(tmp_path).position == (1, 21)
    model = keras.models.load_model(tmp_path / STATE / STATE_MODEL)
    assert int(model.optimizer.iterations) == STEPS + 21


@pytest.mark.parametrize("value, allowed", [("0", "an integer of at least 1"), ("-5", "an integer of at least 1"),
                                            ("2.5", "an integer"), ("often", "an integer")])
def test_bad_save_every_steps_values_are_refused_naming_the_field(value, allowed):
    message = refusal(f"trainer.save_every_steps={value}")
    assert "`trainer.save_every_steps`" in message and value in message and f"Allowed: {allowed}." in message


def test_save_every_steps_defaults_to_off():
    assert _cfg().trainer.save_every_steps is None
    validate(_cfg("trainer.save_every_steps=500"))
    validate(_cfg("trainer.save_every_steps=null"))


def _labels(dataset) -> list[list[int]]:
    return [batch[1].numpy().tolist() for batch in dataset]


def test_an_epochs_order_depends_on_the_seed_and_the_epoch_only():
    examples = tf.data.Dataset.from_tensor_slices((np.zeros((10, 1), "float32"), np.arange(10)))
    order = TrainingOrder(examples, 10, 3, shuffle_buffer=100, seed=0)
    other = TrainingOrder(examples, 10, 3, shuffle_buffer=100, seed=0)  # another process, in effect
    every = order.every_epoch()
    seen = {}
    for epoch in (1, 2, 3, 2):
        order.set_epoch(epoch)
        seen.setdefault(epoch, []).append(_labels(every))
    assert seen[2][0] == seen[2][1] == _labels(other.epoch_batches(2))
    assert seen[1][0] != seen[2][0] != seen[3][0]
    assert sorted(sum(seen[3][0], [])) == list(range(10)) and len(seen[3][0]) == order.steps == 4
    # A resumed epoch: the batches after the first two, the same ones.
    assert _labels(other.rest_of_epoch(2, 2)) == seen[2][0][2:]
    assert _labels(TrainingOrder(examples, 10, 3, 100, seed=1).epoch_batches(2)) != seen[2][0]
    assert int(every.cardinality()) == 4 and int(order.rest_of_epoch(2, 3).cardinality()) == 1
    with pytest.raises(ValueError):
        order.rest_of_epoch(2, 4)


def test_a_progress_saved_within_an_epoch_reads_back_and_an_epoch_end_one_keeps_its_format(tmp_path):
    progress = Progress(3, 0.5, 2, history=[{"epoch": 1}], steps_into_epoch=17, epoch_metrics={"loss/total": 4.0})
    progress.write(tmp_path)
    assert Progress.read(tmp_path) == progress and progress.position == (3, 17)
    assert progress.describe_position() == "step 17 of epoch 4"
    assert "steps_into_epoch" not in Progress(3).to_json() and Progress(3).describe_position() == "epoch 3"
