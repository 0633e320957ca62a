"""Storage for one Hydra job, from its `storage` config: check the store before training, upload while
training, and for a single run (which is a sweep of one trial) write the sweep manifest at the end.

launch.py's task function uses it for `python launch.py` and, inside each Ray trial, for sweeps:

    uploads = JobUploads.start(cfg.storage, HydraConfig.get(), metric, mode)   # StorageError: bad store
    try: train(..., on_epoch_end=uploads.on_epoch_end)
    finally: uploads.finish()
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from cluster.results import layout
from cluster.results.manifest import write_sweep_manifest
from cluster.results.trial_state import RestoreOutcome, restore_state
from cluster.results.uploader import TrialUploader, UploadReport
from cluster.store import open_store
from cluster.store.base import Store
from cluster.store.layout import job_identity
from cluster.store.ownership import claim_sweep

log = logging.getLogger(__name__)




class JobUploads:
    def __init__(self, store: Store, uploader: TrialUploader, sweep: str, single_run: bool, close_timeout: float,
                 restored: Optional[RestoreOutcome] = None):
        self.store, self.uploader, self.sweep = store, uploader, sweep
        self.single_run, self.close_timeout = single_run, close_timeout
        self.restored = restored
        self.report: Optional[UploadReport] = None
        self.best: Optional[dict] = None

    @classmethod
    def start(cls, storage_cfg: Any, hydra_cfg: Any, metric: str, mode: str, resume: bool = True,
              sweep_id: Optional[str] = None) -> Optional["JobUploads"]:
        """None when `storage.uri` is null. Raises StorageError (malformed URI, missing bucket, no
        credentials, not writable, the sweep's name taken by another sweep) in seconds, before any
        training. With `resume`, the job folder is first given the newest state of this trial, its own
        or the store's (a trial retried on another node continues there). `sweep_id`: the id the sweep's
        driver claimed its name with (a trial of a sweep); None: the run (or sweep) folder claims it."""
        if storage_cfg is None or storage_cfg.get("uri") is None:
            return None
        deadline = float(storage_cfg.upload_timeout_seconds)
        store = open_store(
            storage_cfg.uri,
            base_dir=hydra_cfg.runtime.cwd,  # relative folders mean the same in every trial process
            retry_deadline=deadline,
            # One request that hangs (a store that stopped answering) must not outlast the deadline either.
            request_timeout=min(60.0, deadline),
        )
        store.check_writable()
        sweep, trial, single_run = job_identity(hydra_cfg)
        if sweep_id is None:  # a single run, or a multirun on another launcher: the run (sweep) folder claims it
            sweep_id = claim_sweep(store, sweep, Path(hydra_cfg.run.dir if single_run else hydra_cfg.sweep.dir))
        job_dir = Path(hydra_cfg.runtime.output_dir)
        restored = restore_state(store, sweep, trial, sweep_id, job_dir) if resume else None
        if restored is not None and restored.source == "store":
            print(f"[raylaunch] {restored.describe()}", flush=True)
        uploader = TrialUploader(
            store, sweep, trial, job_dir, metric, mode, sync_seconds=float(storage_cfg.sync_seconds),
            sweep_id=sweep_id if storage_cfg.get("upload_state", True) else None,
        )
        return cls(store, uploader, sweep, single_run, float(storage_cfg.close_timeout_seconds), restored)

    @property
    def on_epoch_end(self):
        return self.uploader.on_epoch_end

    @property
    def on_state_saved(self):
        return self.uploader.on_state_saved

    @property
    def trial_uri(self) -> str:
        return f"{self.store.uri}/{layout.trial_key(self.sweep, self.uploader.trial)}"

    def finish(self, timeout: Optional[float] = None) -> UploadReport:
        """Flush the uploads (bounded by storage.close_timeout_seconds, or `timeout` when shorter: a preempted
        job's). A single run then writes its sweep's manifest and best pointer; a sweep's are written by the
        launcher after all trials."""
        self.report = self.uploader.close(self.close_timeout if timeout is None else min(timeout, self.close_timeout))
        if self.single_run and self.report.finished:
            try:
                self.best = write_sweep_manifest(self.store, self.sweep)
            except Exception as error:  # noqa: BLE001 - the training result stands; say what is missing
                log.error("Writing the manifest of %s/%s failed: %s", self.store.uri, self.sweep, error)
                self.report.failures.append(f"manifest: {error}")
        return self.report

    def summary_lines(self) -> list[str]:
        if self.report is None:
            return []
        line = f"  uploaded:    {self.trial_uri} ({self.report.summary()})"
        lines = [line]
        if self.single_run and self.best is not None:
            lines.append(f"  pull:        python launch.py pull {self.store.uri}/{self.sweep} --to DIR")
        return lines
