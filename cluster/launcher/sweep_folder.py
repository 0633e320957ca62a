"""The sweep folder on the driver: what sweep it holds, so that rerunning the same command with
`hydra.sweep.dir=<it>` resumes that sweep if it was interrupted (a killed driver, Ctrl-C), runs it again if
it had ended (as Hydra's launchers do; each job may resume from its own saved state), and any other command
is refused instead of mixing two sweeps.

    <sweep dir>/sweep_spec.json    the jobs (grid) or the search (overrides, samples, scheduler, seed) asked for
    <sweep dir>/tune/              Ray Tune's experiment state, which a resume restores
    <sweep dir>/sweep_ended.json   written once every trial ended; a rerun then starts a new experiment
                                   (the previous one moves to tune.previous/)

With a store, these are kept there too (driver_state.py), and a folder without them gets them from there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from cluster.launcher.job_configs import SweepRefused

SPEC_FILE = "sweep_spec.json"
ENDED_FILE = "sweep_ended.json"
# Written by earlier versions under this name; still read, so their sweeps can be resumed.
OLD_SPEC_FILE = "sweep.json"
EXPERIMENT = "tune"


def in_ray_package_cache(path: Path) -> bool:
    """Whether `path` is inside a copy of a working dir that Ray Jobs unpacked (`ray job submit --working-dir`):
    `<temp dir>/session_*/runtime_resources/working_dir_files/_ray_pkg_<hash>`, a cache Ray may delete."""
    parts = Path(path).absolute().parts
    return "runtime_resources" in parts and any(part.startswith("_ray_pkg_") for part in parts)


def outside_ray_package_cache(sweep_dir: Path, cluster_dir: str) -> Path:
    """Where a sweep folder lives when the driver runs as a Ray job in Ray's copy of the checkout (Ray's own
    `ray job submit --working-dir .`, a KubeRay RayJob): under `cluster_dir` on the head, with the same path
    below it as below the job's working dir, as `hydra.launcher.submit` places it. Else `sweep_dir` itself."""
    cwd = Path.cwd()
    if not in_ray_package_cache(cwd) or not Path(sweep_dir).absolute().is_relative_to(cwd):
        return Path(sweep_dir)
    return Path(cluster_dir).expanduser().absolute() / Path(sweep_dir).absolute().relative_to(cwd)


def resumes(sweep_dir: Path, spec_record: dict) -> bool:
    """True when `sweep_dir` holds a Tune experiment of this same sweep (to be restored); records the
    spec when the folder holds no sweep yet. Raises SweepRefused for a folder holding another sweep."""
    from ray import tune

    for name in (SPEC_FILE, OLD_SPEC_FILE):
        path = sweep_dir / name
        if path.is_file():
            previous = json.loads(path.read_text())
            if previous != spec_record:
                raise SweepRefused(
                    f"{sweep_dir} holds another sweep ({path}: {previous}); this command asks for {spec_record}. "
                    f"Rerun the same command to resume that sweep, or choose a new hydra.sweep.dir."
                )
            if (sweep_dir / ENDED_FILE).is_file():
                _set_previous_run_aside(sweep_dir)
                return False
            return tune.Tuner.can_restore(str(sweep_dir / EXPERIMENT))
    (sweep_dir / SPEC_FILE).write_text(json.dumps(spec_record, indent=1))
    return False


def _set_previous_run_aside(sweep_dir: Path) -> None:
    previous = sweep_dir / f"{EXPERIMENT}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if (sweep_dir / EXPERIMENT).exists():
        os.replace(sweep_dir / EXPERIMENT, previous)
    (sweep_dir / ENDED_FILE).unlink(missing_ok=True)


def mark_ended(sweep_dir: Path, statuses: dict) -> None:
    """Every trial ended (none interrupted): rerunning the command runs the sweep again, not resumes it."""
    (sweep_dir / ENDED_FILE).write_text(json.dumps({"ended_at": time.time(), "statuses": statuses}, indent=1))
