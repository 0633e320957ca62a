"""What metrics.json says of a trained job: its best epoch, the best model's test metrics, how training went
(stages, throughput, devices), what the saved model takes, and for a forecast the baselines beside it (naive,
seasonal-naive), per target and per series.

Imports no TensorFlow: the caller evaluates the model and passes the result.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .job_files import BEST_CHECKPOINT

if TYPE_CHECKING:
    from .fitting import Fitting
    from .job_setup import JobSetup


def job_metrics(
    job: JobSetup, fitting: Fitting, test_metrics: dict, stopped_early: bool, started: float,
    forecast_errors=None,
) -> dict:
    """metrics.json's content, but for `export`: `test_metrics` are the best model's (`model.evaluate`),
    `started` the job's `time.perf_counter()` at its start, `forecast_errors` a forecast's absolute test errors
    (examples x targets, trainers.series_windows.model_test_errors) for its per-target and per-series scores."""
    cfg, data = job.cfg, job.data
    metrics = {
        "metric": cfg.metric,
        "mode": job.mode,
        "best_value": fitting.tracker.best_value,
        "best_epoch": fitting.tracker.best_epoch,
        "test": {name: float(value) for name, value in test_metrics.items()},
        "epochs_run": len(fitting.history),
        "resumed_from_epoch": fitting.resumed_from_epoch,
        "stopped_early": stopped_early,
        "wall_time_s": time.perf_counter() - started,
        "train_samples_per_second": fitting.throughput.steady_rate(),
        # Seconds training waited for its next batch over seconds of training, after the first epoch as the rate
        # (each epoch's is in the history): near 0 when the input keeps up, near 1 when the model starves.
        "input_wait_fraction": fitting.throughput.steady_input_wait(),
        "replicas": job.replicas,
        "precision": job.policy,
        "global_batch_size": job.global_batch_size,
        "learning_rate": job.learning_rate,
        "num_train_examples": data.spec.num_train_examples,
        # What the saved model takes (shape, dtype, value range seen in training), for its callers.
        "inputs": data.spec.inputs(),
        "checkpoint": str(BEST_CHECKPOINT) if (fitting.output_dir / BEST_CHECKPOINT).is_file() else None,
        # Where each training stage began and ended (model=transfer: "train" then "fine_tune").
        "stages": [stage.to_json() for stage in fitting.stages],
        "history": fitting.history,
    }
    if data.spec.features is not None:  # data=csv: what each column became (numeric, one-hot, date, excluded...)
        metrics["features"] = data.spec.features
    elif data.spec.columns:  # which columns the model took as numbers, one-hot categories or embeddings
        metrics["features"] = feature_encodings(data.spec.columns)
    if data.naive_forecast_mae is not None:
        metrics["naive_forecast"] = compare_to_naive_forecast(
            data.naive_forecast_mae, metrics["test"]["mae"], forecast_errors
        )
    metrics["summary"] = summary(metrics)
    return metrics


def summary(metrics: dict) -> dict:
    """What the job is judged on, flat, for a sweep's leaderboard beside its metric: the best model's test
    metrics, the fraction of training time spent waiting for input (an input-bound trial stands out) and, for a
    forecast, the naive (and seasonal-naive) forecast's test MAE and whether the model beats it; with several
    targets, the same per target (`<target>/test_mae`, `<target>/beats_naive`, ...)."""
    columns = {f"test_{name}": value for name, value in metrics["test"].items()}
    if metrics.get("input_wait_fraction") is not None:
        columns["input_wait_fraction"] = metrics["input_wait_fraction"]
    naive = metrics.get("naive_forecast")
    if naive:
        columns.update(naive_test_mae=naive["test_mae"], beats_naive=naive["beats_naive"])
        seasonal = naive.get("seasonal_naive")
        if seasonal:
            columns.update(
                seasonal_naive_test_mae=seasonal["test_mae"], beats_seasonal_naive=seasonal["beats_seasonal_naive"]
            )
        for target, scores in (naive.get("targets") or {}).items():
            columns.update({f"{target}/{key}": scores[key] for key in TARGET_SUMMARY if key in scores})
    return columns


# A target's entries in the summary, in this order.
TARGET_SUMMARY = ("test_mae", "naive_test_mae", "beats_naive", "seasonal_naive_test_mae", "beats_seasonal_naive")


def feature_encodings(columns: list[dict]) -> dict:
    """Each table column's encoding, e.g. {"rooms": "numeric", "city": "one_hot (4 categories)"}."""
    return {
        column["name"]: column["encoding"]
        + (f" ({len(column['vocabulary'])} categories)" if "vocabulary" in column else "")
        for column in columns
    }


