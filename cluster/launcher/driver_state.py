"""The sweep driver's own state, kept in the sweep's store as well as in its folder, so that a sweep outlives
the machine its driver runs on (a KubeRay head pod evicted, a VM replaced: the folder goes with its disk).

    <store>/<sweep>/driver/driver.json          the command line, the folder, the claim's id; written at start
    <store>/<sweep>/driver/sweep_spec.json      \\
    <store>/<sweep>/driver/job_numbers.jsonl     |  copies of the same files in <sweep dir>, kept current while
    <store>/<sweep>/driver/sweep_ended.json      |  the sweep runs (DriverMirror)
    <store>/<sweep>/driver/tune/...             /   Tune's experiment: trials, searcher and scheduler state

The driver's folder stays where Tune works: a thread copies what changed in it to the store every few
seconds (only what changed: Tune's snapshot of the experiment every ~10 s, the searcher's state, the log files
of the trials that reported since), and what Tune has deleted is deleted there. Population-based
training's checkpoints (`tune/*/checkpoint_*`) stay out: they are copies of job states the trials keep in
the store themselves.

A sweep whose folder has no state of its own (a new machine, a deleted folder) and whose store holds the
driver state of the same sweep (the same spec: the same jobs, or the same search) is restored from the
store before anything else (restore_driver_state): the folder gets the files above and the claim on the
sweep's name (cluster.store.ownership.adopt_claim, proved through the store), and the sweep then resumes
as from its own folder. Any other command under the same name is refused, as before.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import threading
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


def local_files(sweep_dir: Path) -> dict[str, os.stat_result]:
    """The sweep folder's files kept in the store, by relative path."""
    found = {name: (sweep_dir / name).stat() for name in FILES if (sweep_dir / name).is_file()}
    for folder, dirs, files in os.walk(sweep_dir / EXPERIMENT):
        relative_folder = Path(folder).relative_to(sweep_dir).as_posix()
        dirs[:] = [name for name in dirs if not _left_out(name)]
        for name in files:
            if not _left_out(name):
                try:
                    found[f"{relative_folder}/{name}"] = os.stat(os.path.join(folder, name))
                except FileNotFoundError:
                    continue
    return found


