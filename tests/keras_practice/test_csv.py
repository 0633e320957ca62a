"""data=csv: one target column, regression and classification, with a Normalization layer built from the
training split inside the model, so the saved model takes a row's raw values in the file's column order;
text columns become categories (one-hot or embedded) the saved model takes as raw strings."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_cars_csv, write_houses_csv
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
    # An all-numeric table says what each column became too.
    assert metrics["features"] == {"area": "numeric", "rooms": "numeric", "age": "numeric",
                                   "kind": "excluded (data.exclude_columns)"}
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


# ------------------------------------------------------------------ categorical (text) columns
@pytest.fixture(scope="module")
def cars_job(tmp_path_factory):
    cars = write_cars_csv(tmp_path_factory.mktemp("data") / "cars.csv")
    job_dir, metrics = train(cars, tmp_path_factory, "data.target=price", "lr=1e-2")
    return cars, job_dir, metrics


def raw_rows(path, **changes) -> dict:
    """The CSV's feature columns as the saved model takes them: a dict of (rows, 1) columns, text as strings."""
    import tensorflow as tf

    with open(path) as file:
        rows = list(csv.DictReader(file))
    columns = {}
    for name in ("power", "age", "brand", "colour", "dealer"):
        values = changes.get(name) or [row[name] for row in rows]
        numeric = name in ("power", "age")
        columns[name] = tf.constant(np.array(values, "float32" if numeric else str)[:, None])
    return columns, np.array([float(row["price"]) for row in rows])


def test_text_columns_become_categories_inside_the_model(cars_job):
    import keras

    cars, job_dir, metrics = cars_job
    # Few categories: one-hot; more than data.max_one_hot_categories (20): an embedding.
    assert metrics["features"] == {"power": "numeric", "age": "numeric", "brand": "one_hot (5 categories)",
                                   "colour": "one_hot (4 categories)", "dealer": "embedding (40 categories)"}
    # The brand moves the price by -6,000..+15,000: without it the error could not get below ~6,000.
    assert metrics["test"]["mae"] < 3500

    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    columns, prices = raw_rows(cars)
    predicted = model.predict(columns, verbose=0)[:, 0]
    assert np.mean(np.abs(predicted - prices)) < 3500

    # Categories never seen in training go to the out-of-vocabulary slot (index 0) instead of failing.
    lookup = model.get_layer("lookup_brand")
    assert lookup(np.array([["tesla"]]))[0, 0] == 0 and lookup(np.array([["audi"]]))[0, 0] > 0
    unseen, _ = raw_rows(cars, brand=["tesla"] * len(prices), dealer=["dealer99"] * len(prices))
    assert np.isfinite(model.predict(unseen, verbose=0)).all()


def test_categories_come_from_the_training_split_most_frequent_first(tmp_path):
    from trainers.tabular import column_encodings

    cars = write_cars_csv(tmp_path / "cars.csv", rows=60)
    cfg = OmegaConf.structured(DataConfig(name="csv", task="regression", input_kind="tabular", path=str(cars),
                                          target="price", categorical_columns=["age"], val_fraction=0.15))
    splits = load_splits(cfg)
    assert splits.x_train.dtype.names == ("power", "age", "brand", "colour", "dealer")
    encodings = {column["name"]: column for column in column_encodings(splits.x_train, max_one_hot_categories=5)}
    assert encodings["power"] == {"name": "power", "encoding": "numeric"}
    brands = list(splits.x_train["brand"])
    assert encodings["brand"]["vocabulary"] == sorted(set(brands), key=lambda brand: (-brands.count(brand), brand))
    # A listed numeric column is categorical too: every distinct age of the training rows is a category.
    assert (encodings["age"]["encoding"] == "embedding"
            and set(encodings["age"]["vocabulary"]) == set(splits.x_train["age"]))
    assert set(encodings["dealer"]["vocabulary"]) == set(splits.x_train["dealer"])  # not the test rows' dealers
