"""A trial's resumable state in the store, so a trial retried on another node (which has a disk of its
own) continues from its last finished epoch (or the step within an epoch its newest state was saved at:
trainer.save_every_steps, SIGTERM) instead of epoch 0.

    staged = stage_state(job_dir)                       # training thread, after each epoch: hard links, no copy
    record = upload_state(store, sweep, trial, sweep_id, staged)   # upload thread
    outcome = restore_state(store, sweep, trial, sweep_id, job_dir)  # before training: local or the store's

In the store, each state is an immutable folder `trials/<trial>/state/e<epoch>-<id>/` (last.keras,
progress.json; <epoch>: the epochs completed); `trials/<trial>/state.json` points at the newest complete one
(its `epoch` and, saved within an epoch, `step`: the steps done of the next epoch) and the one before it,
and moves by compare-and-swap only after both files are stored and verified. Older folders are then
deleted. Restoring takes the job folder's own state when it is at least as new, else the store's,
checked against the checksums recorded at upload and against progress.json's own record of the model
file; a damaged one falls back to the state before it, then to a fresh start, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cluster.results import layout
from cluster.store.base import Store
from cluster.store.errors import PreconditionFailed, StorageError
from cluster.store.pointers import read_json
from trainers.job_files import (
    BEST_CHECKPOINT,
    PREVIOUS_STATE,
    PROGRESS,
    STATE,
    STATE_MODEL,
    UNREADABLE,
    Progress,
    check_state,
    newest_usable_state,
)

log = logging.getLogger(__name__)

STATE_FILES = (STATE_MODEL, PROGRESS)
# Beside the job's state/: hard links to the files of states waiting for upload.
STAGING = ".state-upload"
DOWNLOADING = "state.download"


@dataclass
class StagedState:
    epoch: int
    folder: Path  # holds links to the state's files, removed once uploaded or superseded
    signature: tuple  # progress.json's (mtime_ns, size): tells a re-staged unchanged state apart
    step: int = 0  # saved within epoch `epoch + 1`, after this many of its steps

    def describe(self) -> str:
        return describe_position(self.epoch, self.step)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def describe_position(epoch: int, step: int = 0) -> str:
    """A state's place in training, as logs name it: "epoch 3", or "step 40 of epoch 4" within an epoch."""
    return f"step {step} of epoch {epoch + 1}" if step else f"epoch {epoch}"


def stage_state(job_dir: Path) -> Optional[StagedState]:
    """Freeze the job's current state for upload. The trainer replaces state/ by renaming a new folder
    in, never by rewriting its files, so hard links keep this epoch's version intact while training goes
    on. Cheap enough for the training thread (two links and a small JSON read)."""
    state_dir = Path(job_dir) / STATE
    try:
        stat = os.stat(state_dir / PROGRESS)
        epoch, step = Progress.read(state_dir).position
        folder = Path(job_dir) / STAGING / uuid.uuid4().hex
        folder.mkdir(parents=True)
        for name in STATE_FILES:
            try:
                os.link(state_dir / name, folder / name)
            except OSError:  # a filesystem without hard links
                shutil.copyfile(state_dir / name, folder / name)
    except UNREADABLE:
        return None
    return StagedState(epoch, folder, (stat.st_mtime_ns, stat.st_size), step)


def _entry(record: Optional[dict]) -> Optional[dict]:
    """A pointer's state without its `previous` link."""
    return None if record is None else {key: value for key, value in record.items() if key != "previous"}


def _position(entry: dict) -> tuple[int, int]:
    """(epochs completed, steps into the next epoch) of a pointer's state (pointers before steps: 0)."""
    return int(entry.get("epoch", 0)), int(entry.get("step", 0))


def upload_state(store: Store, sweep: str, trial: str, sweep_id: str, staged: StagedState) -> Optional[dict]:
    """Upload a staged state and move the trial's state pointer to it; returns the pointer written, or
    None when the store already holds a newer state of this trial (a late attempt). Raises StorageError."""
    pointer_key = layout.trial_key(sweep, trial, layout.STATE_POINTER)
    current, generation = read_json(store, pointer_key)
    if current is not None and current.get("sweep_id") != sweep_id:
        raise StorageError(f"{store.uri}/{pointer_key} belongs to another sweep ({current.get('sweep_id')}); "
                           f"not replacing it.")
    if current is not None and _position(current) > (staged.epoch, staged.step):
        return None
    progress = Progress.read(staged.folder)
    folder = layout.state_folder_key(sweep, trial, staged.epoch, uuid.uuid4().hex[:8])
    files = {}
    for name in STATE_FILES:
        info = store.upload_file(staged.folder / name, f"{folder}/{name}", if_generation_match=0)
        files[name] = info.to_dict()
    record = {
        "sweep_id": sweep_id,
        "trial": trial,
        "epoch": staged.epoch,
        **({"step": staged.step} if staged.step else {}),
        "finished": progress.finished,
        "stage": progress.stages[-1].name if progress.stages else None,
        "folder": folder,
        "files": files,
        "uploaded_at": time.time(),
        "previous": _entry(current),
    }
    try:
        store.write_bytes(pointer_key, json.dumps(record, indent=1).encode(), if_generation_match=generation)
    except PreconditionFailed:
        # Another attempt of this trial moved the pointer meanwhile: its state stands, ours goes.
        _delete_folder(store, folder)
        return None
    _prune(store, sweep, trial, keep={folder, (current or {}).get("folder")})
    return record


