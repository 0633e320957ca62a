"""The end-of-sweep summary: one row per trial (overrides, metric, best epoch, what the task is judged on,
wall time, status, and what happened to it: stopped early by the scheduler, copied from another trial by PBT),
the best trial and its checkpoint; printed as a table and written as leaderboard.json and leaderboard.csv.

A task that returns a dict with a `summary` (a flat dict of numbers, booleans or strings, e.g. its test
metrics, or a forecast's naive baseline and whether it beats it) gets those as columns beside the metric."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

COLUMNS = ("job", "trial_id", "status", "value", "best_epoch", "epochs", "wall_time_s", "overrides", "job_dir", "node",
           "checkpoint", "events")


@dataclass
class Row:
    job: int
    trial_id: str
    # COMPLETED: the job ran to its end; STOPPED: the scheduler ended it early; FAILED: it kept failing.
    status: str
    value: Optional[float]
    best_epoch: Optional[int]
    epochs: Optional[int]
    wall_time_s: Optional[float]
    overrides: str
    # The job's folder, on the disk of the node that last ran it (`node`, its IP address).
    job_dir: str
    # The best checkpoint: its URI in the store when the sweep has one, else a path on `node`.
    checkpoint: Optional[str]
    node: Optional[str] = None
    error: Optional[str] = None
    # What happened besides training, in order: "exploited job 3 at its epoch 4 (lr 0.001 -> 0.0012)",
    # "stopped by ASHAScheduler after epoch 2".
    events: list = field(default_factory=list)
    # The task's own summary (its returned `summary`): columns beside the metric.
    summary: dict = field(default_factory=dict)


def best_row(rows: list[Row], mode: str) -> Optional[Row]:
    scored = [row for row in rows if row.value is not None and not math.isnan(row.value)]
    if not scored:
        return None
    return (min if mode == "min" else max)(scored, key=lambda row: row.value)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _split_overrides(overrides: str) -> dict[str, str]:
    """`key=value` pairs of a row's overrides (joined by spaces; a space inside a value is escaped)."""
    pairs = {}
    for item in re.split(r"(?<!\\) ", overrides or ""):
        if item:
            key, _, value = item.partition("=")
            pairs[key] = value
    return pairs


def _short(value: str) -> str:
    """A sampled float (lr=0.0023219446794046513) to 4 significant digits for the table; JSON and CSV keep it whole."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if "." in value and len(value) > 8 and math.isfinite(number) else value


def shared_and_swept(rows: list[Row]) -> tuple[dict[str, str], list[str]]:
    """The overrides every row has with the same value, and the keys whose values differ (in first-seen order)."""
    parsed = [_split_overrides(row.overrides) for row in rows]
    keys = list(dict.fromkeys(key for pairs in parsed for key in pairs))
    shared = {key: parsed[0][key] for key in keys
              if all(key in pairs for pairs in parsed) and len({pairs[key] for pairs in parsed}) == 1}
    return shared, [key for key in keys if key not in shared]


def summary_columns(rows: list[Row]) -> list[str]:
    """The names in the rows' summaries, in first-seen order."""
    return list(dict.fromkeys(name for row in rows for name in row.summary))


def _summary_cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _fmt(value)


def table(rows: list[Row], metric: str, mode: str, in_store: bool = False) -> str:
    """The leaderboard as the console shows it: what every trial shares on one line, then a column per key
    whose value differs between trials, the metric, and the task's summary."""
    best = best_row(rows, mode)
    shared, swept = shared_and_swept(rows) if len(rows) > 1 else ({}, ["overrides"] if rows else [])
    judged = summary_columns(rows)
    header = ("", "job", *swept, f"{metric or 'value'} ({mode})", "best epoch", *judged, "wall time", "status")
    with_events = any(row.events for row in rows)
    if with_events:
        header += ("events",)

    def swept_values(row: Row) -> tuple:
        if swept == ["overrides"]:
            return (row.overrides or "(none)",)
        pairs = _split_overrides(row.overrides)
        return tuple(_short(pairs[key]) if key in pairs else "-" for key in swept)

    lines = [
        ("*" if best is not None and row is best else "", str(row.job), *swept_values(row), _fmt(row.value),
         _fmt(row.best_epoch), *(_summary_cell(row.summary.get(name)) for name in judged),
         f"{row.wall_time_s:.0f} s" if row.wall_time_s is not None else "-", row.status)
        + (("; ".join(row.events) or "-",) if with_events else ())
        for row in sorted(rows, key=lambda row: row.job)
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    render = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"All trials: {' '.join(f'{key}={value}' for key, value in shared.items())}"] if shared else []
    out += [render(header), render(tuple("-" * width for width in widths)), *map(render, lines)]
    if best is not None:
        # Without a store, a checkpoint is a path on the disk of the node that ran the trial.
        on_node = f" on node {best.node}" if best.checkpoint and best.node and not in_store else ""
        own = " ".join(f"{key}={value}" for key, value in _split_overrides(best.overrides).items() if key not in shared)
        out.append(f"* best: job {best.job} ({own or best.overrides or 'no overrides'}), {metric}={best.value:.4f} at "
                   f"epoch {best.best_epoch}; checkpoint: {best.checkpoint or '(none saved)'}{on_node}")
    else:
        out.append("No trial reported the metric.")
    return "\n".join(out)


def write(rows: list[Row], metric: str, mode: str, sweep_dir: Path) -> tuple[Path, Path]:
    best = best_row(rows, mode)
    rows = sorted(rows, key=lambda row: row.job)
    json_path, csv_path = sweep_dir / "leaderboard.json", sweep_dir / "leaderboard.csv"
    json_path.write_text(json.dumps(
        {"metric": metric, "mode": mode, "best": asdict(best) if best else None,
         "trials": [asdict(row) for row in rows]},
        indent=1,
    ))
    judged = summary_columns(rows)
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, *judged, "best"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**{key: getattr(row, key) for key in COLUMNS}, "events": "; ".join(row.events),
                             **{name: row.summary.get(name) for name in judged}, "best": row is best})
    return json_path, csv_path
