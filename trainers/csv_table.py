"""Tables from CSV files: the features, the labels and what became of each column, ready for the splits.

Features are the columns other than the target, in the file's order (the order a saved model takes an
all-numeric row in), but for excluded columns (data.exclude_columns, id-like columns) and date columns, which
become calendar features in their place. Text columns become categories. Cells spelled as in
data.missing_values are missing: imputed inside the model, dropped or refused (data.impute); a row with a
missing target is dropped or refused (data.missing_target), never a class. Every problem is reported with the
file, column and line before a model is built.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .column_kinds import calendar_features, column_kinds, missing_test
from .csv_files import (
    CsvFile,
    cells_listed,
    delimiter_name,
    lines_listed,
    numeric_column,
    read_decimal_commas,
    read_table,
)
from .schema import ConfigError
from .splits import resolve_data_path

log = logging.getLogger(__name__)


@dataclass
class TableInfo:
    """What load_csv tells the pipeline beside the features and labels: the model's inputs in order, what
    became of the file's other columns, and how missing cells are handled."""

    inputs: list[str]
    columns: list[str]  # the file's columns but the target, in order
    notes: dict  # file column -> what it became, for each column that is not one model input of its own
    impute: bool  # data.impute=median: the model fills missing cells itself
    missing_spellings: list[str]
    dropped_rows: dict  # {"missing_target": n, "missing_features": n}


def load_csv(data_cfg) -> tuple[np.ndarray, np.ndarray, TableInfo]:
    """Features, labels and TableInfo of a CSV table. All-numeric features come as a float32 matrix (a
    missing cell as NaN); with categorical (text) columns, as a structured array with one named field per
    model input (float32 or the raw strings), which the pipeline hands to the model as a dict of columns."""
    path, table = _checked_table(data_cfg)
    header, target = table.header, data_cfg.target
    spellings = [str(value) for value in data_cfg.get("missing_values", [])]
    missing = missing_test(spellings)
    decimal_commas = read_decimal_commas(table, data_cfg.get("decimal"), missing, keep=data_cfg.categorical_columns)
    if decimal_commas:
        log.info("%s: columns %s hold decimal commas (12,5), read as numbers (data.decimal=point keeps them as "
                 "text)", path, decimal_commas)
    columns = {name: [row[position].strip() for row in table.rows] for position, name in enumerate(header)}
    dropped = {}
    columns, lines, dropped["missing_target"] = _drop_missing_targets(path, data_cfg, columns, table.lines, missing)

    features = [name for name in header if name != target and name not in data_cfg.exclude_columns]
    notes = {name: "excluded (data.exclude_columns)" for name in header if name in data_cfg.exclude_columns}
    kinds = column_kinds(path, data_cfg, features, columns, lines, missing, notes)
    used = [name for name in features if name in kinds]
    if not used:
        raise ConfigError(f"{path}: no feature columns left besides the target {target!r}.")
    policy = data_cfg.get("impute", "median")
    columns, lines, dropped["missing_features"] = _handle_missing_features(path, policy, spellings, used, columns,
                                                                          lines, missing)

    token = spellings[0] if spellings else ""
    inputs, categorical = _model_inputs(used, kinds, columns, missing, token, notes)
    y = _labels(path, data_cfg, columns[target])
    info = TableInfo(list(inputs), [name for name in header if name != target], notes, policy == "median",
                     spellings, dropped)
    log.info("%s: %d rows (delimiter %s); model inputs in order: %s", path, len(lines),
             delimiter_name(table.delimiter), info.inputs)
    for name, note in notes.items():
        log.info("%s: column %r: %s", path, name, note)
    if not categorical:
        return np.stack(list(inputs.values()), axis=1), y, info
    x = np.empty(len(lines), dtype=[(name, object if name in categorical else "float32") for name in inputs])
    for name, values in inputs.items():
        x[name] = values
    return x, y, info


