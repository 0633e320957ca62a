"""Tables from CSV files, and what the model's input layers are built with: the numeric columns'
statistics (medians for missing cells, Normalization) and the categorical columns' vocabularies (StringLookup).

Features are the columns other than the target, in the file's order (the order a saved model takes an
all-numeric row in), but for excluded columns (data.exclude_columns, id-like columns) and date columns, which
become calendar features in their place. Text columns become categories. Cells spelled as in
data.missing_values are missing: imputed inside the model, dropped or refused (data.impute); a row with a
missing target is dropped or refused (data.missing_target), never a class. Every problem is reported with the
file, column and line before a model is built.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np

from .config.data import delimiter_character
from .schema import ConfigError
from .splits import resolve_data_path

log = logging.getLogger(__name__)

MAX_LISTED = 20  # bad cells or lines named in one message
DELIMITERS = (",", ";", "\t", "|")  # detected among these, in this order of preference
SNIFFED_LINES = 50
MIN_ID_ROWS = 10  # fewer rows than this prove nothing about a column holding one distinct value per row
# Dates other than ISO 8601 (datetime.fromisoformat), tried in order; a day/month twin makes a date ambiguous.
DATE_FORMATS = (
    "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S",
    "%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
    "%d-%m-%Y", "%d %b %Y", "%b %d %Y", "%d %B %Y", "%B %d %Y",
)
ISO = "ISO 8601"


def _twin(date_format: str) -> Optional[str]:
    if date_format.startswith("%m/%d/"):
        return date_format.replace("%m/%d/", "%d/%m/", 1)
    if date_format.startswith("%d/%m/"):
        return date_format.replace("%d/%m/", "%m/%d/", 1)
    return None


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))


@dataclass
class CsvFile:
    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the line of the file each row ends on (1 is the header)
    delimiter: str
    hint: str = ""  # another delimiter that splits the header into more fields, if one does


def _parsed(text: str, delimiter: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]


def detect_delimiter(text: str) -> Optional[str]:
    """The delimiter among DELIMITERS that gives the first lines the most fields, every line as many as the
    header (at least 2); None if none does."""
    lines = text.splitlines()
    sample = "\n".join(lines[: SNIFFED_LINES + 1])
    best, most = None, 1
    for candidate in DELIMITERS:
        rows = _parsed(sample, candidate)
        if len(lines) > SNIFFED_LINES + 1:
            rows = rows[:-1]  # the sample may end inside a quoted field
        if rows and len(rows[0]) > most and all(len(row) == len(rows[0]) for row in rows):
            best, most = candidate, len(rows[0])
    return best


def read_table(path, delimiter: Optional[str] = None) -> CsvFile:
    """A CSV file's header and rows, with each row's line. `delimiter` null: detected (see detect_delimiter),
    else a comma. Rows without the header's number of fields are refused, the first MAX_LISTED named."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets often write a BOM
        text = file.read()
    if delimiter:
        chosen, how = delimiter_character(delimiter), f"data.delimiter={delimiter}"
    else:
        detected = detect_delimiter(text)
        chosen = detected or ","
        how = (f"delimiter {_delimiter_name(detected)} detected" if detected else
               "no delimiter among comma, semicolon, tab and | gives every line the header's number of fields; "
               "read with commas")
    reader = csv.reader(io.StringIO(text), delimiter=chosen)
    rows, lines = [], []
    for row in reader:
        if row:
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise ConfigError(f"data.path: {path} is empty; expected a CSV file with a header row.")
    header, body, lines = [name.strip() for name in rows[0]], rows[1:], lines[1:]
    bad = [(line, len(row)) for line, row in zip(lines, body) if len(row) != len(header)]
    if bad:
        listed = "; ".join(f"line {line}: {fields} fields" for line, fields in bad[:MAX_LISTED])
        more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
        hint = _delimiter_hint(text, chosen, len(header))
        raise ConfigError(
            f"{path}: {len(bad)} of {len(body)} rows do not have the header's {len(header)} field(s) "
            f"({how}): {listed}{more}.{hint} Set data.delimiter if the file uses another delimiter, or fix "
            "the lines (a field holding the delimiter needs quotes)."
        )
    if not body:
        raise ConfigError(f"data.path: {path} has a header but no rows.")
    return CsvFile(path, header, body, lines, chosen, _delimiter_hint(text, chosen, len(header)))


