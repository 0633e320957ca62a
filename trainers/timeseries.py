"""Forecasting data: a CSV of readings in time order cut into windows of the past and a target ahead.

A prediction sees the last `window` rows (every `sampling_rate`-th of them, ending with the latest) and
predicts the target column(s) `horizon` rows after the latest. The rows are split in time order, training
then validation then test, and every window with its target lies inside one part, so no example straddles
two. The normalisation statistics come from the training rows only. The naive forecast (the target's last
observed value) and, given `data.season`, the seasonal-naive one (the latest value at the target's point of the
season) are scored on the same windows, per target, so a user sees whether the model beats them.

`data.target_transform=delta`: the model learns the change from the last observed value and adds it back itself,
so it follows a trend past the training values. `data.series_id`: a long-format file of several series (one
row per series and time); each series is checked, split in time order and cut into windows on its own.

Everything a user can fix (columns, cells, time order, a window longer than a part) is refused here with
the file, line and column, before a model is built.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .csv_files import numeric_column, read_decimal_commas, read_table
from .schema import ConfigError, check_season, target_columns
from .series_times import check_time_order, parse_times, time_order_parts
from .series_windows import first_rows, forecast_baselines, latest_and_ahead
from .splits import Streams, resolve_data_path

log = logging.getLogger(__name__)


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
    """A checked CSV as arrays: every feature column, the target columns, and the part boundaries. With
    data.series_id the rows are grouped by series (each series' rows together, in time order)."""

    features: np.ndarray  # (rows, num_features) float32, the target columns among them
    targets: np.ndarray  # (rows, num_targets) float32
    feature_names: list[str]
    target_names: list[str]
    # Per series, in order of first appearance: training/validation/test -> [first row, end row).
    series_parts: list[dict[str, tuple[int, int]]]
    layout: WindowLayout
    series_names: list[str] = field(default_factory=lambda: [""])  # [""]: one series, no data.series_id
    season: Optional[int] = None
    target_transform: str = "level"

    @property
    def parts(self) -> dict[str, tuple[int, int]]:
        """The part boundaries of a file holding one series."""
        if len(self.series_parts) != 1:
            raise ValueError("a file of several series has parts per series: use series_parts")
        return self.series_parts[0]

    @property
    def target_positions(self) -> list[int]:
        return [self.feature_names.index(name) for name in self.target_names]


# ------------------------------------------------------------------ reading and checking the file
def _not_numeric(values: list[str]) -> bool:
    try:
        for value in values:
            float(value)
    except ValueError:
        return True
    return False


def _series_hint(header: list[str], columns: dict, time_column: str) -> str:
    """For a repeated time: the file may hold several series in long format, told apart by a text column."""
    candidates = [name for name in header if name != time_column and _not_numeric(columns[name][:1000])]
    named = f"data.series_id={candidates[0]}" if candidates else "data.series_id=<column>"
    return (
        " If the file holds several series (long format: one row per series and time), do not sort them "
        f"together: name the column that tells them apart, e.g. {named}"
        + (f" (text columns: {', '.join(candidates)})" if candidates else "") + "."
    )


def _group_by_series(path, data_cfg, header: list[str], columns: dict) -> tuple[list[str], list[np.ndarray]]:
    """Series names in order of first appearance and, per series, its rows' indices in file order."""
    column = data_cfg.series_id
    if column is None:
        return [""], [np.arange(len(columns[header[0]]), dtype="int64")]
    ids = [value.strip() for value in columns[column]]
    empty = [line for line, value in enumerate(ids, start=2) if not value]
    if empty:
        raise ConfigError(
            f"{path}: data.series_id={column}: the series column is empty on line {empty[0]}"
            + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "") + "; every row needs its series' name."
        )
    names = list(dict.fromkeys(ids))
    position = {name: index for index, name in enumerate(names)}
    codes = np.array([position[value] for value in ids], dtype="int64")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return names, [order[bounds[index]:bounds[index + 1]] for index in range(len(names))]


def _check_columns(path, data_cfg, header: list[str]) -> tuple[str, list[str]]:
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
    series_id = data_cfg.series_id
    if series_id is not None:
        if series_id not in header:
            raise ConfigError(
                f"Invalid value for `data.series_id`: received {series_id!r}. Allowed: a column of {path} other "
                f"than the time and target columns: {listed}."
            )
        if series_id == time_column or series_id in targets:
            role = "the time column" if series_id == time_column else "a target"
            raise ConfigError(
                f"Invalid value for `data.series_id`: received {series_id!r}, which is {role}. Allowed: the column "
                f"naming each row's series, other than the time and target columns. Columns: {listed}."
            )
    return time_column, targets


