"""The sweep driver's own state, kept in the sweep's store as well as in its folder, so that a sweep outlives
the machine its driver runs on (a KubeRay head pod evicted, a VM replaced: the folder goes with its disk).

    <store>/<sweep>/driver/driver.json          the command line, the folder, the claim's id; written at start
    <store>/<sweep>/driver/sweep_spec.json      \\
    <store>/<sweep>/driver/job_numbers.jsonl     |  copies of the same files in <sweep dir>, kept current while
    <store>/<sweep>/driver/sweep_ended.json      |  the sweep runs (DriverMirror)
    <store>/<sweep>/driver/tune/...             /   Tune's experiment: trials, searcher and scheduler state

The driver's folder stays where Tune works: a thread (driver_mirror.py) copies what changed in it to the store
every few seconds (only what changed: Tune's snapshot of the experiment every ~10 s, the searcher's state, the log
files of the trials that reported since), and what Tune has deleted is deleted there. Population-based
training's checkpoints (`tune/*/checkpoint_*`) stay out: they are copies of job states the trials keep in
the store themselves.

A sweep whose folder has no state of its own (a new machine, a deleted folder) and whose store holds the
driver state of the same sweep (the same spec: the same jobs, or the same search) is restored from the
store before anything else (restore_driver_state): the folder gets the files above and the claim on the
sweep's name (cluster.store.ownership.adopt_claim, proved through the store), and the sweep then resumes
as from its own folder. Any other command under the same name is refused, as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cluster.launcher.job_configs import SweepRefused
from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.sweep_folder import ENDED_FILE, EXPERIMENT, OLD_SPEC_FILE, SPEC_FILE, in_ray_package_cache

log = logging.getLogger(__name__)

RECORD = "driver.json"
# Files of the sweep folder kept in the store, besides Tune's experiment folder.
FILES = (SPEC_FILE, JobNumbers.LEDGER, ENDED_FILE)
# Seconds between two looks at the folder (a look that finds nothing changed costs a few stat calls).
PERIOD_S = 2.0
# The store's own bounds for one object, for the driver's copies (they are retried at the next look).
REQUEST_TIMEOUT_S = 30.0
RETRY_DEADLINE_S = 60.0


def _left_out(name: str) -> bool:
    """A file or folder in Tune's experiment folder that is not kept in the store: PBT's checkpoints, files
    being written."""
    return name.startswith(("checkpoint_", ".tmp")) or name.endswith((".lock", ".tmp"))


def _mirrored(relative: str) -> bool:
    """Whether a file of the sweep folder (a path relative to it, '/'-separated) is kept in the store."""
    parts = relative.split("/")
    if len(parts) == 1:
        return relative in FILES
    return parts[0] == EXPERIMENT and not any(map(_left_out, parts[1:]))


def _signature(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


def _crc32c(data: bytes) -> str:
    from cluster.store.base import checksum_bytes

    return checksum_bytes(data).crc32c


def store_of(uris: set, base_dir: Optional[str] = None):
    """The store every job names, opened for the driver's copies; None when there is none (or not one: the
    results' keeper then refuses the sweep)."""
    from cluster.store import open_store

    if len(uris) != 1:
        return None
    uri = next(iter(uris))
    if uri is None:
        return None
    relative = "://" not in str(uri) and not os.path.isabs(str(uri))
    if relative and in_ray_package_cache(Path.cwd()):
        return None  # refused by the results' keeper (sweep_results.open_results)
    return open_store(str(uri), base_dir=base_dir or os.getcwd(), request_timeout=REQUEST_TIMEOUT_S,
                      retry_deadline=RETRY_DEADLINE_S)


def _has_state(sweep_dir: Path) -> bool:
    return any((sweep_dir / name).is_file() for name in (SPEC_FILE, OLD_SPEC_FILE))


@dataclass
class DriverState:
    """A sweep's driver state in its store: where, and what this driver restored from it."""

    store: object  # cluster.store.Store
    sweep: str
    sweep_dir: Path
    given: str  # the store as the jobs name it (a folder may be relative to the working directory)
    record: Optional[dict] = None  # the driver record this folder was restored from, if it was
    # The files restored: relative path -> (size, mtime_ns) of the local copy, crc32c of its bytes.
    restored: dict = field(default_factory=dict)

    def key(self, relative: str = "") -> str:
        from cluster.store.layout import driver_key

        return driver_key(self.sweep, *[part for part in relative.split("/") if part])

    @property
    def uri(self) -> str:
        """The driver state's folder in the store."""
        return f"{self.store.uri}/{self.key()}"

    @property
    def sweep_uri(self) -> str:
        return f"{self.store.uri}/{self.sweep}"

    def read_record(self) -> Optional[dict]:
        from cluster.store.pointers import read_json

        record, _ = read_json(self.store, self.key(RECORD))
        return record


def restore_driver_state(uris: set, sweep_dir: Path, spec_record: dict) -> Optional[DriverState]:
    """Before the sweep claims its name: when `sweep_dir` holds no sweep and the store holds the driver state of
    this same sweep (the same spec record, under the claim owner.json holds), copy that state into `sweep_dir`
    and adopt the claim, so that the sweep resumes. Returns the sweep's DriverState (None without a store).
    Raises SweepRefused when the store cannot be read."""
    from cluster.store import StorageError
    from cluster.store.layout import sweep_name_of

    try:
        store = store_of(uris)
        if store is None:
            return None
        state = DriverState(store, sweep_name_of(sweep_dir), Path(sweep_dir), str(next(iter(uris))))
        if not _has_state(state.sweep_dir):
            _restore(state, spec_record)
        else:
            _refuse_an_older_copy(state, spec_record)
    except StorageError as error:
        raise SweepRefused(f"Storage error, so no job of this sweep was started: {error}") from error
    return state


