"""Which windows each part of a series has, and what the baselines (the naive and seasonal-naive forecasts) and
the model score on them, per target and per series, in the same order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .schema import seasonal_lag

if TYPE_CHECKING:
    from .timeseries import Series


def first_rows_per_series(series: Series, part: str) -> list[np.ndarray]:
    """Per series, the first row of every example that lies entirely inside that series' `part`."""
    return [
        np.arange(parts[part][0], parts[part][1] - series.layout.rows_per_example + 1, dtype="int64")
        for parts in series.series_parts
    ]


def first_rows(series: Series, part: str) -> np.ndarray:
    """The first row of every example that lies entirely inside `part` (of one series: none crosses two)."""
    return np.concatenate(first_rows_per_series(series, part))


def latest_and_ahead(series: Series, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return starts + series.layout.window - 1, starts + series.layout.target_offset


def naive_errors(series: Series, part: str) -> np.ndarray:
    """(examples, targets) absolute errors of predicting the last observed value, in the targets' units."""
    latest, ahead = latest_and_ahead(series, first_rows(series, part))
    return np.abs(series.targets[ahead].astype("float64") - series.targets[latest])


def seasonal_naive_errors(series: Series, part: str) -> np.ndarray:
    """(examples, targets) absolute errors of predicting the latest value at the target's point of the season:
    the target's time less whole seasons, inside the example's window (the config's check)."""
    latest, ahead = latest_and_ahead(series, first_rows(series, part))
    reference = latest - seasonal_lag(series.season, series.layout.horizon)
    return np.abs(series.targets[ahead].astype("float64") - series.targets[reference])


def naive_forecast_mae(series: Series, part: str) -> float:
    """Mean absolute error, in the target's units, of predicting the last observed value."""
    return float(np.mean(naive_errors(series, part)))


def forecast_baselines(series: Series) -> dict:
    """The baselines' MAE on the validation and test windows: over every target and window (`validation`,
    `test`, as before), per target, and per series; the seasonal-naive one likewise when data.season is set.
    What trainers/evaluation.py sets the model's own test errors beside."""

    def scores(errors_of) -> dict:
        errors = {part: errors_of(series, part) for part in ("validation", "test")}
        counts = [len(starts) for starts in first_rows_per_series(series, "test")]
        cuts = np.cumsum([0, *counts])
        return {
            "validation": float(errors["validation"].mean()),
            "test": float(errors["test"].mean()),
            "test_per_target": errors["test"].mean(axis=0).tolist(),
            "test_per_series": [float(errors["test"][cuts[i]:cuts[i + 1]].mean()) for i in range(len(counts))],
        }

    baselines = {
        **scores(naive_errors),
        "targets": list(series.target_names),
        "series": list(series.series_names) if len(series.series_names) > 1 or series.series_names[0] else None,
        "test_windows_per_series": [len(starts) for starts in first_rows_per_series(series, "test")],
        "seasonal": None,
    }
    if series.season is not None:
        baselines["seasonal"] = {"season": series.season, **scores(seasonal_naive_errors)}
    return baselines


def model_test_errors(model, test_dataset) -> np.ndarray:
    """(examples, targets) absolute errors of `model` on the (batched) test windows, in the targets' units and in
    the baselines' order (series after series, each in time order), for per-target and per-series scores."""
    truth = np.concatenate([targets.numpy() for _, targets in test_dataset], axis=0).astype("float64")
    predicted = np.asarray(model.predict(test_dataset, verbose=0), dtype="float64")
    return np.abs(predicted.reshape(truth.shape) - truth)
