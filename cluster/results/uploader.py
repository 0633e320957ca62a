"""A trial's uploads, on a background thread: the training step never waits for the network.

    uploader = TrialUploader(store, sweep, trial, job_dir, metric="val_loss", mode="min", sweep_id=...)
    ... train, calling uploader.on_epoch_end(epoch, logs, state_dir) after each epoch ...
    ... and uploader.on_state_saved(state_dir) after each state saved within an epoch (trainer.save_every_steps)
    uploader.close(timeout=600)        # final sync; returns what was uploaded and what failed

The epoch hook only stats the checkpoint, reads the job's small progress file and hard-links the
epoch's resumable state aside, then queues a message. The worker thread uploads a new best checkpoint
(upload_transfers.py: to an immutable name, then moves the trial's `best.json` pointer to it by
compare-and-swap), then the newest state (trial_state.py: a trial retried on another node resumes from it),
syncs TensorBoard event files every `sync_seconds`, and uploads the resolved config and, at the end,
metrics.json. Each transfer is bounded by the store's retry deadline; failures are logged as warnings in the
trial's log and retried at the next sync (a state only until a newer one replaces it). Whatever was uploaded
stays if the trial dies.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from cluster.results import layout
from cluster.results.trial_state import STAGING, StagedState, describe_position, stage_state, upload_state
from cluster.results.upload_transfers import BestCheckpoint, TrialTransfers, UploadReport
from cluster.store.base import Store
from cluster.store.errors import StorageError
from trainers.job_files import BEST_CHECKPOINT, PROGRESS, STATE, UNREADABLE, Progress

# UploadReport is defined beside the transfers that fill it; callers import it from here.
__all__ = ["TrialUploader", "UploadReport"]

log = logging.getLogger(__name__)


class TrialUploader:
    def __init__(
        self,
        store: Store,
        sweep: str,
        trial: str,
        job_dir: str | Path,
        metric: str,
        mode: str,
        *,
        sync_seconds: float = 5.0,
        sweep_id: Optional[str] = None,
    ):
        """`sweep_id`: upload the job's resumable state every epoch, marked as this sweep's (None: no state uploads)."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}: the uploader needs a resolved mode, 'min' or 'max'.")
        self.store, self.sweep, self.trial = store, layout.check_name("sweep", sweep), layout.check_name("trial", trial)
        self.job_dir, self.metric, self.mode = Path(job_dir), metric, mode
        self.sync_seconds = sync_seconds
        self.report = UploadReport()
        self._queue: queue.Queue = queue.Queue()
        self._pending: Optional[BestCheckpoint] = None  # the newest best checkpoint the worker was told of
        self.sweep_id = sweep_id
        self._pending_state: Optional[StagedState] = None
        self._state_signature: Optional[tuple] = None  # progress.json of the last state staged
        self._newest_state: Optional[StagedState] = None  # the last state staged (its folder may be gone)
        self.state_record: Optional[dict] = None  # the trial's state pointer after the last state upload
        self._staging = Path(tempfile.mkdtemp(prefix="raylaunch-upload-"))
        self._transfers = TrialTransfers(self.store, self.sweep, self.trial, self.job_dir, metric, mode,
                                         self._staging, self.report)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"uploader-{sweep}-{trial}", daemon=True)
        self._thread.start()

    @property
    def staging_dir(self) -> Path:
        """Where this uploader snapshots files (hard links) before sending them."""
        return self._staging

    # ------------------------------------------------------------ training thread
    def on_epoch_end(self, epoch: int, logs: dict, state_dir: str) -> None:
        """Call after each epoch, once its state is on disk. Cheap: a stat, a small JSON read, two hard links, a
        queue put."""
        self.on_state_saved(state_dir)
        try:
            progress = Progress.read(Path(state_dir))
            checkpoint = os.stat(self.job_dir / BEST_CHECKPOINT)
        except UNREADABLE:
            self._queue.put(("epoch", None))  # no checkpoint (disabled or not yet written): sync the rest
            return
        best = BestCheckpoint(progress.best_epoch, progress.best_value, (checkpoint.st_mtime_ns, checkpoint.st_size))
        self._queue.put(("epoch", best))

    def on_state_saved(self, state_dir: str) -> None:
        """Call after a state saved within an epoch: it is uploaded as an epoch's is (a newer one replaces it
        in the queue). Cheap: two hard links and a queue put."""
        if self.sweep_id is not None:
            staged = stage_state(self.job_dir)
            if staged is not None:
                self._state_signature = staged.signature
                self._newest_state = staged
                self._queue.put(("state", staged))

    def close(self, timeout: float = 600.0) -> UploadReport:
        """Upload what is left (metrics.json, last event files, a pending checkpoint), waiting at most
        `timeout` seconds; afterwards the thread is abandoned (it is a daemon) and that is logged."""
        if not self._closed:
            self._closed = True
            self._queue.put(("close", None))
        self._thread.join(timeout)
        trial_uri = self._transfers.trial_uri
        if self._thread.is_alive():
            self.report.finished = False
            log.error("Uploads to %s did not finish within %.0f s; %swhat is not uploaded stays in %s.",
                      trial_uri, timeout, self._state_left_behind(), self.job_dir)
        elif self.report.unsynced:
            log.error("Uploads to %s incomplete, not in the store: %s", trial_uri, "; ".join(self.report.unsynced))
        elif self.report.failures:
            log.warning("Uploaded to %s after retrying failed transfers: %s", trial_uri, self.report.summary())
        else:
            log.info("Uploaded to %s: %s", trial_uri, self.report.summary())
        return self.report

    def _state_left_behind(self) -> str:
        """Words for close() when it gives up: the newest resumable state staged and not in the store, if any
        (a retry elsewhere resumes from the store's, so the user must know how far back that is)."""
        newest, stored = self._newest_state, self.state_record
        if newest is None:
            return ""
        stored_position = (int(stored.get("epoch", 0)), int(stored.get("step", 0))) if stored else None
        if stored_position is not None and stored_position >= (newest.epoch, newest.step):
            return ""
        held = (f"the store's is that of {describe_position(*stored_position)}" if stored_position
                else "none of this run's is in the store")
        return f"the resumable state of {newest.describe()} is NOT uploaded ({held}); "

    # ------------------------------------------------------------ worker thread
    def _run(self) -> None:
        next_sync = time.monotonic()
        try:
            while True:
                messages = self._next_messages(next_sync)
                closing = any(kind == "close" for kind, _ in messages)
                failures_before = len(self.report.failures)
                for kind, payload in messages:
                    if kind == "epoch" and payload is not None:
                        self._pending = payload
                    elif kind == "state":
                        self._replace_pending_state(payload)
                if closing:
                    self._stage_final_state()
                self._transfers.upload_checkpoint(self._pending)  # no-op unless a new best is pending (or a failed one)
                # After the checkpoint: a state naming a best epoch comes with that epoch's checkpoint stored.
                self._upload_state()
                if closing or time.monotonic() >= next_sync:
                    self._transfers.sync_files(final=closing)
                    next_sync = time.monotonic() + self.sync_seconds
                if closing:
                    self.report.unsynced = self.report.failures[failures_before:]
                    return
        except Exception as error:  # noqa: BLE001 - the thread must say why it stopped, never die silently
            log.exception("Upload thread for %s stopped: %s", self._transfers.trial_uri, error)
            self.report.failures.append(f"upload thread stopped: {error}")
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
            shutil.rmtree(self.job_dir / STAGING, ignore_errors=True)

    def _next_messages(self, next_sync: float) -> list[tuple]:
        """The next message (waiting at most until `next_sync`) and every one queued behind it."""
        try:
            messages = [self._queue.get(timeout=max(0.0, next_sync - time.monotonic()))]
        except queue.Empty:
            messages = []
        # Drain: when uploads lag behind training only the newest best checkpoint matters.
        while True:
            try:
                messages.append(self._queue.get_nowait())
            except queue.Empty:
                return messages

    def _replace_pending_state(self, staged: StagedState) -> None:
        # Only the newest state matters: one the uploads did not get to in time is dropped.
        if self._pending_state is not None:
            log.info("State of %s skipped: the uploads are behind and %s's is newer",
                     self._pending_state.describe(), staged.describe())
            self._pending_state.discard()
        self._pending_state = staged

    def _stage_final_state(self) -> None:
        """At close: the state as the job left it (e.g. marked finished after its last epoch)."""
        if self.sweep_id is None:
            return
        try:
            stat = os.stat(self.job_dir / STATE / PROGRESS)
        except OSError:
            return
        if (stat.st_mtime_ns, stat.st_size) != self._state_signature:
            staged = stage_state(self.job_dir)
            if staged is not None:
                self._state_signature = staged.signature
                self._replace_pending_state(staged)

    def _upload_state(self) -> None:
        staged = self._pending_state
        if staged is None:
            return
        try:
            record = upload_state(self.store, self.sweep, self.trial, self.sweep_id, staged)
        except (StorageError, *UNREADABLE) as error:
            self._transfers.fail(f"resumable state of {staged.describe()} to {self._transfers.trial_uri} "
                                 f"(a newer one replaces it)", error)
            return
        if record is not None:
            self.state_record = record
            self.report.uploaded.append(record["folder"])
            log.debug("State of %s uploaded to %s/%s", staged.describe(), self.store.uri, record["folder"])
        staged.discard()
        self._pending_state = None
