"""The names of a job's files, and the resumable state's format: the one place that spells them.

The trainer writes these files; the sweep's trial runner and the uploader read them. Imports nothing
heavy (no TensorFlow), so the cluster layer can check a state folder without loading Keras.

    <job dir>/resolved_config.yaml
    <job dir>/metrics.json              written once the job has finished
    <job dir>/checkpoints/best.keras    the best epoch so far (best-only checkpoint)
    <job dir>/tensorboard/              event files (train/, validation/, HParams)
    <job dir>/state/                    the newest state: last.keras (model + optimizer) and progress.json, at
                                        an epoch's end or, mid-epoch, after a step (trainer.save_every_steps, SIGTERM)
    <job dir>/state.prev/               the state before it, kept in case the newest turns out unreadable
    <job dir>/export/                   exports of the best model (export.*)
    <job dir>/trial.json                in a sweep: the trial runner's record of the job's attempts
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

RESOLVED_CONFIG = "resolved_config.yaml"
METRICS = "metrics.json"
BEST_CHECKPOINT = Path("checkpoints") / "best.keras"
TENSORBOARD = "tensorboard"
EXPORT = "export"
STATE = "state"
PREVIOUS_STATE = "state.prev"
# Inside a state folder.
STATE_MODEL = "last.keras"
PROGRESS = "progress.json"


def file_checksum(path: Path, block_size: int = 1 << 20) -> dict:
    """Size and CRC-32 of a file: enough to tell a complete state file from a truncated or damaged one."""
    crc, size = 0, 0
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return {"size": size, "crc32": crc}


def _without_none(record: dict) -> dict:
    return {key: value for key, value in record.items() if value is not None}


@dataclass
class Stage:
    """One `fit` of a job: "train" for every job, then "fine_tune" for model=transfer (see trainers/job.py)."""

    name: str
    first_epoch: int
    learning_rate: float
    trainable_weights: int
    unfrozen_layers: Optional[int] = None  # fine_tune only
    stopped_early: Optional[bool] = None  # set once the stage has ended
    last_epoch: Optional[int] = None  # set in metrics.json
    # What lr, optimizer.* and model.dropout were, and when a resumed job changed them (population-based
    # training explores them; see trainers/hyperparameter_changes.py).
    hyperparameters: Optional[dict] = None
    changes: Optional[list] = None

    def to_json(self) -> dict:
        return _without_none(asdict(self))

    @classmethod
    def from_json(cls, record: dict) -> "Stage":
        known = {name: record[name] for name in cls.__dataclass_fields__ if name in record}
        return cls(**known)


@dataclass
class Progress:
    """What progress.json holds: enough to continue the job where it stopped, and the state's own check.

    On disk it is the JSON object `to_json` gives; states written before a key existed lack it (no
    `stages`, no `files`) and still load."""

    epochs_completed: int
    best_value: Optional[float] = None
    best_epoch: Optional[int] = None
    history: list[dict] = field(default_factory=list)  # one {"epoch": n, metric: value, ...} per epoch
    # The training stages begun so far; the last one is in progress (or ended, see `finished`).
    stages: list[Stage] = field(default_factory=list)
    # Set after a `fit` returns: the last stage listed ended, by early stopping or by using its epochs.
    finished: bool = False
    stopped_early: bool = False
    # File name -> {"size", "crc32"} of the state's model file when it was written.
    files: dict[str, dict] = field(default_factory=dict)
    # A state saved within an epoch: the training steps of epoch `epochs_completed + 1` already done (0: at an
    # epoch's end), and that epoch's training metrics so far (each metric variable's path -> its value).
    steps_into_epoch: int = 0
    epoch_metrics: dict[str, list] = field(default_factory=dict)

    @property
    def position(self) -> tuple[int, int]:
        """(epochs completed, steps into the next one): orders states from oldest to newest."""
        return self.epochs_completed, self.steps_into_epoch

    def describe_position(self) -> str:
        if self.steps_into_epoch:
            return f"step {self.steps_into_epoch} of epoch {self.epochs_completed + 1}"
        return f"epoch {self.epochs_completed}"

    def to_json(self) -> dict:
        record = {
            "epochs_completed": self.epochs_completed,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "stages": [stage.to_json() for stage in self.stages],
        }
        if self.finished or self.stopped_early:
            record.update(finished=self.finished, stopped_early=self.stopped_early)
        if self.files:
            record["files"] = self.files
        if self.steps_into_epoch:
            record.update(steps_into_epoch=self.steps_into_epoch, epoch_metrics=self.epoch_metrics)
        return record

    @classmethod
    def from_json(cls, record: dict) -> "Progress":
        """Raises ValueError (or KeyError, TypeError) for a record that is not a job's progress."""
        return cls(
            epochs_completed=int(record["epochs_completed"]),
            best_value=record.get("best_value"),
            best_epoch=record.get("best_epoch"),
            history=list(record.get("history") or []),
            stages=[Stage.from_json(stage) for stage in record.get("stages") or []],
            finished=bool(record.get("finished", False)),
            stopped_early=bool(record.get("stopped_early", False)),
            files=dict(record.get("files") or {}),
            steps_into_epoch=int(record.get("steps_into_epoch", 0)),
            epoch_metrics=dict(record.get("epoch_metrics") or {}),
        )

    @classmethod
    def read(cls, state_dir: Path) -> "Progress":
        """The progress.json of a state folder. Raises OSError, ValueError, KeyError or TypeError."""
        return cls.from_json(json.loads((Path(state_dir) / PROGRESS).read_text()))

    def write(self, state_dir: Path) -> None:
        """Written beside and renamed over the old file: others may hold hard links to it."""
        progress_file = Path(state_dir) / PROGRESS
        staging = progress_file.with_name(PROGRESS + ".tmp")
        staging.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(staging, progress_file)


