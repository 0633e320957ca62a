"""A sweep's summary in the store: `manifest.json` (leaderboard, best trial, command, resolved configs,
library versions), then `best.json`, the pointer to the best trial, written last and replaced only by a
better trial. Also the read side `pull` uses: sweeps, their trials and their best values."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from importlib import metadata
from typing import Optional

from cluster.results import layout
from cluster.store.base import Store
from cluster.store.errors import StorageError
from cluster.store.pointers import read_json, replace_if_better

LIBRARIES = ("raylaunch", "tensorflow", "keras", "ray", "hydra-core", "omegaconf", "google-cloud-storage", "numpy")


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def trial_records(store: Store, sweep: str) -> list[dict]:
    """One entry per trial folder in the store: its best.json pointer (None while it has no
    checkpoint) and whether its metrics.json (written when the trial finished) is there."""
    prefix = layout.sweep_key(sweep, layout.TRIALS) + "/"
    names = {info.key[len(prefix):].split("/", 1)[0] for info in store.list(prefix)}
    records = []
    for trial in sorted(names, key=lambda n: (len(n), n)):
        try:
            layout.check_name("trial", trial)
        except ValueError:
            continue  # not written by raylaunch; pull refuses such names anyway
        pointer, _ = read_json(store, layout.trial_key(sweep, trial, layout.POINTER))
        finished = store.stat(layout.trial_key(sweep, trial, layout.METRICS)) is not None
        records.append({"trial": trial, "pointer": pointer, "finished": finished})
    return records


def rank(records: list[dict]) -> list[dict]:
    """Trials with a checkpoint, best first (ties: the lower trial name)."""
    ranked = [r for r in records if r["pointer"] and r["pointer"].get("value") is not None]
    return sorted(ranked, key=lambda r: (r["pointer"]["value"] if r["pointer"]["mode"] == "min"
                                         else -r["pointer"]["value"]))


def write_sweep_manifest(
    store: Store,
    sweep: str,
    *,
    command: Optional[list[str]] = None,
    leaderboard: Optional[list] = None,
    extra: Optional[dict] = None,
) -> Optional[dict]:
    """Call once all trials have finished (and their uploaders closed). Writes manifest.json, then
    best.json last; returns the best.json record (None when no trial uploaded a checkpoint).
    `leaderboard` is the launcher's own table if it has one; the trials' pointers are always included."""
    records = trial_records(store, sweep)
    ranked = rank(records)
    configs = {}
    for record in records:
        found = store.read_bytes(layout.trial_key(sweep, record["trial"], layout.CONFIG))
        if found is not None:
            configs[record["trial"]] = found[0].decode()
    best = ranked[0]["pointer"] if ranked else None
    manifest = {
        "sweep": sweep,
        "written_at": time.time(),
        "command": shlex.join(command if command is not None else sys.argv),
        "best_trial": best and best["trial"],
        "metric": best and best["metric"],
        "mode": best and best["mode"],
        "trials": [
            {
                "trial": r["trial"],
                "finished": r["finished"],
                "value": r["pointer"] and r["pointer"]["value"],
                "epoch": r["pointer"] and r["pointer"]["epoch"],
                "checkpoint": r["pointer"] and r["pointer"]["checkpoint"]["key"],
            }
            for r in records
        ],
        "leaderboard": leaderboard if leaderboard is not None else [r["trial"] for r in ranked],
        "resolved_configs": configs,
        "versions": library_versions(),
        **(extra or {}),
    }
    store.write_bytes(layout.sweep_key(sweep, layout.MANIFEST), json.dumps(manifest, indent=1).encode())
    if best is None:
        return None
    # Last: whoever follows the pointer finds the manifest and every file of the trial it names.
    replace_if_better(store, layout.sweep_key(sweep, layout.POINTER), best)
    return best


def list_sweeps(store: Store) -> list[str]:
    sweeps = []
    for name in store.list_dirs(""):
        try:
            layout.check_name("sweep", name)
        except ValueError:
            continue
        if store.list_dirs(f"{name}/{layout.TRIALS}/"):
            sweeps.append(name)
    return sweeps


def read_sweep(store: Store, sweep: str) -> dict:
    """What pull needs: the ranked trials, the sweep's best pointer and whether the sweep finished."""
    records = trial_records(store, sweep)
    if not records:
        raise StorageError(f"No sweep {sweep!r} in {store.uri} (no objects under {sweep}/{layout.TRIALS}/).")
    best, _ = read_json(store, layout.sweep_key(sweep, layout.POINTER))
    ranked = rank(records)
    if best is not None:
        # The sweep's pointer is authoritative for first place (it may name a trial from an earlier run).
        ranked = [r for r in ranked if r["trial"] == best["trial"]] + [r for r in ranked if r["trial"] != best["trial"]]
    return {"sweep": sweep, "records": records, "ranked": ranked, "best": best, "finished": best is not None}
