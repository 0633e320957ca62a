"""Object names of the bucket layout (README: "Storage and pull"); a trial's files are named as in its job folder.

    <uri>/<sweep>/owner.json                         which sweep writes here (its id): two never mix
    <uri>/<sweep>/manifest.json                      leaderboard, best trial, command, configs, versions
    <uri>/<sweep>/best.json                          pointer to the best trial (written last, replaced only by better)
    <uri>/<sweep>/trials/<trial>/best.json           pointer to the trial's best checkpoint + its checksums
    <uri>/<sweep>/trials/<trial>/checkpoints/best-e<epoch>-<id>.keras   immutable, one per improvement
    <uri>/<sweep>/trials/<trial>/resolved_config.yaml
    <uri>/<sweep>/trials/<trial>/metrics.json        final metrics (present once the trial finished)
    <uri>/<sweep>/trials/<trial>/tensorboard/...     event files, synced every few seconds
    <uri>/<sweep>/trials/<trial>/state.json          pointer to the newest complete resumable state (and the one before)
    <uri>/<sweep>/trials/<trial>/state/e<epoch>-<id>/last.keras, progress.json   immutable, two kept
    <uri>/<sweep>/trials/<trial>/trial.json          the trial runner's record: attempts, nodes, final result
"""

from __future__ import annotations

import re

from trainers import job_files

OWNER = "owner.json"
MANIFEST = "manifest.json"
POINTER = "best.json"
TRIALS = "trials"
STATE_POINTER = "state.json"
# A trial's folder in the store keeps the names of the job folder's files (trainers/job_files.py).
CONFIG = job_files.RESOLVED_CONFIG
METRICS = job_files.METRICS
TENSORBOARD = job_files.TENSORBOARD
CHECKPOINTS = job_files.BEST_CHECKPOINT.parent.name
STATES = job_files.STATE
TRIAL_RECORD = job_files.TRIAL_RECORD

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


def trial_key(sweep: str, trial: str, *parts: str) -> str:
    return "/".join([check_name("sweep", sweep), TRIALS, check_name("trial", trial), *parts])


def checkpoint_key(sweep: str, trial: str, epoch: int, unique: str) -> str:
    # Immutable names: a pointer never refers to an object that is later overwritten.
    return trial_key(sweep, trial, CHECKPOINTS, f"best-e{epoch:04d}-{unique}.keras")


def state_folder_key(sweep: str, trial: str, epoch: int, unique: str) -> str:
    # Immutable like checkpoints: the pointer moves to a new folder only once all its files are stored.
    return trial_key(sweep, trial, STATES, f"e{epoch:04d}-{unique}")
