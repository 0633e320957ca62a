"""Forecasting data: a CSV of readings in time order cut into windows of the past and a target ahead.

A prediction sees the last `window` rows (every `sampling_rate`-th of them, ending with the latest) and
predicts the target column(s) `horizon` rows after the latest. The rows are split in time order, training
then validation then test, and every window with its target lies inside one part, so no example straddles
two. The normalisation statistics come from the training rows only. The naive forecast (the target's last
observed value) is scored on the same windows, so a user sees whether the model beats it.

Everything a user can fix (columns, cells, time order, a window longer than a part) is refused here with
the file, line and column, before a model is built.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .schema import ConfigError, target_columns
from .splits import Streams, resolve_data_path
from .tabular import numeric_column, read_rows

log = logging.getLogger(__name__)

# Tried in order when data.time_format is null: jena_climate_2009_2016.csv writes "01.01.2009 00:10:00".
KNOWN_TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
# A step longer than this many regular steps means rows are missing.
GAP_FACTOR = 1.5
MAX_LISTED_GAPS = 3


@dataclass(frozen=True)
class WindowLayout:
    """Which rows one example reads, as offsets from its first row."""

    window: int
    sampling_rate: int
    horizon: int

    @property
    def num_steps(self) -> int:
        return math.ceil(self.window / self.sampling_rate)

    @property
    def input_offsets(self) -> np.ndarray:
        # Counted back from the latest row, so the most recent reading is always one of the inputs.
        latest = self.window - 1
        return latest - self.sampling_rate * np.arange(self.num_steps - 1, -1, -1, dtype="int64")

    @property
    def target_offset(self) -> int:
        return self.window - 1 + self.horizon

    @property
    def rows_per_example(self) -> int:
        return self.window + self.horizon


@dataclass
class Series:
    """A checked CSV as arrays: every feature column, the target columns, and the part boundaries."""

    features: np.ndarray  # (rows, num_features) float32, the target columns among them
    targets: np.ndarray  # (rows, num_targets) float32
    feature_names: list[str]
    target_names: list[str]
    parts: dict[str, tuple[int, int]]  # training/validation/test -> [first row, end row)
    layout: WindowLayout


# ------------------------------------------------------------------ reading and checking the file
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


def check_time_order(path, column: str, raw: list[str], times: np.ndarray, allow_gaps: bool, numeric: bool) -> float:
    """Refuse rows out of time order (a repeated or earlier time) and, unless allowed, missing rows.
    Returns the regular step between rows."""
    steps = np.diff(times)
    backwards = np.flatnonzero(steps <= 0)
    if backwards.size:
        row = int(backwards[0]) + 1
        raise ConfigError(
            f"{path}: rows are not in time order: line {row + 2} ({column} {raw[row]!r}) does not come after "
            f"line {row + 1} ({raw[row - 1]!r}). Sort the file by {column!r} and drop repeated times."
        )
    regular = float(np.median(steps)) if steps.size else 1.0
    gaps = np.flatnonzero(steps > GAP_FACTOR * regular)
    if gaps.size and not allow_gaps:
        listed = "; ".join(
            f"line {int(index) + 3} ({raw[int(index) + 1]!r}) follows {raw[int(index)]!r} after "
            f"{_describe_step(float(steps[index]), numeric)}, about {round(steps[index] / regular) - 1} row(s) missing"
            for index in gaps[:MAX_LISTED_GAPS]
        )
        more = f" and {gaps.size - MAX_LISTED_GAPS} more" if gaps.size > MAX_LISTED_GAPS else ""
        raise ConfigError(
            f"{path}: {gaps.size} gap(s) in time order in column {column!r} (the rows are "
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


def read_series(data_cfg) -> Series:
    path = resolve_data_path(
        data_cfg.path, data_cfg.name, "a CSV file with a time column and numeric columns in time order",
        "data.path=jena_climate_2009_2016.csv",
    )
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=timeseries reads one CSV file.")
    header, rows = read_rows(path)
    listed = ", ".join(header)
    time_column = data_cfg.time_column or header[0]
    if time_column not in header:
        raise ConfigError(f"data.time_column={time_column}: no such column in {path}. Columns: {listed}.")
    targets = target_columns(data_cfg.target)
    if not targets:
        raise ConfigError(f"data=timeseries needs data.target, the column(s) to forecast. Columns in {path}: {listed}.")
    for name in targets:
        if name not in header:
            raise ConfigError(f"data.target={name}: no such column in {path}. Columns: {listed}.")
        if name == time_column or name in data_cfg.exclude_columns:
            raise ConfigError(
                f"data.target={name} is the time column or excluded; forecast another column. Columns: {listed}."
            )
    unknown = [name for name in data_cfg.exclude_columns if name not in header]
    if unknown:
        raise ConfigError(f"data.exclude_columns: no column {', '.join(unknown)} in {path}. Columns: {listed}.")

    columns = {name: [row[position] for row in rows] for position, name in enumerate(header)}
    raw_times = columns[time_column]
    times, time_format = parse_times(path, time_column, raw_times, data_cfg.time_format)
    check_time_order(path, time_column, raw_times, times, data_cfg.allow_gaps, numeric=time_format == "number")

    # The targets' past values are inputs too: the model sees what the naive forecast sees, and more.
    feature_names = [name for name in header if name != time_column and name not in data_cfg.exclude_columns]
    fix = "Forecasting reads numbers only: drop the column with data.exclude_columns=[{}] or fix the cell."
    features = np.stack(
        [numeric_column(path, name, columns[name], fix.format(name)) for name in feature_names], axis=1
    )
    layout = WindowLayout(data_cfg.window, data_cfg.sampling_rate, data_cfg.horizon)
    parts = time_order_parts(len(rows), data_cfg.val_fraction, data_cfg.test_fraction)
    for part, (first, end) in parts.items():
        if end - first < layout.rows_per_example:
            raise ConfigError(
                f"data.window={layout.window} with data.horizon={layout.horizon} needs {layout.rows_per_example} rows "
                f"in each part, but the {part} part of {path} has {end - first} (of {len(rows)} rows: "
                f"test_fraction={data_cfg.test_fraction}, val_fraction={data_cfg.val_fraction}, in time order). "
                "Use a shorter window or horizon, or more rows."
            )
    target_indices = [feature_names.index(name) for name in targets]
    log.info(
        "%s: %d rows in time order (%s); features %s; forecasting %s %d rows ahead from %d time steps, one row in %d",
        path, len(rows), ", ".join(f"{part} {end - first}" for part, (first, end) in parts.items()),
        feature_names, targets, layout.horizon, layout.num_steps, layout.sampling_rate,
    )
    return Series(features, features[:, target_indices], feature_names, targets, parts, layout)


# ------------------------------------------------------------------ windows, statistics, baseline
def first_rows(series: Series, part: str) -> np.ndarray:
    """The first row of every example that lies entirely inside `part`."""
    first, end = series.parts[part]
    return np.arange(first, end - series.layout.rows_per_example + 1, dtype="int64")


def naive_forecast_mae(series: Series, part: str) -> float:
    """Mean absolute error, in the target's units, of predicting the last observed value."""
    starts = first_rows(series, part)
    latest = starts + series.layout.window - 1
    ahead = starts + series.layout.target_offset
    return float(np.mean(np.abs(series.targets[ahead] - series.targets[latest])))