def _delimiter_hint(text: str, chosen: str, fields: int) -> str:
    """A sentence naming another delimiter that splits the header into more fields, if one does."""
    first_line = text.split("\n", 1)[0]
    others = {other: len(_parsed(first_line, other)[0]) for other in DELIMITERS if other != chosen and first_line}
    wider = [other for other, count in others.items() if count > fields]
    if not wider:
        return ""
    setting = "tab" if wider[0] == "\t" else f"'{wider[0]}'"
    return f" With data.delimiter={setting} the header has {others[wider[0]]} fields."


def read_rows(path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a comma-separated file (what data=timeseries reads)."""
    table = read_table(path, ",")
    return table.header, table.rows


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


def _cells(cells: list[tuple], what: str) -> str:
    listed = "; ".join(f"line {line}, column {column!r}: {value!r}" for line, column, value in cells[:MAX_LISTED])
    more = f" (and {len(cells) - MAX_LISTED} more)" if len(cells) > MAX_LISTED else ""
    return f"{len(cells)} {what}: {listed}{more}"


def _lines(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:MAX_LISTED])) + (f" and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED
                                                        else "")


def load_csv(data_cfg) -> tuple[np.ndarray, np.ndarray, TableInfo]:
    """Features, labels and TableInfo of a CSV table. All-numeric features come as a float32 matrix (a
    missing cell as NaN); with categorical (text) columns, as a structured array with one named field per
    model input (float32 or the raw strings), which the pipeline hands to the model as a dict of columns."""
    path = resolve_data_path(data_cfg.path, data_cfg.name, "a CSV file with a header row", "data.path=houses.csv")
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=csv reads one CSV file.")
    table = read_table(path, data_cfg.get("delimiter"))
    header, rows, lines = table.header, table.rows, table.lines
    listed = ", ".join(header)
    target = data_cfg.target
    if not target:
        raise ConfigError(f"data=csv needs data.target, the column to predict. Columns in {path}: {listed}.")
    if target not in header:
        raise ConfigError(f"data.target={target}: no such column in {path}. Columns: {listed}.{table.hint}")
    for setting in ("exclude_columns", "categorical_columns"):
        unknown = [name for name in data_cfg[setting] if name not in header]
        if unknown:
            raise ConfigError(
                f"data.{setting}: no column {', '.join(unknown)} in {path}. Columns: {listed}.{table.hint}"
            )
    if target in data_cfg.categorical_columns:
        raise ConfigError(f"data.categorical_columns: {target!r} is the target; list feature columns only.")
    spellings = [str(value) for value in data_cfg.get("missing_values", [])]
    missing = _missing_test(spellings)
    columns = {name: [row[position].strip() for row in rows] for position, name in enumerate(header)}
    dropped = {"missing_target": 0, "missing_features": 0}

    # A missing label is never a class: the row goes (with a count), or the job stops (data.missing_target).
    no_label = [index for index, value in enumerate(columns[target]) if missing(value)]
    if no_label:
        if data_cfg.get("missing_target", "drop") == "refuse":
            cells = [(lines[index], target, columns[target][index]) for index in no_label]
            raise ConfigError(
                f"{path}: {_cells(cells, 'rows have no target value')} (data.missing_target=refuse). Fill them, "
                "or set data.missing_target=drop to leave those rows out."
            )
        log.warning("%s: %d row(s) with a missing %r dropped (data.missing_target=drop), lines %s",
                    path, len(no_label), target, _lines([lines[index] for index in no_label]))
        columns, lines = _keep(columns, lines, set(range(len(lines))) - set(no_label))
        dropped["missing_target"] = len(no_label)
        if not lines:
            raise ConfigError(f"{path}: every row's {target!r} is missing; nothing to learn from.")

    features = [name for name in header if name != target and name not in data_cfg.exclude_columns]
    notes = {name: "excluded (data.exclude_columns)" for name in header if name in data_cfg.exclude_columns}
    kinds = _column_kinds(path, data_cfg, features, columns, lines, missing, notes)
    used = [name for name in features if name in kinds]
    if not used:
        raise ConfigError(f"{path}: no feature columns left besides the target {target!r}.")

    gaps = [(line, name, value) for name in used for line, value in zip(lines, columns[name]) if missing(value)]
    gaps.sort()
    policy = data_cfg.get("impute", "median")
    if gaps and policy == "refuse":
        raise ConfigError(
            f"{path}: {_cells(gaps, 'feature cells are missing')} (data.impute=refuse; missing spellings: "
            f"{', '.join(map(repr, spellings))}). Fill them, or set data.impute=median (filled inside the model) "
            "or data.impute=drop_rows."
        )
    if gaps and policy == "drop_rows":
        gap_lines = sorted({line for line, _, _ in gaps})
        log.warning("%s: %d row(s) with a missing feature cell dropped (data.impute=drop_rows), lines %s",
                    path, len(gap_lines), _lines(gap_lines))
        columns, lines = _keep(columns, lines, {i for i, line in enumerate(lines) if line not in set(gap_lines)})
        dropped["missing_features"] = len(gap_lines)
        if not lines:
            raise ConfigError(f"{path}: every row has a missing feature cell; data.impute=drop_rows leaves none.")

    token = spellings[0] if spellings else ""
    inputs: dict[str, np.ndarray] = {}
    categorical = []
    for name in used:
        values = columns[name]
        if kinds[name] == "numeric":
            inputs[name] = np.array([math.nan if missing(v) else float(v) for v in values], dtype="float32")
        elif kinds[name] == "categorical":
            inputs[name] = np.array([token if missing(v) else v for v in values], dtype=object)
            categorical.append(name)
        else:  # a date: calendar features in its place
            parts = _calendar_features(kinds[name], values, missing)
            notes[name] = (f"date ({kinds[name]}) as calendar features " + ", ".join(f"{name}_{part}" for part in parts)
                           + " (model inputs in its place)")
            inputs.update({f"{name}_{part}": numbers for part, numbers in parts.items()})
    y = _labels(path, data_cfg, columns[target])
    info = TableInfo(list(inputs), [name for name in header if name != target], notes, policy == "median",
                     spellings, dropped)
    log.info("%s: %d rows (delimiter %s); model inputs in order: %s", path, len(lines),
             _delimiter_name(table.delimiter), info.inputs)
    for name, note in notes.items():
        log.info("%s: column %r: %s", path, name, note)
    if not categorical:
        return np.stack(list(inputs.values()), axis=1), y, info
    x = np.empty(len(lines), dtype=[(name, object if name in categorical else "float32") for name in inputs])
    for name, values in inputs.items():
        x[name] = values
    return x, y, info


def _missing_test(spellings: list[str]):
    declared = set(spellings)

    def missing(value: str) -> bool:
        if value in declared:
            return True
        try:
            return math.isnan(float(value))  # "nan" is no number, whatever data.missing_values says
        except ValueError:
            return False

    return missing


def _keep(columns: dict, lines: list[int], kept: set) -> tuple[dict, list[int]]:
    order = sorted(kept)
    return {name: [values[i] for i in order] for name, values in columns.items()}, [lines[i] for i in order]


def _column_kinds(path, data_cfg, features, columns, lines, missing, notes) -> dict:
    """Each feature column's kind: numeric, categorical or a date format; id-like columns (a distinct value in
    every row) and, with data.dates=exclude, date columns get a note in `notes` instead. Words in columns of
    numbers are refused together, the first MAX_LISTED named."""
    kinds, stray, date_columns = {}, [], []
    rows = len(lines)
    for name in features:
        values = columns[name]
        present = [(line, value) for line, value in zip(lines, values) if not missing(value)]
        if name in data_cfg.categorical_columns:
            kinds[name] = "categorical"
            continue
        words = [(line, value) for line, value in present if not _is_number(value)]
        if not words:
            if not present:
                notes[name] = "excluded (every cell missing)"
            elif _is_row_number([value for _, value in present], rows):
                notes[name] = (f"excluded: id-like (the numbers 1..{rows} or 0..{rows - 1}, one per row); list it in "
                               "data.categorical_columns to keep it")
            else:
                kinds[name] = "numeric"
            continue
        date_format = _date_format(path, name, [value for _, value in present], data_cfg.get("time_format")) \
            if len(words) == len(present) else None
        if date_format:
            date_columns.append(name)
            if data_cfg.get("dates", "features") == "exclude":
                notes[name] = f"excluded: date ({date_format}; data.dates=exclude)"
            else:
                kinds[name] = date_format
            continue
        if len(words) < len(present) / 2:
            stray.extend((line, name, value) for line, value in words)
            continue
        if len(present) == rows >= MIN_ID_ROWS and len(set(values)) == rows:
            notes[name] = (f"excluded: id-like (a distinct value in each of the {rows} rows); list it in "
                           "data.categorical_columns to keep it as categories")
            continue
        kinds[name] = "categorical"
    if stray:
        stray.sort()
        names = sorted({name for _, name, _ in stray}, key=features.index)
        listed = ",".join(names)
        raise ConfigError(
            f"{path}: {_cells(stray, 'cells are not numbers in columns of numbers')}. Fix them; if a spelling "
            f"means a missing value, add it to data.missing_values (now {data_cfg.get('missing_values')}); "
            f"drop a column with data.exclude_columns=[{listed}]; or, only if its values are labels rather than "
            f"measurements, take them as categories with data.categorical_columns=[{listed}]."
        )
    if data_cfg.get("time_format") and not date_columns:
        raise ConfigError(
            f"Invalid value for `data.time_format`: received {data_cfg.time_format!r}. Allowed: the strptime "
            f"format of a date column of {path}, or null to detect it; no feature column reads as dates with it."
        )
    return kinds


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _is_row_number(values: list[str], rows: int) -> bool:
    """The numbers 1..n or 0..n-1, one per row in any order: a row number."""
    if len(values) != rows or rows < MIN_ID_ROWS:
        return False
    try:
        numbers = [int(value) for value in values]
    except ValueError:
        return False
    return min(numbers) in (0, 1) and len(set(numbers)) == rows and max(numbers) - min(numbers) == rows - 1


def _parse(value: str, date_format: str) -> datetime:
    return datetime.fromisoformat(value) if date_format == ISO else datetime.strptime(value, date_format)


def _reads_as(values: list[str], date_format: str) -> bool:
    try:
        for value in values:
            _parse(value, date_format)
    except ValueError:
        return False
    return True


def _date_format(path, column: str, values: list[str], given: Optional[str]) -> Optional[str]:
    """The format every value of a text column reads with (`given`, else ISO 8601 or one of DATE_FORMATS), or
    None: not dates. Dates that read both day/month and month/day are refused."""
    for date_format in [given] if given else [ISO, *DATE_FORMATS]:
        if not _reads_as(values, date_format):
            continue
        twin = _twin(date_format)
        if not given and twin and _reads_as(values, twin):
            raise ConfigError(
                f"{path}: column {column!r} holds dates that read both as {date_format} and as {twin} (e.g. "
                f"{values[0]!r}). Say which with data.time_format='{date_format}', or drop it with "
                f"data.exclude_columns=[{column}]."
            )
        return date_format
    return None


def _calendar_features(date_format: str, values: list[str], missing) -> dict[str, np.ndarray]:
    """year, month, day and weekday (0 Monday), and hour and minute if any value has a time of day; NaN for a
    missing cell."""
    dates = [None if missing(value) else _parse(value, date_format) for value in values]
    parts = ["year", "month", "day", "weekday"]
    if any(date is not None and (date.hour or date.minute) for date in dates):
        parts += ["hour", "minute"]

    def part_of(date, part):
        if date is None:
            return math.nan
        return date.weekday() if part == "weekday" else getattr(date, part)

    return {part: np.array([part_of(date, part) for date in dates], dtype="float32") for part in parts}


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
