"""Names in a store: one folder per sweep, one per trial, and the launcher's own objects in them. The job's files
inside a trial folder are named by cluster.results.layout.

    <uri>/<sweep>/owner.json                         which sweep writes here (its id): two never mix
    <uri>/<sweep>/manifest.json                      leaderboard, best trial, command, configs, versions
    <uri>/<sweep>/best.json                          pointer to the best trial (written last, replaced only by better)
    <uri>/<sweep>/trials/<trial>/trial.json          the trial runner's record: attempts, nodes, final result
    <uri>/<sweep>/trials/<trial>/...                 the job's files (cluster.results.layout)
    <uri>/<sweep>/driver/...                         the sweep driver's own state (cluster.launcher.driver_state):
                                                     a sweep resumes from it on any machine
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

OWNER = "owner.json"
MANIFEST = "manifest.json"
POINTER = "best.json"
TRIALS = "trials"
DRIVER = "driver"
# Written by the trial runner (cluster.launcher.trial_record) in the job folder and in the store.
TRIAL_RECORD = "trial.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]{0,199}$")


def check_name(kind: str, name: str) -> str:
    """Sweep and trial names become one path segment locally and in the bucket."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"Invalid {kind} name {name!r}: use 1-200 characters from letters, digits and ._=,+- "
            f"starting with a letter or digit."
        )
    return name


def sweep_key(sweep: str, *parts: str) -> str:
    return "/".join([check_name("sweep", sweep), *parts])


def driver_key(sweep: str, *parts: str) -> str:
    return sweep_key(sweep, DRIVER, *parts)


def trial_key(sweep: str, trial: str, *parts: str) -> str:
    return "/".join([check_name("sweep", sweep), TRIALS, check_name("trial", trial), *parts])


def sweep_name_of(folder: str | Path) -> str:
    """Hydra's run/sweep folders are <root>/<date>/<time>: name the sweep `<date>_<time>`; any other
    folder by its own name. Characters a bucket-safe name cannot hold become '-'."""
    path = Path(folder)
    name = f"{path.parent.name}_{path.name}" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", path.parent.name) else path.name
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "-", name).lstrip("._-=,+") or "sweep"
    return check_name("sweep", name[:200])


def job_identity(hydra_cfg: Any) -> tuple[str, str, bool]:
    """(sweep, trial, is_single_run) of the running Hydra job."""
    from hydra.types import RunMode

    if hydra_cfg.mode == RunMode.MULTIRUN:
        trial = re.sub(r"[^A-Za-z0-9._=,+-]", "-", str(hydra_cfg.sweep.subdir)) or "0"
        return sweep_name_of(hydra_cfg.sweep.dir), trial, False
    return sweep_name_of(hydra_cfg.run.dir), "0", True
