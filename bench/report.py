"""The statistics and the report: each figure as the median over runs with min, max and the values; the
summary `python -m bench.run` prints as its last line (the figures and the conditions they were taken
under); partial.json and results.json in the run's folder."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.machine import load_average

# The figures of the summary, in the order it lists them.
FIGURES = ("trainer_vs_plain_throughput", "startup_overhead_s", "ray_sweep_vs_sequential", "asha_vs_full",
           "peak_rss_ratio")
# The figures one side-by-side run of launch.py and the plain script gives.
THROUGHPUT_FIGURES = ("trainer_vs_plain_throughput", "startup_overhead_s", "peak_rss_ratio")


def stats(values: list[float], **extra) -> dict:
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
        "values": [round(v, 4) for v in values],
        **extra,
    }


def write_partial(out_dir: Path, figures: dict) -> None:
    """The figures taken so far, so a run that dies later still leaves them."""
    (out_dir / "partial.json").write_text(json.dumps(figures, indent=1))


def summarize(figures: dict, args, precision: str, revision: str, info: dict, load_start: list[float]) -> dict:
    """Every figure, then the conditions: what ran, on what, under which load."""
    summary = {key: figures[key] for key in FIGURES}
    summary["conditions"] = {
        "quick": args.quick,
        "num_train_samples": args.num_train,
        "epochs": args.epochs,
        "precision": precision,
        "launch_overrides": args.launch_overrides,
        "launcher_revision": revision,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "cpu_model": info["cpu_model"],
        "logical_cores": info["logical_cores"],
        "cpu_flags": info["cpu_flags"],
        "gpus": info["gpus"],
    }
    return summary


def write_results(out_dir: Path, summary: dict, details: dict) -> Path:
    path = out_dir / "results.json"
    path.write_text(json.dumps({"summary": summary, "details": details}, indent=1))
    return path