def _signature(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


def _complete(relative: str, data: bytes) -> bool:
    """Whether a file read while Tune may be writing it is whole. Tune rewrites its state files (in one go,
    every ~10 s; some are pickles whatever their name) and appends a line per report to a trial's result.json
    and progress.csv."""
    name = relative.rsplit("/", 1)[-1]
    if not data:
        return True
    if data[:1] == b"\x80":  # a pickle (protocol 2 and later): its last opcode is STOP
        return data.endswith(b".")
    if name in ("result.json", "progress.csv") or name.endswith(".jsonl"):
        return data.endswith(b"\n")
    if name.endswith(".json"):
        try:
            json.loads(data)
        except ValueError:
            return False
    return True


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
    except StorageError as error:
        raise SweepRefused(f"Storage error, so no job of this sweep was started: {error}") from error
    return state


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


class DriverMirror:
    """Keeps the sweep folder's driver state in the store while the sweep runs (see the module's docstring):
    a thread looks every PERIOD_S and copies each file whose bytes changed (Tune rewrites every file of its
    experiment folder at each snapshot, most of them unchanged) and deletes what is gone. A file read while it
    is being written is copied at the next look. Errors are logged and the copy retried at the next look: the
    store being down never stops the sweep.

        mirror = DriverMirror(state, record).start()
        ... tuner.fit() ...
        mirror.close()          # a last copy of everything, then the thread ends
    """

    def __init__(self, state: DriverState, record: dict, period_s: float = PERIOD_S):
        self.state, self.record, self.period_s = state, record, period_s
        # relative path -> the local file's (size, mtime_ns) at the last look, and the crc32c of what the store has
        self.seen: dict[str, tuple[int, int]] = {name: signature for name, (signature, _) in state.restored.items()}
        self.stored: dict[str, Optional[str]] = {name: crc32c for name, (_, crc32c) in state.restored.items()}
        self._wake, self._stop = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._record_written = False
        self._failing = False
        # What the copies cost, for the log line at the end.
        self.num_looks = self.num_uploads = self.num_bytes = 0
        self.seconds = 0.0

    def start(self) -> "DriverMirror":
        from cluster.store import StorageError

        prefix = self.state.key() + "/"
        try:
            for info in self.state.store.list(prefix):  # a previous driver's copies: kept if the same, else replaced
                relative = info.key[len(prefix):]
                if relative != RECORD:
                    self.stored.setdefault(relative, info.crc32c)
        except StorageError as error:
            log.warning("The driver state in %s could not be listed: %s", self.state.uri, error)
        JobNumbers.on_given(self.state.sweep_dir, self.wake)
        self.sync()
        self._thread = threading.Thread(target=self._run, name="driver-state-mirror", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look now rather than at the next period (a job number was just given)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.period_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.sync()

    def sync(self) -> int:
        """One look: copy each file whose bytes changed, delete what is gone. Returns the number of files left
        to copy (being written, or failed)."""
        from cluster.store import StorageError

        with self._lock:
            started, pending, uploaded, size = time.monotonic(), 0, 0, 0
            try:
                if not self._record_written:
                    self.state.store.write_bytes(self.state.key(RECORD), json.dumps(self.record, indent=1).encode())
                    self._record_written = True
                found = local_files(self.state.sweep_dir)
                # The spec last: a store holding it holds the rest (what a restore looks for first).
                for relative, stat in sorted(found.items(), key=lambda item: item[0] == SPEC_FILE):
                    signature = _signature(stat)
                    if self.seen.get(relative) == signature:
                        continue
                    data = self._read_whole(relative, signature)
                    if data is None:
                        pending += 1
                        continue
                    crc32c = _crc32c(data)
                    if self.stored.get(relative) != crc32c:
                        self.state.store.write_bytes(self.state.key(relative), data)
                        self.stored[relative] = crc32c
                        uploaded, size = uploaded + 1, size + len(data)
                    self.seen[relative] = signature
                for relative in [name for name in self.stored if name not in found]:
                    self.state.store.delete(self.state.key(relative))
                    del self.stored[relative]
                    self.seen.pop(relative, None)
                if self._failing:
                    log.warning("The driver state is copied to %s again", self.state.uri)
                self._failing = False
            except (StorageError, OSError) as error:
                if not self._failing:
                    log.warning("Copying the driver state to %s failed (retried every %.0f s; the sweep goes on, but "
                                "cannot be resumed from the store past its last copy): %s", self.state.uri,
                                self.period_s, error)
                self._failing = True
                pending += 1
            elapsed = time.monotonic() - started
            self.num_looks += 1
            if uploaded:
                self.num_uploads, self.num_bytes, self.seconds = (self.num_uploads + uploaded, self.num_bytes + size,
                                                                  self.seconds + elapsed)
                log.debug("Driver state: %d files (%d bytes) copied to %s in %.3f s", uploaded, size, self.state.uri,
                          elapsed)
            return pending

    def _read_whole(self, relative: str, signature: tuple[int, int]) -> Optional[bytes]:
        """The file's bytes if they are whole and did not change while read (else None: read at the next look)."""
        path = self.state.sweep_dir / relative
        try:
            data = path.read_bytes()
            if _signature(path.stat()) != signature or len(data) != signature[0]:
                return None
        except FileNotFoundError:
            return None
        return data if _complete(relative, data) else None

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread, then copy what is left (Tune has stopped writing)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        JobNumbers.on_given(self.state.sweep_dir, None)
        deadline = time.monotonic() + timeout_s
        while self.sync() and time.monotonic() < deadline:
            time.sleep(0.5)
        log.info("Driver state kept in %s: %d files copied (%.0f KiB) in %.1f s over %d looks", self.state.uri,
                 self.num_uploads, self.num_bytes / 1024, self.seconds, self.num_looks)


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
