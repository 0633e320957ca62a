"""A trial's folder in the store holds the job's files under the names they have in the job folder
(trainers/job_files.py), inside the store's sweep layout (cluster.store.layout):

    <uri>/<sweep>/trials/<trial>/best.json           pointer to the trial's best checkpoint + its checksums
    <uri>/<sweep>/trials/<trial>/checkpoints/best-e<epoch>-<id>.keras   immutable, one per improvement
    <uri>/<sweep>/trials/<trial>/resolved_config.yaml
    <uri>/<sweep>/trials/<trial>/metrics.json        final metrics (present once the trial finished)
    <uri>/<sweep>/trials/<trial>/tensorboard/...     event files, synced every few seconds
    <uri>/<sweep>/trials/<trial>/state.json          pointer to the newest complete resumable state (and the one before)
    <uri>/<sweep>/trials/<trial>/state/e<epoch>-<id>/last.keras, progress.json   immutable, two kept
"""

from __future__ import annotations

from cluster.store.layout import (  # noqa: F401 - the sweep layout, read with the job's names below
    MANIFEST,
    OWNER,
    POINTER,
    TRIAL_RECORD,
    TRIALS,
    check_name,
    job_identity,
    sweep_key,
    sweep_name_of,
    trial_key,
)
from trainers import job_files

STATE_POINTER = "state.json"
CONFIG = job_files.RESOLVED_CONFIG
METRICS = job_files.METRICS
TENSORBOARD = job_files.TENSORBOARD
CHECKPOINTS = job_files.BEST_CHECKPOINT.parent.name
STATES = job_files.STATE


def checkpoint_key(sweep: str, trial: str, epoch: int, unique: str) -> str:
    # Immutable names: a pointer never refers to an object that is later overwritten.
    return trial_key(sweep, trial, CHECKPOINTS, f"best-e{epoch:04d}-{unique}.keras")


def state_folder_key(sweep: str, trial: str, epoch: int, unique: str) -> str:
    # Immutable like checkpoints: the pointer moves to a new folder only once all its files are stored.
    return trial_key(sweep, trial, STATES, f"e{epoch:04d}-{unique}")
