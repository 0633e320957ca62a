"""Tables from CSV files, and the feature statistics the model's Normalization layer is built with.

Features are the numeric columns other than the target (in the file's order, which is the order a saved
model takes them in); every problem is reported with the file and column before a model is built.
"""

from __future__ import annotations

import csv
import logging
import math

import numpy as np

from .schema import ConfigError
from .splits import resolve_data_path

log = logging.getLogger(__name__)


def _read_rows(path) -> tuple[list[str], list[list[str]]]:
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


def _numbers(path, column: str, values: list[str]) -> np.ndarray:
    numbers = []
    for line, value in enumerate(values, start=2):
        if not value.strip():
            raise ConfigError(f"{path}: column {column!r} has an empty value on line {line}; fill or drop it.")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"{path}: column {column!r} is not numeric (line {line}: {value!r}). Drop it with "
                f"data.exclude_columns=[{column}] or encode it as numbers."
            ) from None
        if math.isnan(number):
            raise ConfigError(f"{path}: column {column!r} has a missing value ({value!r}) on line {line}; fill or drop it.")
        numbers.append(number)
    return np.array(numbers, dtype="float32")


def _labels(path, data_cfg, values: list[str]) -> np.ndarray:
    target = data_cfg.target
    if data_cfg.task == "regression":
        return _numbers(path, target, values)
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
    path = resolve_data_path(data_cfg.path, data_cfg.name, "a CSV file with a header row", "data.path=houses.csv")
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=csv reads one CSV file.")
    header, rows = _read_rows(path)
    listed = ", ".join(header)
    if not data_cfg.target:
        raise ConfigError(f"data=csv needs data.target, the column to predict. Columns in {path}: {listed}.")
    if data_cfg.target not in header:
        raise ConfigError(f"data.target={data_cfg.target}: no such column in {path}. Columns: {listed}.")
    unknown = [name for name in data_cfg.exclude_columns if name not in header]
    if unknown:
        raise ConfigError(f"data.exclude_columns: no column {', '.join(unknown)} in {path}. Columns: {listed}.")
    features = [name for name in header if name != data_cfg.target and name not in data_cfg.exclude_columns]
    if not features:
        raise ConfigError(f"{path}: no feature columns left besides the target {data_cfg.target!r}.")
    columns = {name: [row[position] for row in rows] for position, name in enumerate(header)}
    x = np.stack([_numbers(path, name, columns[name]) for name in features], axis=1)
    y = _labels(path, data_cfg, columns[data_cfg.target])
    log.info("%s: %d rows; features in model input order: %s", path, len(x), features)
    return x, y


def feature_statistics(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the training split: what keras.layers.Normalization.adapt computes,
    taken here so the layer can be created inside the distribution strategy's scope."""
    x = x_train.astype("float64")
    return x.mean(axis=0).astype("float32"), x.var(axis=0).astype("float32")
