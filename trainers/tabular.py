"""What the model's input layers for a table are built with: the numeric columns' statistics (medians for
missing cells, Normalization) and the categorical columns' vocabularies (StringLookup), and the words the log
and metrics.json's `features` use for what each column became. The table itself comes from csv_table."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from .csv_table import TableInfo

log = logging.getLogger(__name__)


def is_table(x: np.ndarray) -> bool:
    """Whether `x` holds named columns (a table with categorical columns) rather than a feature matrix."""
    return x.dtype.names is not None


def column_encodings(x_train: np.ndarray, max_one_hot_categories: int, missing_token: Optional[str] = None) -> list:
    """How the model takes each column of a table: numeric (normalised), one_hot or embedding, with the
    categories seen in the training split (most frequent first; anything else is out of vocabulary). A
    categorical column whose training cells include missing ones (`missing_token`) has that category too."""
    encodings = []
    for name in x_train.dtype.names:
        if x_train.dtype[name].kind != "O":  # not a column of Python objects (strings): numbers
            encodings.append({"name": name, "encoding": "numeric"})
            continue
        values, counts = np.unique(x_train[name].astype(str), return_counts=True)
        vocabulary = [str(value) for value in values[np.lexsort((values, -counts))]]
        encoding = "one_hot" if len(vocabulary) <= max_one_hot_categories else "embedding"
        column = {"name": name, "encoding": encoding, "vocabulary": vocabulary}
        if missing_token is not None and missing_token in vocabulary:
            column["missing"] = missing_token
        encodings.append(column)
    described = ", ".join(
        f"{column['name']} {column['encoding']}"
        + (f" ({len(column['vocabulary'])} categories)" if "vocabulary" in column else "")
        for column in encodings
    )
    log.info("Columns as the model takes them (categories from the training split): %s", described)
    return encodings


def table_columns(x: np.ndarray) -> dict[str, np.ndarray]:
    """A table as the dict of (rows, 1) columns the model takes: numbers as float32, categories as strings."""
    return {
        name: (x[name].astype(str) if x.dtype[name].kind == "O" else x[name].astype("float32"))[:, np.newaxis]
        for name in x.dtype.names
    }


def _numeric_matrix(x_train: np.ndarray) -> tuple[list, np.ndarray]:
    """The numeric features of the training split as a float64 matrix, and their positions (of a table: names)."""
    if is_table(x_train):
        numeric = [name for name in x_train.dtype.names if x_train.dtype[name].kind != "O"]
        matrix = np.stack([x_train[name] for name in numeric], axis=1) if numeric else np.zeros((len(x_train), 0))
        return numeric, matrix.astype("float64")
    return list(range(x_train.shape[1])), x_train.astype("float64")


def numeric_statistics(x_train: np.ndarray, impute: bool = False) -> dict:
    """DataSpec fields for the numeric features of the training split: the mean and variance
    keras.layers.Normalization.adapt would compute (taken here so the layer can be created inside the
    distribution strategy's scope); with `impute`, also each feature's median (what a missing cell, NaN,
    becomes inside the model; statistics are of the filled values) and the positions of the features with a
    missing cell in training (each gets a 0/1 was-missing input)."""
    _, x = _numeric_matrix(x_train)
    gaps = np.isnan(x)
    statistics = {}
    if impute:
        with np.errstate(all="ignore"):
            median = np.where(gaps.all(axis=0), 0.0, np.nanmedian(np.where(gaps.all(axis=0), 0.0, x), axis=0))
        x = np.where(gaps, median, x)
        statistics["feature_median"] = median.astype("float32")
        statistics["missing_indicators"] = [int(i) for i in np.flatnonzero(gaps.any(axis=0))]
        statistics["missing_counts"] = [int(count) for count in gaps.sum(axis=0)]
    statistics["feature_mean"] = x.mean(axis=0).astype("float32")
    statistics["feature_variance"] = x.var(axis=0).astype("float32")
    return statistics


def feature_statistics(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the training split (of a table: its numeric columns, in order)."""
    statistics = numeric_statistics(x_train)
    return statistics["feature_mean"], statistics["feature_variance"]


def describe_features(info: TableInfo, x_train: np.ndarray, columns: Optional[list], statistics: dict) -> dict:
    """What each column of the file (but the target) became, for the log and metrics.json's `features`:
    "numeric", "one_hot (5 categories)", "embedding (40 categories)", with what missing cells in the training
    split became; or why it is no input (excluded, id-like, a date taken as calendar features)."""
    numeric_names, _ = _numeric_matrix(x_train)
    if not is_table(x_train):
        numeric_names = info.inputs
    median, counts = statistics.get("feature_median"), statistics.get("missing_counts")
    categorical = {column["name"]: column for column in columns or [] if column["encoding"] != "numeric"}
    described = {}
    for name in info.inputs:
        if name in categorical:
            column = categorical[name]
            missing_cells = int(np.sum(x_train[name] == column["missing"])) if "missing" in column else 0
            gaps = f", one of them for missing cells: {missing_cells} in training" if missing_cells else ""
            described[name] = f"{column['encoding']} ({len(column['vocabulary'])} categories{gaps})"
            continue
        position = numeric_names.index(name)
        missing_cells = counts[position] if counts else 0
        described[name] = "numeric" + (
            f" ({missing_cells} missing in training: median {float(median[position]):g} filled in, with a "
            "was-missing indicator input)" if missing_cells else ""
        )
    features = {}
    for name in info.columns:
        if name in info.notes:
            features[name] = info.notes[name]
        if name in described:
            features[name] = described[name]
        date = info.notes.get(name, "").startswith("date (")
        for part in [key for key in described if date and key.startswith(f"{name}_")]:
            if part not in info.columns:  # a date's calendar features follow it
                features[part] = described[part]
    log.info("What each column became: %s", "; ".join(f"{name}: {what}" for name, what in features.items()))
    return features
