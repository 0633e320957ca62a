"""What each column of a table is: numbers, categories, dates (and in which format) or an id that tells the
model nothing; and which cells count as missing. Kept apart from reading the file (csv_files) and from
building the model's inputs (tabular)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Optional

import numpy as np

from .csv_files import COMMA_NUMBER, cells_listed
from .schema import ConfigError

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


def missing_test(spellings: list[str]):
    declared = set(spellings)

    def missing(value: str) -> bool:
        if value in declared:
            return True
        try:
            return math.isnan(float(value))  # "nan" is no number, whatever data.missing_values says
        except ValueError:
            return False

    return missing


def column_kinds(path, data_cfg, features, columns, lines, missing, notes) -> dict:
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
        commas = any(COMMA_NUMBER.fullmatch(value) for _, _, value in stray)
        raise ConfigError(
            f"{path}: {cells_listed(stray, 'cells are not numbers in columns of numbers')}. Fix them; if a spelling "
            f"means a missing value, add it to data.missing_values (now {data_cfg.get('missing_values')}); "
            f"drop a column with data.exclude_columns=[{listed}]; or, only if its values are labels rather than "
            f"measurements, take them as categories with data.categorical_columns=[{listed}]."
            + (" Numbers written with decimal commas (12,5) are read with data.decimal=comma." if commas else "")
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


def calendar_features(date_format: str, values: list[str], missing) -> dict[str, np.ndarray]:
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

