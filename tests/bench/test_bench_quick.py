"""Smoke test of the benchmark runner: `python -m bench.run --quick` end to end (a minute or two on 2 cores).

Marked slow: benchmarks are not part of the default test command. Run with `pytest -m slow tests/bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"trainer_vs_plain_throughput", "startup_overhead_s", "ray_sweep_vs_sequential", "asha_vs_full",
        "peak_rss_ratio"}


@pytest.mark.slow
def test_quick_benchmark_prints_every_figure_last(tmp_path):
    """Two runs per side: every repeat of the launcher is a run of its own (the default store, named after
    the run's folder, refused the second `pair1/launch` once `pair0/launch` held the name: the default
    `bench/run.py` failed at its second pair)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--runs", "2", "--num-train", "1024", "--skip", "sweep", "asha",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= set(summary)
    for key in ("trainer_vs_plain_throughput", "peak_rss_ratio"):
        figure = summary[key]
        assert figure["min"] <= figure["median"] <= figure["max"] and figure["median"] > 0
    assert "median" in summary["startup_overhead_s"]
    assert "not_measured" in summary["ray_sweep_vs_sequential"] and "not_measured" in summary["asha_vs_full"]
    details = json.loads((tmp_path / "results.json").read_text())["details"]
    assert len(details["rounds"]) == 2
    pair = details["rounds"][0]
    assert pair["plain"]["params"] == 241_546  # the tutorial CNN on both sides
