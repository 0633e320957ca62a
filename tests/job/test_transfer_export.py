"""model=transfer through `launch.py` as a user runs it, offline: a frozen-backbone stage then a fine-tuning
stage in one job and one TensorBoard run, resumed inside the fine-tuning stage; the exported SavedModel
served through its signature and the TFLite file run by the TFLite interpreter; a schedule driving the lr."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_launch

FINE_TUNE_LR = 1e-5
TRANSFER = [
    "model=transfer", "model.backbone=mobilenet_v2", "model.weights=null", "model.input_size=32", "model.alpha=0.35",
    "trainer.epochs=1", "model.fine_tune.epochs=1", f"model.fine_tune.lr={FINE_TUNE_LR}", "lr=1e-3",
    "data.max_train_samples=200", "trainer.verbose=0", "storage.uri=null",
    "export.saved_model=true", "export.tflite=true",
]


def metrics_of(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def digits(count: int = 6) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:count] / 16.0).astype("float32")[..., np.newaxis]


def scalars(log_dir: Path, tag: str) -> dict[int, float]:
    """Every value of an epoch scalar across all event files of one TensorBoard run folder."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    return {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)}


@pytest.fixture(scope="module")
def transfer_job(tmp_path_factory):
    job_dir = tmp_path_factory.mktemp("transfer_job")
    result = run_launch(*TRANSFER, f"hydra.run.dir={job_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return job_dir


def test_both_stages_run_in_one_job_and_the_boundary_is_recorded(transfer_job):
    metrics = metrics_of(transfer_job)
    train, fine_tune = metrics["stages"]
    assert (train["name"], train["first_epoch"], train["last_epoch"]) == ("train", 1, 1)
    assert (fine_tune["name"], fine_tune["first_epoch"], fine_tune["last_epoch"]) == ("fine_tune", 2, 2)
    assert train["trainable_weights"] == 2  # the head's kernel and bias only
    assert fine_tune["trainable_weights"] > train["trainable_weights"] and fine_tune["unfrozen_layers"] > 0
    learning_rates = [epoch["learning_rate"] for epoch in metrics["history"]]
    assert learning_rates == pytest.approx([1e-3, FINE_TUNE_LR])
    assert [epoch["epoch"] for epoch in metrics["history"]] == [1, 2]


def test_one_tensorboard_run_shows_the_epochs_of_both_stages(transfer_job):
    run = transfer_job / "tensorboard"
    assert scalars(run / "validation", "epoch_loss").keys() == {0, 1}
    learning_rates = scalars(run / "train", "epoch_learning_rate")
    assert learning_rates[0] == pytest.approx(1e-3) and learning_rates[1] == pytest.approx(FINE_TUNE_LR)


@pytest.mark.slow  # about 45 s on 2 cores; the stage loop itself: tests/unit/test_job_stages.py
def test_a_job_resumed_in_the_fine_tuning_stage_continues_that_stage(transfer_job, tmp_path):
    job_dir = tmp_path / "job"
    shutil.copytree(transfer_job, job_dir)
    progress = json.loads((job_dir / "state" / "progress.json").read_text())
    assert progress["stages"][-1]["name"] == "fine_tune"
    before = metrics_of(job_dir)

    # An explicit export version that exists is refused before any training, not after it.
    taken = run_launch(*TRANSFER, "model.fine_tune.epochs=2", "export.version=1", f"hydra.run.dir={job_dir}")
    assert taken.returncode == 2 and "export.version=1" in taken.stderr and "already exists" in taken.stderr
    assert metrics_of(job_dir) == before

    # One more fine-tuning epoch: the rerun must neither redo stage 1 nor start fine-tuning afresh.
    result = run_launch(*TRANSFER, "model.fine_tune.epochs=2", f"hydra.run.dir={job_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    after = metrics_of(job_dir)
    assert after["resumed_from_epoch"] == 2 and after["history"][:2] == before["history"]
    assert [(stage["name"], stage["first_epoch"], stage["last_epoch"]) for stage in after["stages"]] == [
        ("train", 1, 1), ("fine_tune", 2, 3)]
    assert after["history"][2]["learning_rate"] == pytest.approx(FINE_TUNE_LR)

    import keras

    resumed = keras.models.load_model(job_dir / "state" / "last.keras")
    assert len(resumed.trainable_weights) == before["stages"][1]["trainable_weights"]
    # A second export is a new TF Serving version beside the first.
    assert after["export"]["version"] == 2 and (job_dir / "export" / "serving" / "1").is_dir()


def test_exported_saved_model_serves_what_the_best_model_predicts(transfer_job):
    import keras
    import tensorflow as tf

    exported = metrics_of(transfer_job)["export"]
    assert Path(exported["saved_model"]) == transfer_job / "export" / "serving" / "1"
    images = digits()
    expected = keras.models.load_model(transfer_job / "checkpoints" / "best.keras").predict(images, verbose=0)
    serving = tf.saved_model.load(exported["saved_model"]).signatures["serving_default"]
    (served,) = serving(tf.constant(images)).values()
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)


def test_tflite_model_runs_in_the_interpreter_close_to_keras(transfer_job):
    import keras
    import tensorflow as tf

    tflite_path = Path(metrics_of(transfer_job)["export"]["tflite"])
    assert tflite_path == transfer_job / "export" / "model.tflite"
    images = digits()
    expected = keras.models.load_model(transfer_job / "checkpoints" / "best.keras").predict(images, verbose=0)
    interpreter = tf.lite.Interpreter(model_path=str(tflite_path))
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    predictions = interpreter.get_tensor(target["index"])
    assert predictions.shape == (len(images), 10)
    np.testing.assert_allclose(predictions, expected, atol=1e-4)


def test_a_schedule_drives_the_learning_rate_of_a_job(tmp_path):
    # Warm-up over the first half of the steps, then cosine to 0: the lr peaks at the end of epoch 1.
    result = run_launch(
        "model=mlp", "lr_schedule=warmup", "lr_schedule.warmup_fraction=0.5", "lr=2e-3", "trainer.epochs=2",
        "data.max_train_samples=256", "trainer.batch_size=64", "trainer.verbose=0", "storage.uri=null",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    history = metrics_of(tmp_path)["history"]
    assert history[0]["learning_rate"] == pytest.approx(2e-3, rel=1e-4)
    assert history[1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)


def test_a_missing_weights_file_is_named_before_training(tmp_path):
    missing = tmp_path / "absent" / "mobilenet.h5"
    result = run_launch("model=transfer", f"model.weights={missing}", "storage.uri=null",
                        f"hydra.run.dir={tmp_path / 'job'}")
    assert result.returncode == 2
    assert f"no file at '{missing}'" in result.stderr and "model.weights" in result.stderr
    assert not (tmp_path / "job" / "metrics.json").exists()
