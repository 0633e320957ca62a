"""The one place a job learns it runs inside a sweep trial.

The Ray launcher installs an epoch hook (report to Tune) and the sweep's identity before it calls the
Hydra task function in the trial's process; a plain `python launch.py` run has neither. Imports nothing
heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

EpochHook = Callable[[int, dict, str], None]

_hook: Optional[EpochHook] = None


@dataclass(frozen=True)
class SweepIdentity:
    """Which sweep a trial belongs to in the store: the id its driver claimed the sweep's name with."""

    sweep_id: str


_sweep: Optional[SweepIdentity] = None


def install_sweep_identity(identity: Optional[SweepIdentity]) -> None:
    global _sweep
    _sweep = identity


def current_sweep_identity() -> Optional[SweepIdentity]:
    return _sweep


def install_epoch_hook(hook: Optional[EpochHook]) -> None:
    global _hook
    _hook = hook


def current_epoch_hook() -> Optional[EpochHook]:
    return _hook


def combine_epoch_hooks(*hooks: Optional[EpochHook]) -> Optional[EpochHook]:
    """One hook calling each given hook in order (None entries skipped), e.g. Tune reporting + uploads."""
    present = [hook for hook in hooks if hook is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def combined(epoch: int, logs: dict, state_dir: str) -> None:
        for hook in present:
            hook(epoch, logs, state_dir)

    return combined