UNREADABLE = (OSError, ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class StateCheck:
    """A state folder as found on disk: its progress when complete, else why it cannot be used."""

    folder: Path
    progress: Optional[Progress]
    problem: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.progress is not None

    @property
    def epochs_completed(self) -> int:
        return self.progress.epochs_completed if self.progress else 0

    @property
    def position(self) -> tuple[int, int]:
        """(epochs completed, steps into the next one); (0, 0) without a usable state."""
        return self.progress.position if self.progress else (0, 0)


def check_state(folder: Path) -> StateCheck:
    """Read `folder/progress.json` and verify the model file against the size and CRC it records.

    A folder that does not exist is not a problem (no state yet); a partial or damaged one is, and the
    problem says what is wrong so the caller can warn and fall back."""
    folder = Path(folder)
    progress_file, model_file = folder / PROGRESS, folder / STATE_MODEL
    if not folder.exists():
        return StateCheck(folder, None)
    try:
        progress = Progress.read(folder)
    except UNREADABLE as error:
        return StateCheck(folder, None, f"{progress_file} is missing or unreadable ({type(error).__name__}: {error})")
    recorded = progress.files.get(STATE_MODEL)
    try:
        actual = file_checksum(model_file)
    except OSError as error:
        return StateCheck(folder, None, f"{model_file} is missing or unreadable ({error})")
    # States written before checksums were recorded are taken as they are (loading them still may fail).
    if recorded is not None and actual != recorded:
        return StateCheck(
            folder, None,
            f"{model_file} is damaged or incomplete: {actual['size']} bytes, CRC-32 {actual['crc32']}; "
            f"the state recorded {recorded['size']} bytes, CRC-32 {recorded['crc32']}",
        )
    return StateCheck(folder, progress)


def newest_usable_state(job_dir: Path) -> Optional[StateCheck]:
    """`state/` if complete, else `state.prev/` (with a warning), else None (with a warning if something was there)."""
    for name in (STATE, PREVIOUS_STATE):
        found = check_state(Path(job_dir) / name)
        if found.usable:
            return found
        if found.problem:
            log.warning("Not resuming from %s: %s", found.folder, found.problem)
    return None


def write_state(state_dir: Path, model, progress: Progress) -> None:
    """Save `model` (with its optimizer) and `progress` as the newest state; the one before becomes
    `state.prev`. Written beside and swapped in, so a kill at any moment leaves a complete state to
    resume from (a reader finds `state/`, else `state.prev/`)."""
    state_dir = Path(state_dir)
    staging = state_dir.with_name(state_dir.name + ".tmp")
    previous = state_dir.with_name(PREVIOUS_STATE)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(staging / STATE_MODEL)
    replace(progress, files={STATE_MODEL: file_checksum(staging / STATE_MODEL)}).write(staging)
    if state_dir.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(state_dir, previous)
    os.replace(staging, state_dir)


def update_progress(state_dir: Path, **changes) -> None:
    """Rewrite progress.json with `changes` to its fields (e.g. finished=True), if the state has one."""
    if (Path(state_dir) / PROGRESS).is_file():
        replace(Progress.read(state_dir), **changes).write(state_dir)


def set_aside(folder: Path) -> Path:
    """Move a damaged state folder out of the way (kept for a post-mortem), so it is never rotated into
    `state.prev` nor read again."""
    aside = Path(folder).with_name(Path(folder).name + ".damaged")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(folder, aside)
    return aside
