"""What metrics.json says of a trained job: its best epoch, the best model's test metrics, how training went
(stages, throughput, devices), what the saved model takes, and for a forecast the naive forecast beside it.

Imports no TensorFlow: the caller evaluates the model and passes the result.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .job_files import BEST_CHECKPOINT

if TYPE_CHECKING:
    from .fitting import Fitting
    from .job_setup import JobSetup


def job_metrics(job: JobSetup, fitting: Fitting, test_metrics: dict, stopped_early: bool, started: float) -> dict:
    """metrics.json's content, but for `export`: `test_metrics` are the best model's (`model.evaluate`),
    `started` the job's `time.perf_counter()` at its start."""
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
    if data.spec.columns:  # which columns the model took as numbers, one-hot categories or embeddings
        metrics["features"] = feature_encodings(data.spec.columns)
    if data.naive_forecast_mae is not None:
        metrics["naive_forecast"] = compare_to_naive_forecast(data.naive_forecast_mae, metrics["test"]["mae"])
    metrics["summary"] = summary(metrics)
    return metrics


def summary(metrics: dict) -> dict:
    """What the job is judged on, flat, for a sweep's leaderboard beside its metric: the best model's test
    metrics and, for a forecast, the naive forecast's test MAE and whether the model beats it."""
    columns = {f"test_{name}": value for name, value in metrics["test"].items()}
    naive = metrics.get("naive_forecast")
    if naive:
        columns.update(naive_test_mae=naive["test_mae"], beats_naive=naive["beats_naive"])
    return columns


def feature_encodings(columns: list[dict]) -> dict:
    """Each table column's encoding, e.g. {"rooms": "numeric", "city": "one_hot (4 categories)"}."""
    return {
        column["name"]: column["encoding"]
        + (f" ({len(column['vocabulary'])} categories)" if "vocabulary" in column else "")
        for column in columns
    }


def compare_to_naive_forecast(naive_mae: dict, model_test_mae: float) -> dict:
    """The forecast's test MAE beside the naive forecast's (the last observed value), both in the target's
    units and on the same windows: a forecast that does not beat it has learnt nothing useful."""
    return {
        "forecast": "last observed value",
        "validation_mae": naive_mae["validation"],
        "test_mae": naive_mae["test"],
        "model_test_mae": model_test_mae,
        "beats_naive": model_test_mae < naive_mae["test"],
    }
