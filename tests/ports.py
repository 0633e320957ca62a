"""The one place a test gets a port for a server it starts (the GCS emulator, Ray's nodes and dashboard,
TensorBoard, http servers) or for an address where nothing may answer.

    from tests import ports
    ports.port()             # one port, never handed out before in this process
    ports.port_range(40)     # (low, high): a run of consecutive ports, e.g. a Ray node's worker ports

Three rules keep two servers off the same port:
- A port is handed out once per process (remembered, never reused, even after its server stopped).
- Ports come from outside the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, usually
  32768-60999) and outside Ray's own defaults (6379, 8265, 10001, workers 10002-19999, 52365): whatever binds
  port 0 meanwhile (Ray's raylets, agents and GCS, any client socket) cannot be given one of them by the kernel.
- Ports are leased in blocks of BLOCK, each held with an flock on a file under the temp dir for the life of
  the process: two test sessions on this machine (another checkout, a second pytest, bench/ scripts) never
  lease the same block. A lock dies with its process, so nothing is left to clean up.
Each port is also checked free (bindable on every interface) before it is handed out.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

BLOCK = 64  # ports per leased block; also the longest run port_range() gives
# Ports Ray takes by default, whatever its start-up picks at random from the ephemeral range.
RAY_DEFAULTS = [(6379, 6379), (8265, 8265), (10001, 19999), (52365, 52365)]
POOL = (20000, 32767)  # below Linux's default ephemeral range, above Ray's worker ports
LOCK_DIR = Path(tempfile.gettempdir()) / "raylaunch-test-ports"

_lock = threading.Lock()
_handed: set[int] = set()
_leased: list[int] = []  # first port of each block this process holds
_lock_files: list[int] = []  # their lock files' descriptors, open (locked) until the process ends


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _blocks() -> list[int]:
    """First port of every block that lies wholly inside the pool, outside the ephemeral range and Ray's."""
    excluded = [_ephemeral_range(), *RAY_DEFAULTS]
    low, high = POOL
    starts = range(low, high - BLOCK + 2, BLOCK)
    usable = [start for start in starts
              if not any(start <= end and first <= start + BLOCK - 1 for first, end in excluded)]
    if not usable:  # an unusual ephemeral range covering the pool: any block outside it and Ray's
        usable = [start for start in range(1024, 65536 - BLOCK + 1, BLOCK)
                  if not any(start <= end and first <= start + BLOCK - 1 for first, end in excluded)]
    return usable


def _lease() -> int:
    """Lock a block no other process holds; its first port."""
    LOCK_DIR.mkdir(exist_ok=True)
    try:
        os.chmod(LOCK_DIR, 0o1777)  # shared by every user's test sessions
    except PermissionError:
        pass  # someone else's folder, already shared
    candidates = [start for start in _blocks() if start not in _leased]
    random.SystemRandom().shuffle(candidates)  # concurrent sessions rarely try the same block first
    for start in candidates:
        try:
            fd = os.open(LOCK_DIR / f"{start}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue  # another process holds it
            raise
        _lock_files.append(fd)
        _leased.append(start)
        return start
    raise RuntimeError(f"no free block of {BLOCK} test ports left (locks under {LOCK_DIR})")


def _bindable(port: int) -> bool:
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def port_range(size: int) -> tuple[int, int]:
    """`size` consecutive free ports never handed out before in this process: (first, last)."""
    if not 1 <= size <= BLOCK:
        raise ValueError(f"a port range is 1 to {BLOCK} ports, not {size}")
    with _lock:
        while True:
            for start in _leased:
                run: list[int] = []
                for candidate in range(start, start + BLOCK):
                    if candidate in _handed or not _bindable(candidate):
                        run = []
                        continue
                    run.append(candidate)
                    if len(run) == size:
                        _handed.update(run)
                        return run[0], run[-1]
            _lease()


def port() -> int:
    """One free port, never handed out before in this process."""
    return port_range(1)[0]
