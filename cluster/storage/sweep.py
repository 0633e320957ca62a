"""The sweep driver's part of storage: check the store once before any trial starts, and after the last
trial write the sweep's manifest (with the launcher's leaderboard) and then its best pointer.

Each trial uploads its own files (launch.py's task function runs in the trial, see session.py); the
driver only reads what they uploaded.

    storage = SweepStorage.check(task_configs, base_dir=os.getcwd())   # before Ray starts; StorageError
    ...run the trials...
    storage.finish(sweep_dir, leaderboard_rows)                         # manifest.json, then best.json
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from . import preflight
from .base import Store
from .errors import StorageError
from .manifest import write_sweep_manifest
from .session import sweep_name_of

log = logging.getLogger(__name__)


class SweepStorage:
    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def check(cls, task_configs: Sequence[Any], base_dir: Optional[str] = None) -> Optional["SweepStorage"]:
        """None when storage is off. All jobs of a sweep must share one store (a sweep is one folder in it)."""
        uris = {None if cfg.get("storage") is None else cfg.storage.get("uri") for cfg in task_configs}
        if len(uris) != 1:
            raise StorageError(f"The jobs of one sweep must share storage.uri, received {sorted(map(str, uris))}; "
                               f"sweep storage.uri in separate sweeps.")
        uri = uris.pop()
        if uri is None:
            return None
        return cls(preflight(uri, base_dir=base_dir or os.getcwd()))

    def finish(self, sweep_dir: str | Path, leaderboard: Sequence[Any] = (), command: Optional[list[str]] = None) -> Optional[dict]:
        """Write `<sweep>/manifest.json` then `<sweep>/best.json` (only if better than what is there).
        Never raises: the sweep's results stand locally; a failure is logged and returned as None."""
        sweep = sweep_name_of(sweep_dir)
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
