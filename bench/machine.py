"""The machine and the launcher a benchmark runs on: CPU model and flags, GPUs as TensorFlow sees them, the
precision both sides use, the tree `launch.py` runs from (and its revision), the load average."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import psutil

from bench.measure import PYTHON, ROOT


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def probe_tensorflow(env: dict) -> dict:
    """GPUs as TensorFlow sees them (in a subprocess: the runner itself never imports TensorFlow)."""
    code = (
        "import json, keras, tensorflow as tf\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "details = [tf.config.experimental.get_device_details(g) for g in gpus]\n"
        "print(json.dumps({'tensorflow': tf.__version__, 'keras': keras.__version__, "
        "'gpus': [{'name': d.get('device_name', g.name), "
        "'compute_capability': d.get('compute_capability')} for g, d in zip(gpus, details)]}))\n"
    )
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info(env: dict) -> dict:
    flags = cpu_flags()
    info = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_flags": sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"}),
        "python": platform.python_version(),
        **probe_tensorflow(env),
    }
    return info


def choose_precision(requested: str, info: dict) -> str:
    if requested != "bench-auto":
        return requested
    if info["gpus"]:
        return "auto"  # the launcher's own policy: mixed_float16 on tensor-core GPUs
    flags = set(info["cpu_flags"])
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def launcher_tree(git_ref: str | None, out_dir: Path) -> tuple[Path, str]:
    """The folder launch.py runs from, and the revision it holds (`-dirty` when uncommitted changes exist)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    if git_ref is None:
        commit = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain"))
        return ROOT, commit + ("-dirty" if dirty else "")
    commit = git("rev-parse", "--short", git_ref)
    tree = out_dir / f"tree-{commit}"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", git_ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree, commit


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
