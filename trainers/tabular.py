"""Tables from CSV files, and what the model's input layers are built with: the numeric columns'
statistics (Normalization) and the categorical columns' vocabularies (StringLookup).

Features are the columns other than the target, in the file's order (the order a saved model takes an
all-numeric row in). Text columns become categories; every problem is reported with the file, column and
line before a model is built.
"""

from __future__ import annotations

import csv
import logging
import math

import numpy as np

from .schema import ConfigError
from .splits import resolve_data_path

log = logging.getLogger(__name__)


def read_rows(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets often write a BOM
        rows = [row for row in csv.reader(file) if row]
    if not rows:
        raise ConfigError(f"data.path: {path} is empty; expected a CSV file with a header row.")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ConfigError(f"{path}, line {line}: {len(row)} fields where the header has {len(header)}.")
    if not body:
        raise ConfigError(f"data.path: {path} has a header but no rows.")
    return header, body


def numeric_column(path, column: str, values: list[str], fix: str = "") -> np.ndarray:
    """The cells of one column as float32; the first empty, non-numeric or NaN cell is refused with its line
    (`fix`: what the user can do about a non-numeric cell; by default, drop or encode the column)."""
    numbers = []
    for line, value in enumerate(values, start=2):
        if not value.strip():
            raise ConfigError(f"{path}: column {column!r} has an empty value on line {line}; fill or drop it.")
        try:
            number = float(value)
        except ValueError:
            fix = fix or f"Drop it with data.exclude_columns=[{column}] or encode it as numbers."
            raise ConfigError(f"{path}: column {column!r} is not numeric (line {line}: {value!r}). {fix}") from None
        if math.isnan(number):
            raise ConfigError(
                f"{path}: column {column!r} has a missing value ({value!r}) on line {line}; fill or drop it."
            )
        numbers.append(number)
    return np.array(numbers, dtype="float32")


def _labels(path, data_cfg, values: list[str]) -> np.ndarray:
    target = data_cfg.target
    if data_cfg.task == "regression":
        return numeric_column(path, target, values)
    if data_cfg.task == "multilabel":
        raise ConfigError("data.task=multilabel does not fit data=csv (one target column). Use binary or multiclass.")
    classes = sorted(set(values))
    try:  # numeric labels in numeric order: 2 before 10
        classes = sorted(classes, key=float)
    except ValueError:
        pass
    if data_cfg.task == "binary" and len(classes) != 2:
        raise ConfigError(
            f"data.task=binary needs exactly 2 distinct values in column {target!r} of {path}; it has "
            f"{len(classes)} ({', '.join(classes[:10])}). Use data.task=multiclass or regression."
        )
    index = {name: position for position, name in enumerate(classes)}
    log.info("%s: classes of %r in label order: %s", path, target, classes)
    dtype = "float32" if data_cfg.task == "binary" else "int32"
    return np.array([index[value] for value in values], dtype=dtype)


def load_csv(data_cfg) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a CSV table. All-numeric features come as a float32 matrix; with categorical
    (text) columns, as a structured array with one named field per column (float32 or the raw strings),
    which the pipeline hands to the model as a dict of columns."""
    path = resolve_data_path(data_cfg.path, data_cfg.name, "a CSV file with a header row", "data.path=houses.csv")
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=csv reads one CSV file.")
    header, rows = read_rows(path)
    listed = ", ".join(header)
    if not data_cfg.target:
        raise ConfigError(f"data=csv needs data.target, the column to predict. Columns in {path}: {listed}.")
    if data_cfg.target not in header:
        raise ConfigError(f"data.target={data_cfg.target}: no such column in {path}. Columns: {listed}.")
    for setting in ("exclude_columns", "categorical_columns"):
        unknown = [name for name in data_cfg[setting] if name not in header]
        if unknown:
            raise ConfigError(f"data.{setting}: no column {', '.join(unknown)} in {path}. Columns: {listed}.")
    if data_cfg.target in data_cfg.categorical_columns:
        raise ConfigError(f"data.categorical_columns: {data_cfg.target!r} is the target; list feature columns only.")
    features = [name for name in header if name != data_cfg.target and name not in data_cfg.exclude_columns]
    if not features:
        raise ConfigError(f"{path}: no feature columns left besides the target {data_cfg.target!r}.")
    columns = {name: [row[position] for row in rows] for position, name in enumerate(header)}
    categorical = [
        name for name in features if _is_categorical(path, name, columns[name], data_cfg.categorical_columns)
    ]
    y = _labels(path, data_cfg, columns[data_cfg.target])
    log.info("%s: %d rows; features in model input order: %s", path, len(rows), features)
    if not categorical:
        return np.stack([numeric_column(path, name, columns[name]) for name in features], axis=1), y
    table = np.empty(len(rows), dtype=[(name, object if name in categorical else "float32") for name in features])
    for name in features:
        table[name] = (
            [value.strip() for value in columns[name]] if name in categorical
            else numeric_column(path, name, columns[name])
        )
    return table, y


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _is_categorical(path, column: str, values: list[str], listed: list[str]) -> bool:
    """Text columns are categories; a column of numbers with a few words in it is more likely a typo than
    categories, so it is refused with the first such cell unless the user lists it as categorical."""
    if column in listed:
        return True
    filled = [(line, value) for line, value in enumerate(values, start=2) if value.strip()]
    words = [(line, value) for line, value in filled if not _is_number(value)]
    if not words:
        return False
    if len(words) < len(filled) / 2:
        line, value = words[0]
        raise ConfigError(
            f"{path}: column {column!r} is mostly numbers but line {line} has {value!r} "
            f"({len(words)} of {len(filled)} cells are not numbers). Fix the cell(s), or treat every value as a "
            f"category with data.categorical_columns=[{column}], or drop it with data.exclude_columns=[{column}]."
        )
    return True


def is_table(x: np.ndarray) -> bool:
    """Whether `x` holds named columns (a table with categorical columns) rather than a feature matrix."""
    return x.dtype.names is not None


def column_encodings(x_train: np.ndarray, max_one_hot_categories: int) -> list[dict]:
    """How the model takes each column of a table: numeric (normalised), one_hot or embedding, with the
    categories seen in the training split (most frequent first; anything else is out of vocabulary)."""
    encodings = []
    for name in x_train.dtype.names:
        if x_train.dtype[name].kind != "O":  # not a column of Python objects (strings): numbers
            encodings.append({"name": name, "encoding": "numeric"})
            continue
        values, counts = np.unique(x_train[name].astype(str), return_counts=True)
        vocabulary = [str(value) for value in values[np.lexsort((values, -counts))]]
        encoding = "one_hot" if len(vocabulary) <= max_one_hot_categories else "embedding"
        encodings.append({"name": name, "encoding": encoding, "vocabulary": vocabulary})
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


def feature_statistics(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the training split (of a table: its numeric columns, in order): what
    keras.layers.Normalization.adapt computes, taken here so the layer can be created inside the
    distribution strategy's scope."""
    if is_table(x_train):
        numeric = [name for name in x_train.dtype.names if x_train.dtype[name].kind != "O"]
        x_train = np.stack([x_train[name] for name in numeric], axis=1) if numeric else np.zeros((len(x_train), 0))
    x = x_train.astype("float64")
    return x.mean(axis=0).astype("float32"), x.var(axis=0).astype("float32")
