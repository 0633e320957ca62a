"""`pull --list`: the sweeps in a store (or one sweep), each with its state, its best trial and a table of its
trials' best values, epochs and checkpoints."""

from __future__ import annotations

from cluster.results import layout
from cluster.results.manifest import list_sweeps, read_sweep
from cluster.results.pull_paths import split_sweep_uri
from cluster.store import StorageError, open_store
from cluster.store.base import Store
from cluster.store.pointers import read_json


def format_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def format_cell(value) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else format_value(value)


def _summary(store: Store, sweep: str, record: dict) -> dict:
    """What a finished trial is judged on (its metrics.json `summary`): test metrics, a forecast's naive baseline."""
    if not record["finished"]:
        return {}
    metrics, _ = read_json(store, layout.trial_key(sweep, record["trial"], layout.METRICS))
    found = (metrics or {}).get("summary")
    return found if isinstance(found, dict) else {}


def list_sweeps_in(store: Store, sweep: str) -> bool:
    return bool(store.list_dirs(f"{sweep}/{layout.TRIALS}/"))


def list_command(uri: str) -> int:
    store = open_store(uri)
    sweeps = list_sweeps(store)
    if not sweeps:  # maybe the URI is one sweep
        store, sweeps = _as_one_sweep(uri, store)
    if not sweeps:
        print(f"No sweeps in {uri}.")
        return 0
    for sweep in sweeps:
        _print_sweep(store, sweep)
    return 0


def _as_one_sweep(uri: str, store: Store) -> tuple[Store, list[str]]:
    """(its store, [sweep]) when `uri` is STORE/SWEEP with trials; else (`store`, [])."""
    try:
        sweep_store, sweep = split_sweep_uri(uri)
        return sweep_store, ([sweep] if list_sweeps_in(sweep_store, sweep) else [])
    except StorageError:
        return store, []


def _print_sweep(store: Store, sweep: str) -> None:
    info = read_sweep(store, sweep)
    best = info["best"] or (info["ranked"][0]["pointer"] if info["ranked"] else None)
    state = "finished" if info["finished"] else "running or interrupted (no best.json yet)"
    head = f"{store.uri}/{sweep}  [{state}]"
    if best:
        head += f"  best: trial {best['trial']}, {best['metric']} {format_value(best['value'])} ({best['mode']})"
    print(head)
    summaries = {record["trial"]: _summary(store, sweep, record) for record in info["records"]}
    judged = list(dict.fromkeys(name for summary in summaries.values() for name in summary))
    rows = [("", "trial", "value", "epoch", *judged, "finished", "checkpoint")]
    top = info["ranked"][0]["trial"] if info["ranked"] else None
    for record in info["records"]:
        pointer = record["pointer"] or {}
        checkpoint = (pointer.get("checkpoint") or {}).get("key", "-").rpartition(f"/{record['trial']}/")[2]
        summary = summaries[record["trial"]]
        rows.append(("*" if record["trial"] == top else "", record["trial"], format_value(pointer.get("value")),
                     format_value(pointer.get("epoch")), *(format_cell(summary.get(name)) for name in judged),
                     "yes" if record["finished"] else "no", checkpoint))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
