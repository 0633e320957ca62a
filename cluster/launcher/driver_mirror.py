"""Keeps a sweep's driver state (driver_state.py: what, and where in the store) current in the store while the
sweep runs: DriverMirror looks at the sweep folder every PERIOD_S, copies each file whose bytes changed and
deletes in the store what is gone from the folder.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

from cluster.launcher.driver_state import (
    FILES,
    PERIOD_S,
    RECORD,
    DriverState,
    _crc32c,
    _left_out,
    _signature,
)
from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.sweep_folder import EXPERIMENT, SPEC_FILE

log = logging.getLogger("cluster.launcher.driver_state")


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
