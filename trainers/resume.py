"""Where a job resumes: the newest complete state in its folder that Keras can load, else a fresh start.

A state can be unusable: a file cut short by a full disk or a kill during a copy, a damaged download.
Each one found so is set aside (`state.damaged/`) with a warning, and the state before it is tried,
so one bad file never makes every rerun of a job fail.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from .job_files import PREVIOUS_STATE, STATE, STATE_MODEL, Progress, check_state, set_aside

log = logging.getLogger(__name__)


def load_resume_point(job_dir: Path, load_model: Callable[[Path], Any]) -> tuple[Optional[Progress], Any]:
    """(progress, model) of the newest usable state, or (None, None) for a fresh start.

    Call it inside the distribution strategy's scope: `load_model` builds the model there."""
    for name in (STATE, PREVIOUS_STATE):
        found = check_state(Path(job_dir) / name)
        problem = found.problem
        if found.usable:
            try:
                return found.progress, load_model(found.folder / STATE_MODEL)
            except Exception as error:  # noqa: BLE001 - any load failure means: not this state
                problem = f"{found.folder / STATE_MODEL} cannot be loaded ({type(error).__name__}: {str(error)[:300]})"
        if problem:
            aside = set_aside(found.folder)
            log.warning("Not resuming from %s: %s. Moved to %s; trying an older state.", found.folder, problem, aside)
    if any((Path(job_dir) / f"{name}.damaged").exists() for name in (STATE, PREVIOUS_STATE)):
        log.warning("No usable state left in %s: the job starts from epoch 0.", job_dir)
    return None, None
