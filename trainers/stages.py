"""Training stages: every job trains its model ("train"); model=transfer then fine-tunes the backbone's last
layers ("fine_tune"). Each stage is one `fit`, and epochs are numbered on across stages.

`run_stages` trains the planned stages in order and continues a resumed job in the stage it stopped in. It
imports no TensorFlow: the caller passes what fitting, beginning a stage and saving the state do
(trainers/fitting.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .job_files import Stage


@dataclass(frozen=True)
class PlannedStage:
    name: str
    epochs: int
    learning_rate: float


def run_stages(
    planned: Sequence[PlannedStage],
    stages: list[Stage],
    history: list[dict],
    stopped_early: bool,
    *,
    fit: Callable[[int], None],
    begin: Callable[[PlannedStage], Stage],
    save_state: Callable[[], None],
    fit_ended: Callable[[bool], None],
) -> bool:
    """Train the planned stages, one `fit` each, continuing a resumed job where it stopped; returns
    whether the last stage ended by early stopping.

    Epochs are numbered on across stages, so TensorBoard shows one run. `stages` lists the stages begun
    so far (from progress.json on a resume; the last is the one in progress), `history` one entry per
    finished epoch (the state callback appends to it during `fit(end_epoch)`). `stopped_early`: how the
    last stage listed ended, when it ended before a resume. A stage begins once the one before has
    converged (early stopping) or used its epochs: `begin` prepares the model for it (e.g. unfreezes
    layers) and `save_state` then saves it, so a job killed from then on resumes in the new stage.
    A rerun continues a stage up to its epochs (raise them to train longer) unless early stopping ended it.
    Fills in each stage's `stopped_early` and `last_epoch`.
    """
    for index, plan in enumerate(planned):
        if index < len(stages) - 1:
            continue  # finished before this job was resumed
        if index == len(stages):
            stages[-1].stopped_early = stopped_early
            stages.append(begin(plan))
            save_state()
            stopped_early = False
        end_epoch = stages[index].first_epoch - 1 + plan.epochs
        if len(history) < end_epoch and not stopped_early:
            fit(end_epoch)
            stopped_early = len(history) < end_epoch
            fit_ended(stopped_early)  # after early stopping a rerun does not train this stage again
    stages[-1].stopped_early = stopped_early
    for stage, following in zip(stages, stages[1:] + [None]):
        stage.last_epoch = following.first_epoch - 1 if following else len(history)
    return stopped_early
