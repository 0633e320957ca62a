"""Keep TensorFlow's start-up chatter off a person's console.

TensorFlow's C++ code logs through absl before absl is initialised, and those lines ignore
TF_CPP_MIN_LOG_LEVEL (measured with TF 2.21: levels 2 and 3, ABSL_MIN_LOG_LEVEL and GLOG_minloglevel all
leave them): "oneDNN custom operations are on", "Could not find cuda drivers", and on a machine without a
GPU `E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)`, which reads as a failure. This routes the
process's stderr (file descriptor 2, where C++ writes) through a filter that drops exactly those lines
and passes everything else on unchanged. Trial processes of a sweep write to their own trial.log and keep
every line.

    from trainers.console import hide_tensorflow_startup_lines
    hide_tensorflow_startup_lines()   # before TensorFlow is imported
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl's format: severity letter, MMDD, time, thread id, file:line] message. Info and warnings of start-up
# are dropped; an error only when it is the probe for a GPU driver that a CPU machine does not have.
_ABSL_LINE = re.compile(rb"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] ")
_NO_GPU_ERROR = re.compile(rb"^E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] ")
_NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    # The second line of cpu_feature_guard's message ("This TensorFlow binary is optimized to use ...").
    b"To enable the following instructions:",
)

_installed = False


def is_startup_noise(line: bytes) -> bool:
    return bool(_ABSL_LINE.match(line) or _NO_GPU_ERROR.match(line)) or line.startswith(_NOISE)


def hide_tensorflow_startup_lines() -> None:
    """Filter this process's stderr from now on (idempotent; a no-op where fd 2 cannot be replaced)."""
    global _installed
    if _installed:
        return
    try:
        sys.stderr.flush()
        console = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return
    _installed = True

    def forward() -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not is_startup_noise(line))
                if kept:
                    os.write(console, kept)
        if pending and not is_startup_noise(pending):
            os.write(console, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        # Every line written so far reaches the console before the process ends.
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(console, 2)  # closes the pipe's last write end: the thread reads to the end and stops
        thread.join(timeout=5)

    atexit.register(restore)
