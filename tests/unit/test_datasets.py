"""Loaders give the splits and label shapes each task needs, offline, and refuse what they cannot read."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from trainers.datasets import load_splits
from trainers.schema import ConfigError, DataConfig


def data_cfg(**values):
    return OmegaConf.structured(DataConfig(**values))


def test_digits_are_split_into_disjoint_train_validation_and_test():
    splits = load_splits(data_cfg(name="digits", task="multiclass", input_kind="image", val_fraction=0.15,
                                  test_fraction=0.2))
    sizes = len(splits.x_train), len(splits.x_val), len(splits.x_test)
    assert sum(sizes) == 1797 and sizes[2] == round(1797 * 0.2)
    assert splits.x_train.shape[1:] == (8, 8, 1) and 0.0 <= splits.x_train.min() and splits.x_train.max() <= 1.0
    train_rows = {row.tobytes() for row in splits.x_train}
    assert not any(row.tobytes() in train_rows for row in splits.x_test[:100])
    assert set(np.unique(splits.y_train)) == set(range(10))


def test_splits_do_not_depend_on_the_job_seed():
    first = load_splits(data_cfg(name="digits", task="multiclass", input_kind="image"))
    second = load_splits(data_cfg(name="digits", task="multiclass", input_kind="image"))
    np.testing.assert_array_equal(first.y_test, second.y_test)


@pytest.mark.parametrize(
    "name,task,label_shape",
    [("digits_multilabel", "multilabel", (3,)), ("breast_cancer", "binary", ()), ("diabetes", "regression", ())],
)
def test_offline_tables_carry_their_task_labels(name, task, label_shape):
    splits = load_splits(data_cfg(name=name, task=task, input_kind="image" if "digits" in name else "tabular"))
    assert splits.y_train.shape[1:] == label_shape


def test_max_train_samples_caps_the_training_split_only():
    splits = load_splits(data_cfg(name="digits", task="multiclass", input_kind="image", max_train_samples=100))
    assert len(splits.x_train) == 100 and len(splits.x_test) == round(1797 * 0.2)


def test_a_task_that_does_not_fit_the_labels_is_refused():
    with pytest.raises(ConfigError, match="data.task=multilabel needs one row of 0/1 labels"):
        load_splits(data_cfg(name="digits", task="multilabel", input_kind="image"))


def test_mnist_format_file_is_read_through_the_mnist_loader(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 50),
             x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 20))
    splits = load_splits(data_cfg(name="mnist", task="multiclass", input_kind="image", path=str(path),
                                  val_fraction=0.2))
    assert splits.x_train.shape == (40, 28, 28, 1) and len(splits.x_val) == 10 and len(splits.x_test) == 20
    assert splits.x_train.dtype == np.float32 and splits.x_train.max() <= 1.0


def test_imdb_format_file_is_padded_and_folds_rare_words(tmp_path):
    reviews = np.empty(3, dtype=object)
    reviews[:] = [[1, 14, 22, 16], [1, 5, 25_000], [1] + [7] * 300]
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=reviews, y_train=np.array([1, 0, 1]), x_test=reviews, y_test=np.array([0, 1, 1]))
    cfg = data_cfg(name="imdb", task="binary", input_kind="tokens", path=str(path), num_words=1000,
                   sequence_length=50, val_fraction=0.34)
    splits = load_splits(cfg)
    assert splits.x_test.shape == (3, 50) and splits.x_test.max() < 1000
    assert splits.x_test[1, 2] == 2  # id 25,000 is out of a 1,000-word vocabulary


def test_a_missing_local_file_names_the_path(tmp_path):
    missing = tmp_path / "nothing.npz"
    with pytest.raises(ConfigError, match=f"data.path: no file at '{missing}'"):
        load_splits(data_cfg(name="cifar10", task="multiclass", input_kind="image", path=str(missing)))


@pytest.mark.parametrize("name", ["reuters", "boston_housing"])
def test_a_local_copy_of_the_downloaded_file_splits_as_keras_datasets_does(tmp_path, monkeypatch, name):
    """data.path to reuters.npz / boston_housing.npz (arrays x and y): the same test split, order and word ids
    as keras.datasets' own loader gives for that file."""
    import importlib

    import keras

    from tests.keras_practice.makers import write_boston_npz, write_reuters_npz

    path = (write_reuters_npz if name == "reuters" else write_boston_npz)(tmp_path / f"{name}.npz")
    # keras.datasets would download (and hash-check) its file: hand its loader the test's file instead.
    monkeypatch.setattr(importlib.import_module(f"keras.src.datasets.{name}"), "get_file",
                        lambda *args, **kwargs: str(path))
    loader = getattr(keras.datasets, name).load_data
    task, kind = ("multiclass", "tokens") if name == "reuters" else ("regression", "tabular")
    cfg = data_cfg(name=name, task=task, input_kind=kind, path=str(path), num_words=1000, sequence_length=30)
    splits = load_splits(cfg)
    (x_train, y_train), (x_test, y_test) = loader(num_words=1000) if name == "reuters" else loader()
    np.testing.assert_allclose(splits.y_test, y_test, rtol=1e-6)  # float32 prices, class ids exactly
    assert len(splits.y_train) + len(splits.y_val) == len(y_train)
    if name == "reuters":
        from keras.utils import pad_sequences

        expected = pad_sequences(list(x_test), maxlen=30, padding="post", truncating="post")
        np.testing.assert_array_equal(splits.x_test, expected)
        assert splits.x_test[0, 0] == 1 and splits.y_test.dtype == np.int32  # the start id; class ids
    else:
        np.testing.assert_allclose(splits.x_test, x_test, rtol=1e-6)


def test_an_npz_without_the_expected_arrays_is_named(tmp_path):
    path = tmp_path / "reuters.npz"
    np.savez(path, words=np.arange(3))
    with pytest.raises(ConfigError,
                       match=r"holds the arrays \['words'\]; expected x_train, y_train, x_test, y_test, or x and y"):
        load_splits(data_cfg(name="reuters", task="multiclass", input_kind="tokens", path=str(path)))