def _checked_table(data_cfg) -> tuple[Path, CsvFile]:
    """The file read, with data.target and the column lists checked against its header."""
    path = resolve_data_path(data_cfg.path, data_cfg.name, "a CSV file with a header row", "data.path=houses.csv")
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=csv reads one CSV file.")
    table = read_table(path, data_cfg.get("delimiter"))
    listed = ", ".join(table.header)
    target = data_cfg.target
    if not target:
        raise ConfigError(f"data=csv needs data.target, the column to predict. Columns in {path}: {listed}.")
    if target not in table.header:
        raise ConfigError(f"data.target={target}: no such column in {path}. Columns: {listed}.{table.hint}")
    for setting in ("exclude_columns", "categorical_columns"):
        unknown = [name for name in data_cfg[setting] if name not in table.header]
        if unknown:
            raise ConfigError(
                f"data.{setting}: no column {', '.join(unknown)} in {path}. Columns: {listed}.{table.hint}"
            )
    if target in data_cfg.categorical_columns:
        raise ConfigError(f"data.categorical_columns: {target!r} is the target; list feature columns only.")
    return path, table


def _drop_missing_targets(path, data_cfg, columns: dict, lines: list[int], missing) -> tuple[dict, list[int], int]:
    """A missing label is never a class: the row goes (with a count), or the job stops (data.missing_target)."""
    target = data_cfg.target
    no_label = [index for index, value in enumerate(columns[target]) if missing(value)]
    if not no_label:
        return columns, lines, 0
    if data_cfg.get("missing_target", "drop") == "refuse":
        cells = [(lines[index], target, columns[target][index]) for index in no_label]
        raise ConfigError(
            f"{path}: {cells_listed(cells, 'rows have no target value')} (data.missing_target=refuse). Fill them, "
            "or set data.missing_target=drop to leave those rows out."
        )
    log.warning("%s: %d row(s) with a missing %r dropped (data.missing_target=drop), lines %s",
                path, len(no_label), target, lines_listed([lines[index] for index in no_label]))
    columns, lines = _keep(columns, lines, set(range(len(lines))) - set(no_label))
    if not lines:
        raise ConfigError(f"{path}: every row's {target!r} is missing; nothing to learn from.")
    return columns, lines, len(no_label)


def _handle_missing_features(path, policy: str, spellings: list[str], used: list[str], columns: dict,
                             lines: list[int], missing) -> tuple[dict, list[int], int]:
    """data.impute: refuse lists the missing cells; drop_rows drops their rows (with a count); median leaves
    them for the model to fill."""
    gaps = sorted((line, name, value) for name in used for line, value in zip(lines, columns[name]) if missing(value))
    if gaps and policy == "refuse":
        raise ConfigError(
            f"{path}: {cells_listed(gaps, 'feature cells are missing')} (data.impute=refuse; missing spellings: "
            f"{', '.join(map(repr, spellings))}). Fill them, or set data.impute=median (filled inside the model) "
            "or data.impute=drop_rows."
        )
    if not gaps or policy != "drop_rows":
        return columns, lines, 0
    gap_lines = sorted({line for line, _, _ in gaps})
    log.warning("%s: %d row(s) with a missing feature cell dropped (data.impute=drop_rows), lines %s",
                path, len(gap_lines), lines_listed(gap_lines))
    columns, lines = _keep(columns, lines, {i for i, line in enumerate(lines) if line not in set(gap_lines)})
    if not lines:
        raise ConfigError(f"{path}: every row has a missing feature cell; data.impute=drop_rows leaves none.")
    return columns, lines, len(gap_lines)


def _model_inputs(used: list[str], kinds: dict, columns: dict, missing, token: str,
                  notes: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each used column as model inputs: numbers (NaN where missing), categories (`token` where missing), or
    a date's calendar features in its place (noted in `notes`); and the names of the categorical ones."""
    inputs: dict[str, np.ndarray] = {}
    categorical = []
    for name in used:
        values = columns[name]
        if kinds[name] == "numeric":
            inputs[name] = np.array([math.nan if missing(v) else float(v) for v in values], dtype="float32")
        elif kinds[name] == "categorical":
            inputs[name] = np.array([token if missing(v) else v for v in values], dtype=object)
            categorical.append(name)
        else:
            parts = calendar_features(kinds[name], values, missing)
            notes[name] = (f"date ({kinds[name]}) as calendar features " + ", ".join(f"{name}_{part}" for part in parts)
                           + " (model inputs in its place)")
            inputs.update({f"{name}_{part}": numbers for part, numbers in parts.items()})
    return inputs, categorical


def _keep(columns: dict, lines: list[int], kept: set) -> tuple[dict, list[int]]:
    order = sorted(kept)
    return {name: [values[i] for i in order] for name, values in columns.items()}, [lines[i] for i in order]



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