def _refuse_an_older_copy(state: DriverState, spec_record: dict) -> None:
    """A folder that holds this sweep, while the store says its driver ran since in another folder (a resume
    elsewhere): this copy's Tune state is older than the store's, and the sweep is not driven from it. Compared by
    the other driver's start against this folder's newest file (the two machines' clocks are assumed within
    minutes)."""
    from cluster.store.pointers import read_json

    record = state.read_record()
    if record is None or (record.get("sweep_dir"), record.get("host")) == (str(state.sweep_dir),
                                                                          socket.gethostname()):
        return
    spec, _ = read_json(state.store, state.key(SPEC_FILE))
    if spec != spec_record:
        return  # another sweep's state under this name: the claim decides
    newest = max((path.stat().st_mtime for path in state.sweep_dir.rglob("*") if path.is_file()), default=0.0)
    started = float(record.get("started_at") or 0.0)
    if started > newest:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        app = f"python {record.get('script') or Path(sys.argv[0]).name}"
        raise SweepRefused(
            f"{state.sweep_dir} holds an older copy of sweep {state.sweep}: its driver ran since in "
            f"{record.get('sweep_dir')} on {record.get('host')} (started {when}), and {state.uri} holds that newer "
            f"state. Resume it from the store in another folder: `{app} resume {state.sweep_uri} --dir "
            f"ELSEWHERE/{state.sweep}`; or move {state.sweep_dir} away and run the same command again. No job of "
            "this sweep was started.")


def _restore(state: DriverState, spec_record: dict) -> None:
    from cluster.store.ownership import adopt_claim, owner_of
    from cluster.store.pointers import read_json

    spec, _ = read_json(state.store, state.key(SPEC_FILE))
    if spec is None or spec != spec_record:
        return  # nothing of this sweep there: a new sweep (or another one under this name, which the claim refuses)
    record = state.read_record()
    owner = owner_of(state.store, state.sweep)
    if record is None or owner is None or owner.get("sweep_id") != record.get("sweep_id"):
        log.warning("%s holds this sweep's spec but not the driver record of the sweep that claimed the name; "
                    "the sweep is not restored from it", state.uri)
        return
    started = time.monotonic()
    prefix = state.key() + "/"
    objects = [info for info in state.store.list(prefix) if info.key != prefix + RECORD]
    # All or nothing: the files land in a staging folder, moved into place once every one arrived, the spec last
    # (a folder with a spec and no experiment would look like a sweep that never started).
    staging = state.sweep_dir / f".driver-restore-{uuid.uuid4().hex[:8]}"
    try:
        for info in objects:
            relative = info.key[len(prefix):]
            if not _mirrored(relative):
                continue
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            state.store.download_file(info.key, target)
        names = sorted((path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file()),
                       key=lambda name: name == SPEC_FILE)
        for relative in names:
            target = state.sweep_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, target)
            state.restored[relative] = (_signature(target.stat()), _crc32c(target.read_bytes()))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    adopt_claim(state.store, state.sweep, state.sweep_dir, owner["sweep_id"])
    state.record = record
    size = sum(info.size for info in objects)
    print(f"Restored this sweep's driver state from {state.uri} ({len(state.restored)} files, {size / 1024:.0f} KiB "
          f"in {time.monotonic() - started:.1f} s; it last ran in {record.get('sweep_dir')} on "
          f"{record.get('host')}): finished trials are kept, unfinished ones continue", flush=True)


def resume_folder(sweep_dir: Path, cluster_dir: str) -> str:
    """Where a resume elsewhere puts this sweep's folder, relative to its working directory: the same path
    below it as this folder has below this driver's working directory (or below `cluster_dir`, for a
    sweep that runs as a Ray job), else the folder's last parts that make the sweep's name."""
    from cluster.store.layout import sweep_name_of

    sweep_dir = Path(sweep_dir).absolute()
    for root in (Path.cwd(), Path(cluster_dir).expanduser().absolute()):
        if sweep_dir.is_relative_to(root) and sweep_dir != root:
            return sweep_dir.relative_to(root).as_posix()
    two = Path(*sweep_dir.parts[-2:])
    return two.as_posix() if sweep_name_of(two) != sweep_name_of(Path(sweep_dir.name)) else sweep_dir.name


def driver_record(state: DriverState, sweep_id: Optional[str], cluster_dir: str) -> dict:
    """What a resume from anywhere needs to run this sweep again: its command line as this process received
    it, where its folder goes below a working directory, and the id that claimed its name."""
    sweep_dir = state.sweep_dir
    return {
        "sweep": state.sweep,
        "argv": list(sys.argv[1:]),
        "store": str(state.store.uri),
        "storage": state.given,
        "script": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None,
        "sweep_dir": str(sweep_dir),
        "resume_folder": resume_folder(sweep_dir, cluster_dir),
        "cwd": os.getcwd(),
        "sweep_id": sweep_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": time.time(),
        # Every folder the sweep's driver ran in, the first one first.
        "folders": [*(state.record or {}).get("folders", []), str(sweep_dir)],
    }