def _mean(values) -> float:
    return sum(values) / len(values)


def compare_to_naive_forecast(baselines: dict, model_test_mae: float, model_errors=None) -> dict:
    """The forecast's test MAE beside the baselines' (trainers.series_windows.forecast_baselines): the naive forecast
    (the last observed value) and, given data.season, the seasonal-naive one (the latest value at the target's
    point of the season), all in the targets' units and on the same windows: a forecast that does not beat
    them has learnt nothing useful. `model_errors`: the model's absolute test errors (examples x targets), for
    the scores per target and per series. With several targets, `beats_naive` holds when the model beats the
    naive forecast on every target (a mean over targets in different units would hide a loss on one)."""
    targets = baselines.get("targets") or []
    per_target = per_series = None
    if model_errors is not None and len(targets):
        rows = model_errors.tolist()  # numpy's, as plain lists
        per_target = [_mean(column) for column in zip(*rows)]
        cuts = [0]
        for count in baselines["test_windows_per_series"]:
            cuts.append(cuts[-1] + count)
        per_row = [_mean(row) for row in rows]
        per_series = [_mean(per_row[cuts[index]:cuts[index + 1]]) for index in range(len(cuts) - 1)]

    def beats(model: float, baseline: float) -> bool:
        return model < baseline

    def verdict(baseline: dict) -> bool:
        if per_target is None or len(targets) == 1:  # one target: the test MAE model.evaluate gave
            return beats(model_test_mae, baseline["test"])
        return all(map(beats, per_target, baseline["test_per_target"]))

    comparison = {
        "forecast": "last observed value",
        "validation_mae": baselines["validation"],
        "test_mae": baselines["test"],
        "model_test_mae": model_test_mae,
        "beats_naive": verdict(baselines),
    }
    seasonal = baselines.get("seasonal")
    if seasonal:
        comparison["seasonal_naive"] = {
            "forecast": f"the latest value one season ({seasonal['season']} rows) before the target's time",
            "season": seasonal["season"],
            "validation_mae": seasonal["validation"],
            "test_mae": seasonal["test"],
            "beats_seasonal_naive": verdict(seasonal),
        }
    if per_target is not None and len(targets) > 1:
        comparison["targets"] = {}
        for index, target in enumerate(targets):
            scores = {"test_mae": per_target[index], "naive_test_mae": baselines["test_per_target"][index],
                      "beats_naive": beats(per_target[index], baselines["test_per_target"][index])}
            if seasonal:
                scores.update(seasonal_naive_test_mae=seasonal["test_per_target"][index],
                              beats_seasonal_naive=beats(per_target[index], seasonal["test_per_target"][index]))
            comparison["targets"][target] = scores
    if per_series is not None and baselines.get("series"):
        comparison["series"] = {}
        for index, name in enumerate(baselines["series"]):
            scores = {"test_windows": baselines["test_windows_per_series"][index], "test_mae": per_series[index],
                      "naive_test_mae": baselines["test_per_series"][index],
                      "beats_naive": beats(per_series[index], baselines["test_per_series"][index])}
            if seasonal:
                scores.update(seasonal_naive_test_mae=seasonal["test_per_series"][index],
                              beats_seasonal_naive=beats(per_series[index], seasonal["test_per_series"][index]))
            comparison["series"][name] = scores
    return comparison
