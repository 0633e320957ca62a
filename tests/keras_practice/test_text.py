"""Raw text: data=text_folder trains text_lstm through launch.py; the saved model takes raw strings
because its TextVectorization layer (vocabulary from the training split only) is inside it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_text_folder
from trainers.datasets import load_data
from trainers.pipeline import build_pipelines
from trainers.schema import DataConfig
from trainers.splits import Splits


def text_cfg(**values):
    fields = {"name": "text_folder", "task": "multiclass", "input_kind": "text", "val_fraction": 0.15,
              "test_fraction": 0.15, "num_words": 1000, "sequence_length": 16, **values}
    return OmegaConf.structured(DataConfig(**fields))


@pytest.fixture(scope="module")
def review_job(tmp_path_factory):
    reviews = write_text_folder(tmp_path_factory.mktemp("data") / "reviews", per_class=40)
    job_dir = tmp_path_factory.mktemp("text_job")
    # The command, made small.
    result = run_launch(
        "model=text_lstm", "data=text_folder", f"data.path={reviews}", "data.sequence_length=16",
        "model.units=[16]", "model.embedding_dim=16", "trainer.epochs=4", "trainer.batch_size=16", "lr=1e-2",
        "storage.uri=null", f"hydra.run.dir={job_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return job_dir


def test_text_folder_model_learns_and_its_checkpoint_predicts_on_raw_strings(review_job):
    import keras

    metrics = json.loads((review_job / "metrics.json").read_text())
    assert metrics["num_train_examples"] == 2 * 29  # 40 per class: 6 test, then 5 validation held out
    assert metrics["test"]["accuracy"] >= 0.8  # the sentiment words give the class away

    model = keras.models.load_model(review_job / "checkpoints" / "best.keras")
    assert model.input.dtype == "string" and model.layers[1].name == "text_vectorization"
    predictions = model.predict(
        tf.constant(["A wonderful film, I loved it, excellent acting.", "An awful, boring and terrible plot."]),
        verbose=0,
    )
    assert predictions.shape == (2, 2)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    # Classes are the sorted folder names: neg is 0, pos is 1.
    assert predictions[0].argmax() == 1 and predictions[1].argmax() == 0


def test_vocabulary_comes_from_the_training_split_only():
    splits = Splits(
        x_train=np.array(["alpha beta", "beta gamma"], dtype=object), y_train=np.array([0, 1], "int32"),
        x_test=np.array(["testonly words"], dtype=object), y_test=np.array([0], "int32"),
        x_val=np.array(["valonly"], dtype=object), y_val=np.array([1], "int32"),
    )
    spec = build_pipelines(text_cfg(path="unused"), splits, global_batch_size=2, seed=0).spec
    assert spec.vocabulary[:2] == ["", "[UNK]"]
    assert set(spec.vocabulary[2:]) == {"alpha", "beta", "gamma"}
    assert spec.input_kind == "text" and spec.sequence_length == 16


def test_imdb_text_reads_the_stanford_layout_and_keeps_its_test_split(tmp_path):
    """aclImdb: train/ and test/ each with neg/ and pos/; train/unsup (unlabelled) is not a class."""
    for split, count in (("train", 6), ("test", 4)):
        for name in ("neg", "pos", *(["unsup"] if split == "train" else [])):
            folder = tmp_path / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for number in range(count):
                (folder / f"{number}_7.txt").write_text(f"{name} review {number}<br />more", encoding="utf-8")
    cfg = text_cfg(name="imdb_text", task="binary", path=str(tmp_path / "aclImdb"), class_names=["neg", "pos"],
                   val_fraction=0.2)
    splits = load_data(cfg)
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (10, 2, 8)
    assert not any("unsup" in text for text in [*splits.x_train, *splits.x_val, *splits.x_test])
    assert splits.y_test.dtype == np.float32 and set(splits.y_test) == {0.0, 1.0}  # binary labels
    assert all(text.startswith("pos") == bool(label) for text, label in zip(splits.x_test, splits.y_test))
