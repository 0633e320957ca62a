"""Data set loaders: each returns numpy splits, or tf.data streams for data read from files as it trains
(image folders); the tf.data pipeline is built in `pipeline.py`."""

from __future__ import annotations

import os
from typing import Callable, Union

import numpy as np

from .class_folders import load_image_folder
from .csv_table import load_csv
from .schema import ConfigError
from .splits import SPLIT_SEED, Splits, Streams
from .splits import holdout as _holdout
from .text import load_imdb_text, load_text_folder
from .tfrecord import load_tfrecord
from .timeseries import load_timeseries


# ------------------------------------------------------------------ scikit-learn (offline)
def _digits_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]  # pixel values are 0..16
    return images, digits.target.astype("int32")


def _load_digits(_cfg) -> tuple[np.ndarray, np.ndarray]:
    return _digits_images()


def _load_digits_multilabel(_cfg) -> tuple[np.ndarray, np.ndarray]:
    images, digit = _digits_images()
    labels = np.stack([digit % 2 == 0, digit >= 5, np.isin(digit, [2, 3, 5, 7])], axis=1)
    return images, labels.astype("float32")


def _load_breast_cancer(_cfg) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer()
    return table.data.astype("float32"), table.target.astype("float32")


def _load_diabetes(_cfg) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    table = load_diabetes()  # features come already centred and scaled
    return table.data.astype("float32"), table.target.astype("float32")


UNSPLIT_LOADERS: dict[str, Callable] = {
    "digits": _load_digits,
    "digits_multilabel": _load_digits_multilabel,
    "breast_cancer": _load_breast_cancer,
    "diabetes": _load_diabetes,
    "csv": load_csv,
}


# ------------------------------------------------------------------ keras.datasets (download once)
# What keras.datasets.<name>.load_data does to the `x`/`y` arrays of the file it downloads (reuters.npz,
# boston_housing.npz): shuffle with this seed, then keep the first 1 - test split for training.
KERAS_SPLIT_SEED = 113
KERAS_TEST_SPLIT = 0.2
# Reuters word ids as keras.datasets.reuters gives them: 1 starts each newswire, real words from 3 up.
START_ID, INDEX_FROM = 1, 3


def _read_npz(name: str, path: str) -> tuple[tuple, tuple]:
    """A local copy of a keras.datasets file: either already split (x_train, y_train, x_test, y_test, as
    imdb.npz and mnist.npz are), or the `x`/`y` arrays that reuters.npz and boston_housing.npz hold, which
    are split (and Reuters' word ids indexed) here exactly as their Keras loaders do."""
    if not os.path.isfile(path):
        raise ConfigError(f"data.path: no file at {path!r}. Give the path of an .npz file or null.")
    with np.load(path, allow_pickle=True) as npz:
        if {"x_train", "y_train", "x_test", "y_test"} <= set(npz.files):
            return (npz["x_train"], npz["y_train"]), (npz["x_test"], npz["y_test"])
        if {"x", "y"} <= set(npz.files):
            x, y = npz["x"], npz["y"]
            return _split_like_keras(_index_like_keras(x) if name == "reuters" else x, y)
        raise ConfigError(
            f"data.path: {path!r} holds the arrays {sorted(npz.files)}; expected x_train, y_train, x_test, "
            "y_test, or x and y (the file keras.datasets downloads)."
        )


def _split_like_keras(x: np.ndarray, y: np.ndarray) -> tuple[tuple, tuple]:
    order = np.arange(len(x))
    np.random.RandomState(KERAS_SPLIT_SEED).shuffle(order)
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - KERAS_TEST_SPLIT))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _index_like_keras(sequences) -> np.ndarray:
    """Raw word ranks (1 = most frequent) as keras.datasets.reuters returns them: a start id, then the
    ranks shifted past the padding, start and out-of-vocabulary ids."""
    indexed = np.empty(len(sequences), dtype=object)
    indexed[:] = [[START_ID] + [int(word) + INDEX_FROM for word in sequence] for sequence in sequences]
    return indexed


def _from_keras(name: str, cfg) -> tuple[tuple, tuple]:
    if cfg.path:
        return _read_npz(name, cfg.path)
    import keras

    module = getattr(keras.datasets, name)
    kwargs = {"num_words": cfg.num_words} if name in ("imdb", "reuters") else {}
    try:
        return module.load_data(**kwargs)
    except Exception as error:  # no network, proxy, partial file...
        raise ConfigError(
            f"data={name}: keras.datasets.{name}.load_data() failed ({error}). "
            f"Without internet access, set data.path to a local .npz copy."
        ) from error


def _images(name: str, cfg) -> Splits:
    (x_train, y_train), (x_test, y_test) = _from_keras(name, cfg)

    def scale(images: np.ndarray) -> np.ndarray:
        images = images.astype("float32") / 255.0
        return images[..., np.newaxis] if images.ndim == 3 else images

    return Splits(
        scale(x_train), y_train.reshape(-1).astype("int32"), scale(x_test), y_test.reshape(-1).astype("int32")
    )