def _delete_folder(store: Store, folder: str) -> None:
    for info in store.list(folder + "/"):
        store.delete(info.key)


def _prune(store: Store, sweep: str, trial: str, keep: set) -> None:
    """Delete state folders the pointer no longer names (failures only leave garbage behind)."""
    prefix = layout.trial_key(sweep, trial, layout.STATES) + "/"
    try:
        for info in store.list(prefix):
            if info.key.rsplit("/", 1)[0] not in keep:
                store.delete(info.key)
    except StorageError as error:
        log.info("Old states under %s/%s not deleted yet: %s", store.uri, prefix, error)


@dataclass
class RestoreOutcome:
    source: str  # "local", "store" or "none"
    epoch: int
    where: str
    warnings: list
    step: int = 0  # a state saved within epoch `epoch + 1`, after this many of its steps

    def describe(self) -> str:
        if self.source == "none":
            return "no earlier state: starting at epoch 0"
        if self.step:
            return (f"resuming after epoch {self.epoch}, at step {self.step} of epoch {self.epoch + 1}, "
                    f"from {self.where}")
        return f"resuming after epoch {self.epoch} from {self.where}"


def _download_entry(store: Store, entry: dict, target: Path) -> Optional[str]:
    """Download one state of the pointer into `target`; None when complete and intact, else the problem."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        for name in STATE_FILES:
            recorded = entry["files"][name]
            info = store.download_file(recorded["key"], target / name)
            if (info.size, info.crc32c) != (recorded["size"], recorded["crc32c"]):
                return (f"{store.uri}/{recorded['key']} is not the object uploaded with this state "
                        f"({info.size} bytes, crc32c {info.crc32c}; recorded {recorded['size']}, {recorded['crc32c']})")
    except (StorageError, KeyError, TypeError) as error:
        return f"{type(error).__name__}: {error}"
    checked = check_state(target)
    return checked.problem if not checked.usable else None


def _restore_best_checkpoint(store: Store, sweep: str, trial: str, job_dir: Path) -> Optional[str]:
    """The trial's best checkpoint from the store, where the restored state's best epoch was saved."""
    pointer, _ = read_json(store, layout.trial_key(sweep, trial, layout.POINTER))
    if not pointer:
        return None
    checkpoint = pointer["checkpoint"]
    target = Path(job_dir) / BEST_CHECKPOINT
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".download")
    info = store.download_file(checkpoint["key"], staging)
    if info.crc32c != checkpoint["crc32c"]:
        staging.unlink(missing_ok=True)
        raise StorageError(f"{store.uri}/{checkpoint['key']} does not match the checksum recorded at upload.")
    os.replace(staging, target)
    return checkpoint["key"]


def restore_state(store: Store, sweep: str, trial: str, sweep_id: str, job_dir: Path) -> RestoreOutcome:
    """Make the job folder hold the newest complete state of this trial, local or from the store.
    Never raises for a bad or unreachable state: the job then resumes from what it has (or from 0)."""
    job_dir = Path(job_dir)
    warnings: list[str] = []
    local = newest_usable_state(job_dir)
    local_position = local.position if local else (-1, 0)
    try:
        pointer, _ = read_json(store, layout.trial_key(sweep, trial, layout.STATE_POINTER))
    except StorageError as error:
        pointer = None
        warnings.append(f"the store's state of this trial could not be read ({error}); "
                        f"resuming from the local one if any")
    if pointer is not None and pointer.get("sweep_id") != sweep_id:
        warnings.append(f"{store.uri}/{layout.trial_key(sweep, trial, layout.STATE_POINTER)} "
                        f"belongs to another sweep; ignored")
        pointer = None
    for entry in (_entry(pointer), (pointer or {}).get("previous")):
        if not entry or _position(entry) <= local_position:
            continue  # local first when it is at least as new: nothing to download
        download = job_dir / DOWNLOADING
        problem = _download_entry(store, entry, download)
        if problem:
            warnings.append(f"state of epoch {entry['epoch']} in {store.uri}/{entry['folder']} is unusable: {problem}")
            shutil.rmtree(download, ignore_errors=True)
            continue
        state_dir, previous = job_dir / STATE, job_dir / PREVIOUS_STATE
        if check_state(state_dir).usable:  # the local state becomes the one to fall back on
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(state_dir, previous)
        else:  # absent or damaged
            shutil.rmtree(state_dir, ignore_errors=True)
        os.replace(download, state_dir)
        try:
            _restore_best_checkpoint(store, sweep, trial, job_dir)
        except (StorageError, KeyError, TypeError) as error:
            warnings.append(f"the best checkpoint could not be restored ({error}); "
                            f"the next better epoch saves a new one")
        epoch, step = _position(entry)
        outcome = RestoreOutcome("store", epoch, f"{store.uri}/{entry['folder']}", warnings, step)
        return _logged(outcome, job_dir)
    if local is not None:
        epoch, step = local.position
        return _logged(RestoreOutcome("local", epoch, str(local.folder), warnings, step), job_dir)
    return _logged(RestoreOutcome("none", 0, "", warnings), job_dir)


def _logged(outcome: RestoreOutcome, job_dir: Path) -> RestoreOutcome:
    for warning in outcome.warnings:
        log.warning("Restoring %s: %s", job_dir, warning)
    return outcome