def training_statistics(series: Series) -> dict:
    """Per-feature mean and variance, and the targets' mean and standard deviation, over training rows only."""
    first, end = series.parts["training"]
    features = series.features[first:end].astype("float64")
    targets = series.targets[first:end].astype("float64")
    target_std = np.where(targets.std(axis=0) > 0, targets.std(axis=0), 1.0)  # a constant target keeps scale 1
    one = len(series.target_names) == 1
    return {
        "feature_mean": features.mean(axis=0).astype("float32"),
        "feature_variance": features.var(axis=0).astype("float32"),
        "target_mean": float(targets.mean()) if one else targets.mean(axis=0).tolist(),
        "target_std": float(target_std[0]) if one else target_std.tolist(),
    }


def window_dataset(series: Series, part: str):
    """Unbatched tf.data examples (window of readings, targets ahead) of one part, cut as they are read."""
    import tensorflow as tf

    features = tf.constant(series.features)
    targets = tf.constant(series.targets)
    offsets = tf.constant(series.layout.input_offsets)
    target_offset = tf.constant(series.layout.target_offset, dtype=tf.int64)

    def example(first):
        return tf.gather(features, first + offsets), tf.gather(targets, first + target_offset)

    return tf.data.Dataset.from_tensor_slices(first_rows(series, part)).map(
        example, num_parallel_calls=tf.data.AUTOTUNE
    )


def load_timeseries(data_cfg) -> Streams:
    series = read_series(data_cfg)
    baseline = {part: naive_forecast_mae(series, part) for part in ("validation", "test")}
    log.info(
        "Naive forecast (last observed value) MAE: validation %.4g, test %.4g", baseline["validation"], baseline["test"]
    )
    return Streams(
        train=window_dataset(series, "training"),
        validation=window_dataset(series, "validation"),
        test=window_dataset(series, "test"),
        element_shape=(series.layout.num_steps, len(series.feature_names)),
        num_train_examples=len(first_rows(series, "training")),
        num_outputs=len(series.target_names),
        class_names=[],
        adapted=training_statistics(series),
        naive_forecast_mae=baseline,
    )
