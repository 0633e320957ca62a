"""What a Hydra task function can know and do when the `ray_tune` launcher runs it as a Tune trial.
Imports nothing heavy; outside a trial every call is a harmless no-op.

    from cluster.launcher.trial_context import report_epoch, current_trial

    def task(cfg):
        for epoch in range(1, cfg.epochs + 1):
            ...
            report_epoch(epoch, {"val_loss": val_loss}, last=epoch == cfg.epochs, state=["state"])
        return {"val_loss": best_val_loss}

- `report_epoch` sends one epoch's metrics to Tune (the scheduler compares trials on them; the console and
  the leaderboard show them). `last=True` marks the final epoch: that report is held back and sent with
  the task's return value, so a scheduler that ends trials at their last epoch never cuts the task's
  final work (evaluating, saving). A task that never calls it sends one report: its return value.
- `state`: the files or folders (inside the job's folder) that hold what the job resumes from after this
  epoch. Only population-based training uses it: it snapshots them as the trial's Tune checkpoint, and a
  trial that exploits another starts with that trial's files in its own job folder (and new values in its
  config); the task then resumes from them as after any restart. Other sweeps copy nothing.
- The return value: a number is the metric's value; a dict may carry the metric (`hydra.launcher.metric`)
  and, for the leaderboard, `best_epoch` and `epochs` (epochs run, counting any before a resume).
- `current_trial()`: the sweep's id in its store, the GPU ids Ray granted this trial and, when this trial
  starts from another trial's state (a PBT exploit), where it came from (`inherited`); None outside a trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

# (epoch number counted from 1, that epoch's metrics, whether it is the task's last epoch, the job's state paths)
EpochReporter = Callable[[int, dict, bool, Sequence[str]], None]


@dataclass(frozen=True)
class TrialInfo:
    # The id the sweep's driver claimed its name in the store with (None: the sweep has no store).
    sweep_id: Optional[str] = None
    # GPU ids Ray granted this trial (CUDA_VISIBLE_DEVICES is set to them).
    gpu_ids: tuple = field(default_factory=tuple)
    # Population-based training: the trial's job folder was given another trial's state before the task
    # started ({"job", "trial_id", "epoch", "overrides_before", "overrides"}); None otherwise. A task that also
    # restores its own state from elsewhere (a store) must keep this one.
    inherited: Optional[dict] = None


_reporter: Optional[EpochReporter] = None
_trial: Optional[TrialInfo] = None


def report_epoch(epoch: int, metrics: dict, last: bool = False, state: Union[str, Sequence[str], None] = None) -> None:
    """Report one finished epoch to the sweep (a no-op outside a trial). `state`: path(s) in the job folder
    holding the job's resumable state after this epoch (see the module doc)."""
    if _reporter is not None:
        one = isinstance(state, (str, bytes)) or hasattr(state, "__fspath__")
        paths = [] if state is None else [str(state)] if one else [str(path) for path in state]
        _reporter(epoch, metrics, last, paths)


def current_trial() -> Optional[TrialInfo]:
    return _trial


def enter_trial(trial: TrialInfo, reporter: EpochReporter) -> None:
    """The launcher's side, in the trial's process, before it calls the task function."""
    global _reporter, _trial
    _reporter, _trial = reporter, trial


def leave_trial() -> None:
    global _reporter, _trial
    _reporter, _trial = None, None