def _tokens(name: str, cfg) -> Splits:
    (x_train, y_train), (x_test, y_test) = _from_keras(name, cfg)
    from keras.utils import pad_sequences

    def pad(sequences) -> np.ndarray:
        # Ids at or above num_words fold into the out-of-vocabulary id 2, as keras.datasets.imdb does.
        padded = pad_sequences(list(sequences), maxlen=cfg.sequence_length, padding="post", truncating="post")
        return np.where(padded >= cfg.num_words, 2, padded).astype("int32")

    label_dtype = "int32" if cfg.task == "multiclass" else "float32"
    return Splits(pad(x_train), y_train.astype(label_dtype), pad(x_test), y_test.astype(label_dtype))


def _table(name: str, cfg) -> Splits:
    (x_train, y_train), (x_test, y_test) = _from_keras(name, cfg)
    x_train, y_train, x_test, y_test = (
        np.asarray(array, dtype="float32") for array in (x_train, y_train, x_test, y_test)
    )
    return Splits(x_train, y_train, x_test, y_test)


SPLIT_LOADERS: dict[str, Callable[..., Splits]] = {
    "mnist": lambda cfg: _images("mnist", cfg),
    "fashion_mnist": lambda cfg: _images("fashion_mnist", cfg),
    "cifar10": lambda cfg: _images("cifar10", cfg),
    "imdb": lambda cfg: _tokens("imdb", cfg),
    "reuters": lambda cfg: _tokens("reuters", cfg),
    "boston_housing": lambda cfg: _table("boston_housing", cfg),
    "text_folder": load_text_folder,
    "imdb_text": load_imdb_text,
}

# Read from disk by tf.data while training, never held in memory as arrays.
STREAM_LOADERS: dict[str, Callable[..., Streams]] = {
    "image_folder": load_image_folder,
    # Windows are cut from the series as they are read: they overlap, so as arrays they would repeat each row.
    "timeseries": load_timeseries,
    # TFRecord files, parsed with the declared feature spec as they are read.
    "tfrecord": load_tfrecord,
}

DATASET_NAMES = tuple(sorted({*UNSPLIT_LOADERS, *SPLIT_LOADERS, *STREAM_LOADERS}))


def load_data(cfg) -> Union[Splits, Streams]:
    """What the data config names: streams for file-backed data sets, numpy splits for the rest."""
    if cfg.name in STREAM_LOADERS:
        return STREAM_LOADERS[cfg.name](cfg)
    return load_splits(cfg)


def load_splits(cfg) -> Splits:
    """Train, validation and test arrays for `cfg` (the data config). Splits do not depend on the job's
    seed, so trials with different seeds are scored on the same test examples."""
    rng = np.random.default_rng(SPLIT_SEED)
    if cfg.name in UNSPLIT_LOADERS:
        x, y, *table = UNSPLIT_LOADERS[cfg.name](cfg)  # data=csv adds what became of each column
        x_train, y_train, x_test, y_test = _holdout(x, y, cfg.test_fraction, rng)
        splits = Splits(x_train, y_train, x_test, y_test, table=table[0] if table else None)
    elif cfg.name in SPLIT_LOADERS:
        splits = SPLIT_LOADERS[cfg.name](cfg)
    else:
        raise ConfigError(
            f"Invalid value for `data.name`: received {cfg.name!r}. Allowed: one of {', '.join(DATASET_NAMES)}."
        )
    if splits.x_val is None:
        x_train, y_train, x_val, y_val = _holdout(splits.x_train, splits.y_train, cfg.val_fraction, rng)
        splits = Splits(x_train, y_train, splits.x_test, splits.y_test, x_val, y_val, table=splits.table)
    if cfg.max_train_samples is not None:
        splits.x_train = splits.x_train[: cfg.max_train_samples]
        splits.y_train = splits.y_train[: cfg.max_train_samples]
    _check_labels(cfg, splits.y_train)
    return splits


def _check_labels(cfg, labels: np.ndarray) -> None:
    """Refuse a task that does not match the labels, before a model is built around it."""
    if cfg.task == "multilabel" and labels.ndim != 2:
        raise ConfigError(
            f"data.task=multilabel needs one row of 0/1 labels per example, but {cfg.name} has labels of "
            f"shape {labels.shape}. Use data.task=multiclass or binary for one label per example."
        )
    if cfg.task in ("binary", "multiclass") and labels.ndim != 1:
        raise ConfigError(
            f"data.task={cfg.task} needs one label per example, but {cfg.name} has labels of shape "
            f"{labels.shape}. Use data.task=multilabel."
        )
    if cfg.task == "binary" and not np.isin(labels, [0, 1]).all():
        raise ConfigError(f"data.task=binary needs labels 0 and 1; {cfg.name} has {np.unique(labels)[:10]}.")


def num_outputs(task: str, labels: np.ndarray, *other_labels: np.ndarray) -> int:
    """Units of the output layer. Multiclass: one per class id up to the highest in any split, so a class
    that happens to be missing from the training split (rare Reuters topics) still has its unit."""
    if task == "multiclass":
        return int(max(array.max() for array in (labels, *other_labels) if len(array))) + 1
    if task == "multilabel":
        return int(labels.shape[1])
    return 1
