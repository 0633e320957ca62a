"""Watching jobs and sweeps in TensorBoard: the command to print, and `python launch.py tensorboard DIR`.

Every job writes `<job dir>/tensorboard/` (an HParams session with train/ and validation/ runs), so
TensorBoard pointed at a sweep dir shows one run per trial and the HParams dashboard compares them.
Imports nothing heavy: the launcher calls `tensorboard_command` when a sweep starts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Optional, Sequence

USAGE_EXAMPLE = "python launch.py tensorboard multirun/2026-01-01/12-00-00 --port 6006"


def tensorboard_command(log_dir: str) -> str:
    """The shell command that watches `log_dir` (a job or sweep folder, or a bucket URI)."""
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
    parser.add_argument("log_dir", help="a job or sweep folder (or a gs:// URI, see README 'Watching')")
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--host", default="localhost", help="address to bind (default: localhost only)")
    args, extra = parser.parse_known_args(argv)
    args.extra = [arg for arg in extra if arg != "--"]
    return args


def tensorboard_argv(argv: Sequence[str]) -> list[str]:
    """The TensorBoard command line `python launch.py tensorboard ...` runs."""
    args = _parse(argv)
    log_dir = args.log_dir
    if "://" not in log_dir:
        if not os.path.isdir(log_dir):
            raise SystemExit(
                f"No such folder: {log_dir!r}. Pass a job or sweep folder, e.g. `{USAGE_EXAMPLE}` "
                "(a job prints its folder as 'Outputs:', a sweep at its start)."
            )
        log_dir = os.path.abspath(log_dir)
    # Reload every 5 s (TensorBoard's default is 5 s too, set explicitly because watching live is the point).
    return [
        sys.executable, "-m", "tensorboard.main",
        "--logdir", log_dir, "--host", args.host, "--port", str(args.port), "--reload_interval", "5",
        *args.extra,
    ]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Replace this process with TensorBoard, so Ctrl-C and `kill` reach it directly."""
    command = tensorboard_argv(sys.argv[1:] if argv is None else argv)
    print(f"Starting: {shlex.join(command[2:])}  ->  http://{command[command.index('--host') + 1]}:"
          f"{command[command.index('--port') + 1]}/#hparams", flush=True)
    os.execv(command[0], command)
