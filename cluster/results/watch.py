"""Watching jobs and sweeps in TensorBoard: the command to print, and `python launch.py tensorboard DIR|URI`.

Every job writes `<job dir>/tensorboard/` (an HParams session with train/ and validation/ runs), so
TensorBoard pointed at a sweep dir shows one run per trial and the HParams dashboard compares them. A
sweep in a bucket (trials on other nodes upload there) is watched through a local mirror of its event
files that is refreshed while TensorBoard runs (event_mirror.py).
Imports nothing heavy: the launcher calls `watch_line` when a sweep starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

USAGE_EXAMPLE = "python launch.py tensorboard multirun/2026-01-01/12-00-00 --port 6006"


def is_bucket(location: str) -> bool:
    return "://" in str(location) and not str(location).startswith("file://")


def tensorboard_command(log_dir: str) -> str:
    """The shell command that watches `log_dir` (a job or sweep folder, or a sweep in a bucket)."""
    if is_bucket(log_dir):
        return f"python launch.py tensorboard {shlex.quote(str(log_dir))}"
    return f"tensorboard --logdir {shlex.quote(str(log_dir))}"


def watch_line(log_dir: str) -> str:
    """The line printed when a job or sweep starts."""
    return f"Watch it: {tensorboard_command(log_dir)}   (then open http://localhost:6006, HPARAMS tab)"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python launch.py tensorboard",
        description="Start TensorBoard on a job or sweep folder (one run per trial, HParams dashboard).",
        epilog=f"Example: {USAGE_EXAMPLE}. Other TensorBoard flags after `--` are passed through.",
    )
    parser.add_argument("log_dir", help="a job or sweep folder, or a sweep (or prefix of sweeps) in a bucket: "
                                        "gs://BUCKET/PREFIX/SWEEP")
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--host", default="localhost", help="address to bind (default: localhost only)")
    parser.add_argument("--mirror", default=None, help="bucket only: local folder for the copies of the event "
                                                       "files (default: ~/.cache/raylaunch/tensorboard/...)")
    parser.add_argument("--sync-seconds", type=float, default=5.0,
                        help="bucket only: how often the mirror is refreshed")
    args, extra = parser.parse_known_args(argv)
    args.extra = [arg for arg in extra if arg != "--"]
    return args


def tensorboard_argv(args: argparse.Namespace, log_dir: str) -> list[str]:
    """The TensorBoard command line for `log_dir` (a local folder)."""
    # Reload every 5 s (TensorBoard's default is 5 s too, set explicitly because watching live is the point).
    return [
        sys.executable, "-m", "tensorboard.main",
        "--logdir", log_dir, "--host", args.host, "--port", str(args.port), "--reload_interval", "5",
        *args.extra,
    ]


def _local_dir(log_dir: str) -> str:
    path = log_dir[len("file://"):] if log_dir.startswith("file://") else log_dir
    if not os.path.isdir(path):
        raise SystemExit(
            f"No such folder: {log_dir!r}. Pass a job or sweep folder, e.g. `{USAGE_EXAMPLE}` "
            "(a job prints its folder as 'Outputs:', a sweep at its start), or a sweep in a bucket (gs://...)."
        )
    return os.path.abspath(path)


def _announce(command: list[str]) -> None:
    print(f"Starting: {shlex.join(command[2:])}  ->  http://{command[command.index('--host') + 1]}:"
          f"{command[command.index('--port') + 1]}/#hparams", flush=True)


def _watch_bucket(args: argparse.Namespace) -> int:
    """Mirror the bucket's event files, run TensorBoard on the mirror, refresh it until TensorBoard ends."""
    from cluster.results.event_mirror import EventMirror, default_mirror_dir
    from cluster.store import StorageError, open_store

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        store = open_store(args.log_dir)
        mirror_dir = Path(args.mirror) if args.mirror else default_mirror_dir(args.log_dir)
        mirror = EventMirror(store, mirror_dir)
        print(f"Mirroring the event files of {store.uri} into {mirror_dir} every {args.sync_seconds:g} s", flush=True)
        mirror.sync()
    except StorageError as error:
        raise SystemExit(f"Cannot read {args.log_dir}: {error}") from None
    command = tensorboard_argv(args, str(mirror_dir))
    _announce(command)
    tensorboard = subprocess.Popen(command)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(args.sync_seconds):
            try:
                mirror.sync()
            except StorageError as error:  # the bucket may come back: keep what is mirrored, try again
                logging.getLogger(__name__).warning("Mirror not refreshed: %s", error)

    threading.Thread(target=refresh, name="event-mirror", daemon=True).start()
    # `kill` of this process ends TensorBoard too (Ctrl-C reaches both through the terminal).
    signal.signal(signal.SIGTERM, lambda *_: tensorboard.terminate())
    try:
        return tensorboard.wait()
    except KeyboardInterrupt:
        tensorboard.terminate()
        return tensorboard.wait()
    finally:
        stop.set()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """A folder: replace this process with TensorBoard, so Ctrl-C and `kill` reach it directly.
    A bucket: mirror it while TensorBoard runs."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if is_bucket(args.log_dir):
        sys.exit(_watch_bucket(args))
    command = tensorboard_argv(args, _local_dir(args.log_dir))
    _announce(command)
    os.execv(command[0], command)
