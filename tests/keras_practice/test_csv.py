"""data=csv: one target column, regression and classification, with a Normalization layer built from the
training split inside the model, so the saved model takes a row's raw values in the file's column order."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_houses_csv
from trainers.datasets import load_splits
from trainers.schema import DataConfig

FEATURES = ["area", "rooms", "age"]


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    return write_houses_csv(tmp_path_factory.mktemp("data") / "houses.csv")


def read_table(path):
    with open(path) as file:
        rows = list(csv.DictReader(file))
    return np.array([[float(row[name]) for name in FEATURES] for row in rows], "float32"), rows


def train(houses, tmp_path_factory, *overrides):
    job_dir = tmp_path_factory.mktemp("csv_job")
    result = run_launch("model=mlp", "data=csv", f"data.path={houses}", "trainer.epochs=12", "storage.uri=null",
                        f"hydra.run.dir={job_dir}", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_dir, json.loads((job_dir / "metrics.json").read_text())


def test_regression_predicts_prices_in_their_own_units(houses, tmp_path_factory):
    import keras

    # The text column `kind` is not a feature: leave it out (regression is data=csv's default task).
    job_dir, metrics = train(houses, tmp_path_factory, "data.target=price", "data.exclude_columns=[kind]")
    x, rows = read_table(houses)
    prices = np.array([float(row["price"]) for row in rows])
    assert set(metrics["test"]) == {"loss", "mae"}
    assert metrics["test"]["mae"] < 0.25 * prices.std()  # far better than guessing the mean

    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    predicted = model.predict(x, verbose=0)[:, 0]
    assert np.mean(np.abs(predicted - prices)) < 0.25 * prices.std()

    data_cfg = OmegaConf.structured(DataConfig(name="csv", task="regression", input_kind="tabular", path=str(houses),
                                               target="price", exclude_columns=["kind"], val_fraction=0.15))
    x_train = load_splits(data_cfg).x_train
    normalization = model.get_layer("feature_normalization")
    np.testing.assert_allclose(np.ravel(normalization.mean), x_train.mean(axis=0), rtol=1e-4)
    assert not np.allclose(x_train.mean(axis=0), x.mean(axis=0), rtol=1e-4)  # training rows, not every row


def test_classification_of_a_word_column(houses, tmp_path_factory):
    import keras

    job_dir, metrics = train(houses, tmp_path_factory, "data.target=kind", "data.task=multiclass",
                             "data.exclude_columns=[price]", "lr=1e-2")
    assert metrics["test"]["accuracy"] >= 0.7  # three price bands from area, rooms and age
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    x, _ = read_table(houses)
    assert model.predict(x[:5], verbose=0).shape == (5, 3)  # cheap, dear, mid