def read_series(data_cfg) -> Series:
    path = resolve_data_path(
        data_cfg.path, data_cfg.name, "a CSV file with a time column and numeric columns in time order",
        "data.path=jena_climate_2009_2016.csv",
    )
    if path.is_dir():
        raise ConfigError(f"data.path: {path} is a folder; data=timeseries reads one CSV file.")
    table = read_table(path, data_cfg.get("delimiter"))  # null: detected, as for data=csv
    decimal_commas = read_decimal_commas(table, data_cfg.get("decimal"), lambda cell: not cell)
    if decimal_commas:
        log.info("%s: columns %s hold decimal commas (12,5), read as numbers (data.decimal=point keeps them as "
                 "text)", path, decimal_commas)
    header, rows = table.header, table.rows
    try:
        time_column, targets = _check_columns(path, data_cfg, header)
    except ConfigError as error:  # a wrong data.delimiter reads the header as one column: name the one that fits
        raise ConfigError(f"{error}{table.hint}") from None
    series_id = data_cfg.get("series_id")
    columns = {name: [row[position] for row in rows] for position, name in enumerate(header)}
    names, groups = _group_by_series(path, data_cfg, header, columns)

    raw_times = columns[time_column]
    times, time_format = parse_times(path, time_column, raw_times, data_cfg.time_format)
    hint = "" if series_id else _series_hint(header, columns, time_column)
    for name, rows_of_series in zip(names, groups):
        check_time_order(
            path, time_column, [raw_times[row] for row in rows_of_series], times[rows_of_series],
            data_cfg.allow_gaps, numeric=time_format == "number", lines=rows_of_series + 2,
            series=f"series {name!r} (data.series_id={series_id}): " if series_id else "", hint=hint,
        )

    # The targets' past values are inputs too: the model sees what the naive forecast sees, and more.
    skipped = {time_column, series_id, *data_cfg.exclude_columns}
    feature_names = [name for name in header if name not in skipped]
    fix = "Forecasting reads numbers only: drop the column with data.exclude_columns=[{}] or fix the cell."
    order = np.concatenate(groups)
    features = np.stack(
        [numeric_column(path, name, columns[name], fix.format(name)) for name in feature_names], axis=1
    )[order]
    layout = WindowLayout(data_cfg.window, data_cfg.sampling_rate, data_cfg.horizon)
    series_parts, offset = [], 0
    for name, rows_of_series in zip(names, groups):
        parts = time_order_parts(len(rows_of_series), data_cfg.val_fraction, data_cfg.test_fraction)
        _check_part_lengths(path, data_cfg, layout, parts, len(rows_of_series), name, series_id)
        series_parts.append({part: (first + offset, end + offset) for part, (first, end) in parts.items()})
        offset += len(rows_of_series)
    # The seasonal-naive value lies inside each window (so inside its part and series), as the config's check says.
    check_season(data_cfg)
    season = data_cfg.get("season")
    series = Series(
        features, features[:, [feature_names.index(name) for name in targets]], feature_names, targets,
        series_parts, layout, names, season, str(data_cfg.get("target_transform", "level")),
    )
    log.info(
        "%s: %d rows in time order%s (%s); features %s; forecasting %s %d rows ahead from %d time steps, "
        "one row in %d%s",
        path, len(rows), f", {len(names)} series" if series_id else "",
        ", ".join(f"{part} {sum(p[part][1] - p[part][0] for p in series_parts)}" for part in PARTS),
        feature_names, targets, layout.horizon, layout.num_steps, layout.sampling_rate,
        "; the model learns the change from the last observed value" if series.target_transform == "delta" else "",
    )
    return series


PARTS = ("training", "validation", "test")


def _check_part_lengths(path, data_cfg, layout: WindowLayout, parts: dict, num_rows: int, name: str, series_id):
    for part, (first, end) in parts.items():
        if end - first < layout.rows_per_example:
            of = f"series {name!r} (data.series_id={series_id}) of {path}" if series_id else str(path)
            raise ConfigError(
                f"data.window={layout.window} with data.horizon={layout.horizon} needs {layout.rows_per_example} rows "
                f"in each part, but the {part} part of {of} has {end - first} (of {num_rows} rows: "
                f"test_fraction={data_cfg.test_fraction}, val_fraction={data_cfg.val_fraction}, in time order). "
                "Use a shorter window or horizon, or more rows."
            )


# ------------------------------------------------------------------ windows and their statistics
def _training_ranges(series: Series) -> np.ndarray:
    return np.concatenate([np.arange(*parts["training"]) for parts in series.series_parts])


def training_statistics(series: Series) -> dict:
    """Per-feature mean and variance over training rows only, and the mean and standard deviation of what the
    model learns: the targets over training rows, or (target_transform=delta) their change from the last
    observed value over training windows. Also how the output layer puts a change back (DataSpec fields)."""
    rows = _training_ranges(series)
    features = series.features[rows].astype("float64")
    if series.target_transform == "delta":
        latest, ahead = latest_and_ahead(series, first_rows(series, "training"))
        targets = series.targets[ahead].astype("float64") - series.targets[latest]
    else:
        targets = series.targets[rows].astype("float64")
    target_std = np.where(targets.std(axis=0) > 0, targets.std(axis=0), 1.0)  # a constant target keeps scale 1
    one = len(series.target_names) == 1
    statistics = {
        "feature_mean": features.mean(axis=0).astype("float32"),
        "feature_variance": features.var(axis=0).astype("float32"),
        "target_mean": float(targets.mean()) if one else targets.mean(axis=0).tolist(),
        "target_std": float(target_std[0]) if one else target_std.tolist(),
    }
    if series.target_transform == "delta":
        statistics.update(target_transform="delta", target_positions=series.target_positions)
    return statistics


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
    baselines = forecast_baselines(series)
    log.info(
        "Naive forecast (last observed value) MAE: validation %.4g, test %.4g", baselines["validation"],
        baselines["test"],
    )
    if baselines["seasonal"]:
        log.info(
            "Seasonal-naive forecast (a season of %d rows) MAE: validation %.4g, test %.4g",
            series.season, baselines["seasonal"]["validation"], baselines["seasonal"]["test"],
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
        naive_forecast_mae=baselines,
    )
