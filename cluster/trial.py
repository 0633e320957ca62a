"""The one place a job learns it runs inside a sweep trial.

The Ray launcher installs an epoch hook (report to Tune, upload, checkpoint) before it calls the Hydra
task function in the trial's process; a plain `python launch.py` run has none. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Callable, Optional

EpochHook = Callable[[int, dict, str], None]

_hook: Optional[EpochHook] = None


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
