"""The sweep driver's part of storage: check the store once before any trial starts, and after the last
trial write the sweep's manifest (with the launcher's leaderboard) and then its best pointer.

Each trial uploads its own files (launch.py's task function runs in the trial, see session.py); the
driver only reads what they uploaded.

    storage = SweepStorage.check(task_configs, sweep_dir)   # before Ray starts; claims the sweep's name
    ...run the trials (each gets storage.sweep_id)...
    storage.trial_books()                                   # {trial: its best checkpoint's URI, ...}
    storage.finish(sweep_dir, leaderboard_rows)             # manifest.json, then best.json
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from cluster.results import layout
from cluster.results.manifest import trial_records, write_sweep_manifest
from cluster.store import preflight
from cluster.store.base import Store
from cluster.store.errors import StorageError
from cluster.store.layout import sweep_name_of
from cluster.store.ownership import claim_sweep
from cluster.store.pointers import read_json

log = logging.getLogger(__name__)


class SweepStorage:
    def __init__(self, store: Store, sweep: str, sweep_id: str):
        self.store, self.sweep, self.sweep_id = store, sweep, sweep_id

    @property
    def uri(self) -> str:
        """Where the sweep's files go: `<store>/<sweep>`."""
        return f"{self.store.uri}/{self.sweep}"

    @property
    def is_local_folder(self) -> bool:
        return self.store.uri.scheme == "file"

    @classmethod
    def check(cls, uris: set, sweep_dir: str | Path, base_dir: Optional[str] = None) -> Optional["SweepStorage"]:
        """`uris`: the store each job names. None when storage is off. All jobs of a sweep must share one
        store (a sweep is one folder in it). Claims the sweep's name there (SweepNameTaken if taken)."""
        uris = set(uris)
        if len(uris) != 1:
            raise StorageError(f"The jobs of one sweep must share one store, received {sorted(map(str, uris))}; "
                               f"sweep the store in separate sweeps.")
        uri = uris.pop()
        if uri is None:
            return None
        store = preflight(uri, base_dir=base_dir or os.getcwd())
        sweep = sweep_name_of(sweep_dir)
        return cls(store, sweep, claim_sweep(store, sweep, Path(sweep_dir)))

    def trial_books(self) -> Optional[dict[str, dict]]:
        """Each trial folder in the store, by name (what trials uploaded; never a worker's disk): the URI of its
        best checkpoint (`checkpoint`, None before it has one), whether its final metrics are there
        (`finished`) and the trial id its record names (`trial_id`). None when the store cannot be read."""
        try:
            books = {}
            for record in trial_records(self.store, self.sweep):
                pointer = record["pointer"]
                record_key = layout.trial_key(self.sweep, record["trial"], layout.TRIAL_RECORD)
                trial_record, _ = read_json(self.store, record_key)
                books[record["trial"]] = {
                    "checkpoint": f"{self.store.uri}/{pointer['checkpoint']['key']}" if pointer else None,
                    "finished": record["finished"], "trial_id": (trial_record or {}).get("trial_id")}
        except StorageError as error:
            log.error("Reading the trials of %s failed, so the leaderboard names no checkpoint in it and the "
                      "sweep's books are not checked against it: %s", self.uri, error)
            return None
        return books

    def finish(self, sweep_dir: str | Path, leaderboard: Sequence[Any] = (),
               command: Optional[list[str]] = None) -> Optional[dict]:
        """Write `<sweep>/manifest.json` then `<sweep>/best.json` (only if better than what is there).
        Never raises: the sweep's results stand locally; a failure is logged and returned as None."""
        sweep = self.sweep
        rows = [dataclasses.asdict(row) if dataclasses.is_dataclass(row) else row for row in leaderboard]
        try:
            best = write_sweep_manifest(self.store, sweep, command=command or sys.argv, leaderboard=rows,
                                        extra={"sweep_dir": str(sweep_dir)})
        except StorageError as error:
            log.error("Writing the sweep manifest to %s/%s failed: %s", self.store.uri, sweep, error)
            return None
        where = f"{self.store.uri}/{sweep}"
        if best is None:
            print(f"Storage: {where} (no trial uploaded a checkpoint)", flush=True)
        else:
            print(f"Storage: {where} (best: trial {best['trial']}, {best['metric']} {best['value']:.4f}); "
                  f"get it with: python launch.py pull {where} --to DIR", flush=True)
        return best
