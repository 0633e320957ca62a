"""The transfers a trial's upload thread makes (uploader.py runs them): a new best checkpoint, stored under an
immutable name before the trial's `best.json` moves to it by compare-and-swap, and the job files synced as they
change (resolved config, TensorBoard event files, metrics.json at the end). Each file is sent from a copy
taken aside, so the job can keep writing it; what was sent and what failed goes into an UploadReport.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cluster.results import layout
from cluster.store.base import Store
from cluster.store.errors import StorageError
from cluster.store.pointers import is_better, read_json, replace_if_better
from trainers.job_files import BEST_CHECKPOINT, METRICS, RESOLVED_CONFIG, TENSORBOARD

# The uploader's logger: trial logs name it on each line, and callers set its level by that name.
log = logging.getLogger("cluster.results.uploader")


@dataclass
class BestCheckpoint:
    """The best epoch so far, as the epoch hook found it on disk."""

    epoch: int
    value: float
    signature: tuple  # (mtime_ns, size) of the checkpoint file when the epoch ended


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Failures of the final pass at close(): what is missing from the store (earlier ones were retried).
    unsynced: list[str] = field(default_factory=list)
    checkpoint: Optional[dict] = None  # the trial's best.json record after the last checkpoint upload
    finished: bool = True  # False when close() gave up waiting

    def summary(self) -> str:
        text = f"{len(self.uploaded)} object(s) uploaded"
        if self.unsynced:
            text += f", {len(self.unsynced)} NOT uploaded (last: {self.unsynced[-1]})"
        elif self.failures:
            text += f", {len(self.failures)} failed transfer(s) retried (last: {self.failures[-1]})"
        if not self.finished:
            text += ", gave up waiting for the rest"
        return text


class TrialTransfers:
    """One trial's transfers to the store, made on the upload thread only. A failed transfer is recorded in
    `report` and logged, never raised: the next sync tries it again."""

    def __init__(self, store: Store, sweep: str, trial: str, job_dir: Path, metric: str, mode: str,
                 staging: Path, report: UploadReport):
        self.store, self.sweep, self.trial = store, sweep, trial
        self.job_dir, self.metric, self.mode = job_dir, metric, mode
        self.staging, self.report = staging, report
        self._synced: dict[str, tuple] = {}  # local relative path -> (mtime_ns, size) last uploaded
        self._uploaded_signature: Optional[tuple] = None  # the best checkpoint last uploaded (or not needed)

    @property
    def trial_uri(self) -> str:
        return f"{self.store.uri}/{layout.trial_key(self.sweep, self.trial)}"

    def fail(self, what: str, error: Exception) -> None:
        message = f"{what}: {error}"
        self.report.failures.append(message)
        log.warning("Upload failed (will retry at the next sync): %s", message)

    def snapshot(self, relative: Path, signature: Optional[tuple] = None) -> Optional[Path]:
        """Copy a job file aside so the upload sends one consistent version, even while the job keeps
        writing it. With `signature`, return None unless the file is exactly that version."""
        source = self.job_dir / relative
        before = os.stat(source)
        if signature is not None and (before.st_mtime_ns, before.st_size) != signature:
            return None
        copy = self.staging / uuid.uuid4().hex
        shutil.copyfile(source, copy)
        after = os.stat(source)
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
            copy.unlink()
            return None
        return copy

    def upload_checkpoint(self, best: Optional[BestCheckpoint]) -> None:
        """Upload `best` and point best.json to it; nothing to do when it is uploaded already (or None)."""
        if best is None or best.signature == self._uploaded_signature:
            return
        copy = None
        try:
            current, _ = read_json(self.store, layout.trial_key(self.sweep, self.trial, layout.POINTER))
            if current is not None and not is_better(best.value, current.get("value"), self.mode):
                # An earlier attempt of this trial already uploaded a checkpoint at least as good.
                self._uploaded_signature = best.signature
                return
            copy = self.snapshot(BEST_CHECKPOINT, best.signature)
            if copy is None:
                return  # rewritten since that epoch: the next epoch's message carries the new version
            key = layout.checkpoint_key(self.sweep, self.trial, best.epoch, uuid.uuid4().hex[:8])
            info = self.store.upload_file(copy, key, if_generation_match=0)
            self.report.uploaded.append(key)
            self._point_to(key, best, info.to_dict())
            self._uploaded_signature = best.signature
            # Debug: one line per improvement would interleave with the job's progress bar.
            log.debug("Best checkpoint (epoch %d, %s %.4f) uploaded to %s/%s",
                      best.epoch, self.metric, best.value, self.store.uri, key)
        except (StorageError, OSError) as error:
            self.fail(f"checkpoint of epoch {best.epoch} to {self.trial_uri}", error)
        finally:
            if copy is not None:
                copy.unlink(missing_ok=True)

    def _point_to(self, key: str, best: BestCheckpoint, checkpoint: dict) -> None:
        """Move the trial's best.json to the stored checkpoint `key` unless a better record was written meanwhile;
        then delete the checkpoint that lost (this one, or the trial's own one the pointer named before)."""
        pointer_key = layout.trial_key(self.sweep, self.trial, layout.POINTER)
        record = {
            "sweep": self.sweep,
            "trial": self.trial,
            "metric": self.metric,
            "mode": self.mode,
            "value": best.value,
            "epoch": best.epoch,
            "checkpoint": checkpoint,
            "uploaded_at": time.time(),
        }
        # The pointer moves only after the checkpoint is completely stored and verified.
        written, previous = replace_if_better(self.store, pointer_key, record)
        if not written:
            self.store.delete(key)  # lost to a better record written meanwhile
            return
        self.report.uploaded.append(pointer_key)
        self.report.checkpoint = record
        old = (previous or {}).get("checkpoint", {}).get("key")
        if old and old != key and old.startswith(layout.trial_key(self.sweep, self.trial, layout.CHECKPOINTS)):
            self.store.delete(old)

    def sync_files(self, final: bool) -> None:
        """Upload the job files changed since their last upload: the resolved config, the TensorBoard event
        files and, when `final`, metrics.json."""
        candidates: list[Path] = [Path(RESOLVED_CONFIG)]
        if final:
            candidates.append(Path(METRICS))
        tensorboard = self.job_dir / TENSORBOARD
        if tensorboard.is_dir():
            candidates += sorted(p.relative_to(self.job_dir) for p in tensorboard.rglob("*") if p.is_file())
        for relative in candidates:
            self._sync_file(relative)

    def _sync_file(self, relative: Path) -> None:
        try:
            stat = os.stat(self.job_dir / relative)
        except FileNotFoundError:
            return
        signature = (stat.st_mtime_ns, stat.st_size)
        name = relative.as_posix()
        if self._synced.get(name) == signature:
            return
        copy = None
        try:
            copy = self.snapshot(relative)
            if copy is None:
                return  # being written right now: next sync
            key = layout.trial_key(self.sweep, self.trial, *relative.parts)
            self.store.upload_file(copy, key)
            self._synced[name] = signature
            self.report.uploaded.append(key)
        except (StorageError, OSError) as error:
            self.fail(f"{name} to {self.trial_uri}", error)
        finally:
            if copy is not None:
                copy.unlink(missing_ok=True)
