"""Measuring one run: a benchmark command run as a subprocess, the way a user runs it, with its wall time and
the peak RSS of its process tree; and what such a run leaves behind (its last JSON line, the wall time of its
first TensorBoard event). Also the paths every benchmark runs from and its log line."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_measured(cmd: list[str], log_path: Path, env: dict, cwd: Path | None = None, poll_s: float = 0.05) -> dict:
    """Run `cmd`, sampling the RSS of its whole process tree; also keep the kernel's own peak RSS of the
    top process (wait4's ru_maxrss). Returns start time (time.time()), wall seconds, peaks in bytes."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as out:
        out.write("$ " + shlex.join(cmd) + "\n")
        out.flush()
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        top = psutil.Process(proc.pid)
        peak_tree = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                tree = [top, *top.children(recursive=True)]
                rss = 0
                for member in tree:
                    try:
                        rss += member.memory_info().rss
                    except psutil.Error:
                        pass
                peak_tree = max(peak_tree, rss)
            except psutil.Error:
                pass
            time.sleep(poll_s)
        wall = time.time() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{shlex.join(cmd)} exited with {proc.returncode}; log {log_path}:\n{tail}")
    return {
        "start_time": start,
        "wall_s": wall,
        "peak_rss_tree_bytes": peak_tree,
        "peak_rss_top_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
    }


def own_store(folder: Path) -> str:
    """A store beside each run's folder. The launcher's default store (results/ in the tree) names a run after
    its folder's last part and refuses a second run under a name it holds, which every repeat of a
    benchmark (pair0/launch, pair1/launch, ...) and every later benchmark would hit."""
    return f"storage.uri={folder.parent / (folder.name + '-store')}"


def last_json_line(path: Path) -> dict:
    for line in reversed(path.read_text().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in {path}")


def first_event_wall_time(tensorboard_dir: Path) -> float:
    """Wall time of the first event TensorBoard wrote (the file-version record written when the writer is
    created in on_train_begin)."""
    from tensorboard.compat.proto import event_pb2

    files = sorted(tensorboard_dir.glob("train/events.out.tfevents.*"))
    if not files:
        raise RuntimeError(f"no TensorBoard event file under {tensorboard_dir}/train")
    data = files[0].read_bytes()
    length = int.from_bytes(data[:8], "little")
    event = event_pb2.Event.FromString(data[12 : 12 + length])
    return event.wall_time
