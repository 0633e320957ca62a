"""The time column of a series: its format read or detected, its rows checked to be in time order and evenly
spaced (or the gaps named), and the rows split in time order into training, validation and test."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import numpy as np

from .schema import ConfigError

# Tried in order when data.time_format is null: jena_climate_2009_2016.csv writes "01.01.2009 00:10:00".
KNOWN_TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
# A step longer than this many regular steps means rows are missing.
GAP_FACTOR = 1.5
MAX_LISTED_GAPS = 3



def _parser(time_format):
    if time_format == "iso":
        return datetime.fromisoformat
    if time_format == "number":
        return float
    return lambda value: datetime.strptime(value, time_format)


def _seconds(moment) -> float:
    if isinstance(moment, float):
        return moment
    if moment.tzinfo is None:  # wall-clock times: no time zone, so no daylight-saving jumps either
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _detect_format(first: str) -> str:
    for candidate in ("number", "iso", *KNOWN_TIME_FORMATS):
        try:
            _parser(candidate)(first)
            return candidate
        except ValueError:
            continue
    raise ConfigError(
        f"cannot read the time {first!r} on line 2: it is not a number, an ISO 8601 time or one of "
        f"{', '.join(KNOWN_TIME_FORMATS)}. Give its format, e.g. data.time_format='%m/%d/%Y %H:%M'."
    )


def parse_times(path, column: str, values: list[str], time_format) -> tuple[np.ndarray, str]:
    """Seconds (or plain numbers) per row, for checking the order and spacing of the rows, and the format
    they were read with ("number", "iso" or a strptime format)."""
    try:
        chosen = time_format or _detect_format(values[0].strip())
    except ConfigError as error:
        raise ConfigError(f"{path}: time column {column!r}: {error}") from None
    parse = _parser(chosen)
    times = []
    for line, value in enumerate(values, start=2):
        try:
            times.append(_seconds(parse(value.strip())))
        except ValueError:
            described = "numbers" if chosen == "number" else (
                "ISO 8601 times" if chosen == "iso" else f"times in the format {chosen!r}"
            )
            raise ConfigError(
                f"{path}: time column {column!r}, line {line}: {value!r} does not read like the column's other "
                f"values ({described}). Fix the cell, or set data.time_format to the column's strptime format."
            ) from None
    return np.array(times, dtype="float64"), chosen


def _describe_step(seconds: float, numeric: bool) -> str:
    if numeric:
        return f"{seconds:g}"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def check_time_order(
    path, column: str, raw: list[str], times: np.ndarray, allow_gaps: bool, numeric: bool,
    lines: Optional[np.ndarray] = None, series: str = "", hint: str = "",
) -> float:
    """Refuse rows out of time order (a repeated or earlier time) and, unless allowed, missing rows.
    Returns the regular step between rows. `lines`: each value's line in the file (default: the values are
    lines 2, 3, ...); `series`: which series they are, for the message; `hint`: added to a repeated time's."""
    line_of = (lambda index: int(lines[index])) if lines is not None else (lambda index: index + 2)
    steps = np.diff(times)
    backwards = np.flatnonzero(steps <= 0)
    if backwards.size:
        row = int(backwards[0]) + 1
        repeated = steps[row - 1] == 0
        raise ConfigError(
            f"{path}: {series}rows are not in time order: line {line_of(row)} ({column} {raw[row]!r}) does not come "
            f"after line {line_of(row - 1)} ({raw[row - 1]!r}). Sort the file by {column!r} and drop repeated times."
            + (hint if repeated else "")
        )
    regular = float(np.median(steps)) if steps.size else 1.0
    gaps = np.flatnonzero(steps > GAP_FACTOR * regular)
    if gaps.size and not allow_gaps:
        listed = "; ".join(
            f"line {line_of(int(index) + 1)} ({raw[int(index) + 1]!r}) follows {raw[int(index)]!r} after "
            f"{_describe_step(float(steps[index]), numeric)}, about {round(steps[index] / regular) - 1} row(s) missing"
            for index in gaps[:MAX_LISTED_GAPS]
        )
        more = f" and {gaps.size - MAX_LISTED_GAPS} more" if gaps.size > MAX_LISTED_GAPS else ""
        raise ConfigError(
            f"{path}: {series}{gaps.size} gap(s) in time order in column {column!r} (the rows are "
            f"{_describe_step(regular, numeric)} apart): {listed}{more}. A window across a gap would span more "
            "time than its rows say. Fill the missing rows (e.g. interpolate), cut the file at the gap, or set "
            "data.allow_gaps=true to treat the rows as evenly spaced anyway."
        )
    return regular


def time_order_parts(num_rows: int, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """The last test_fraction of the rows for testing, val_fraction of the rest before them for validation."""
    num_test = round(num_rows * test_fraction)
    rest = num_rows - num_test
    num_validation = round(rest * val_fraction)
    return {
        "training": (0, rest - num_validation),
        "validation": (rest - num_validation, rest),
        "test": (rest, num_rows),
    }
