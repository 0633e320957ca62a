"""A job asked to stop (SIGTERM: a spot VM's preemption, a node's shutdown) saves its state at the next
training step's end and stops, so its rerun continues from that step rather than from the epoch's start.

GCE gives a preempted VM about 30 s after the shutdown signal. While `train` trains (`stop_on_sigterm`):
- in the process's main thread (`python launch.py`), a SIGTERM handler asks training to stop;
- in another thread (a Ray Tune trial: Ray's worker exits its main thread on SIGTERM, and Tune ends a trial's
  process the same way), the process's exit asks training to stop and waits (at most EXIT_WAIT_SECONDS) until
  it has saved, before the rest of the exit (h5py's own exit handler, after which no .keras file can be written).
The training loop (trainers/callbacks.py StepState) sees the request at the next step's end, saves state/ (the
step within the epoch included) and raises `Preempted`; the caller then exits with PREEMPTED_EXIT_STATUS.
Anyone may also call `request_stop`.

The request is the process's: once asked, every job training in it stops (`clear_stop_request` is for tests).
Imports nothing heavy.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from typing import Iterator, Optional

log = logging.getLogger("trainers.job")

# EX_TEMPFAIL: "temporary failure, try again". Stopped on request with its state saved: a rerun continues.
PREEMPTED_EXIT_STATUS = 75
# A process exiting while a thread of it trains waits at most this long for the training to save and stop.
EXIT_WAIT_SECONDS = 60.0

_requested = threading.Event()
_reason: Optional[str] = None


class Preempted(Exception):
    """Training stopped on request after saving its state; a rerun in the same folder continues from it."""

    def __init__(self, reason: str, position: str, state_dir: str):
        super().__init__(f"stopped ({reason}) after {position}; its state is saved in {state_dir}: "
                         f"a rerun continues from there")
        self.reason, self.position, self.state_dir = reason, position, state_dir


def request_stop(reason: str = "asked to stop") -> None:
    """Ask the training in this process to save and stop at its next step's end. Safe from any thread and
    from a signal handler."""
    global _reason
    if not _requested.is_set():
        _reason = reason
        _requested.set()


def stop_requested() -> Optional[str]:
    """Why the process was asked to stop, or None."""
    return _reason if _requested.is_set() else None


def clear_stop_request() -> None:
    global _reason
    _requested.clear()
    _reason = None


def _on_sigterm(signum, frame) -> None:
    request_stop("SIGTERM")
    # A log line here could deadlock on the logging lock the interrupted code holds: os.write is safe.
    os.write(2, b"[raylaunch] SIGTERM: saving the training state at the next step's end, then stopping\n")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[str]:
    """While inside: SIGTERM asks training to stop (the handler before is restored on leaving); outside the main
    thread, where no handler can be installed, the process's exit does (see the module doc). Enter it once Keras
    is imported (it imports h5py, whose exit handler must run after this one). Yields which: "signal" or "exit"."""
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            yield "signal"
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    stopped = threading.Event()

    def on_exit() -> None:
        request_stop("the process is exiting")
        if not stopped.wait(EXIT_WAIT_SECONDS):
            os.write(2, b"[raylaunch] training did not stop and save in time before the process exited\n")

    atexit.register(on_exit)
    try:
        yield "exit"
    finally:
        stopped.set()
        atexit.unregister(on_exit)
