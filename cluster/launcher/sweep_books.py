"""A sweep checks its own books before it says it succeeded: every trial Tune ran is one job (its own number,
folder and store prefix), every leaderboard row is one of those trials, a job's record was written by its own
trial, and every trial that finished has its result in the store. A sweep whose books do not agree has lost
results even if no trial failed, so it says which and exits non-zero."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from cluster.store.layout import TRIAL_RECORD


def _recorded_trial(row, stored: Optional[dict]) -> Optional[str]:
    """The trial id in the job's record: the store's copy when the sweep has one (the job folder may be on
    another node), else the folder's when this node has it."""
    if stored is not None:
        return stored.get("trial_id")
    try:
        return json.loads((Path(row.job_dir) / TRIAL_RECORD).read_text()).get("trial_id")
    except (OSError, ValueError):
        return None


def audit(trial_jobs: Sequence[tuple[str, int]], rows: Sequence, stored: Optional[dict[str, dict]] = None) -> list[str]:
    """What does not add up, one sentence each (empty: the books agree).

    Args:
        trial_jobs: (Tune trial id, job number) of every trial Tune ran.
        rows: the leaderboard's rows (a grid's jobs that never started included: they have no trial id).
        stored: the store's view of each trial by its folder name (`trial_id` of its record, `finished` when its
            final metrics are there); None when the sweep has no store.
    """
    problems = []
    trials_of = defaultdict(list)
    for trial_id, number in trial_jobs:
        trials_of[number].append(trial_id)
    for number, trial_ids in sorted(trials_of.items()):
        if len(trial_ids) > 1:
            problems.append(f"job {number} was run by {len(trial_ids)} trials ({', '.join(sorted(trial_ids))}), "
                            f"which wrote into one folder and one store prefix: all but one result are lost")
    ran = [row for row in rows if row.trial_id]
    if len(ran) != len(trial_jobs) or len(trials_of) != len(trial_jobs):
        problems.append(f"Tune ran {len(trial_jobs)} trials, which make {len(trials_of)} jobs and {len(ran)} "
                        f"leaderboard rows")
    for row in ran:
        name = Path(row.job_dir).name
        record = None if stored is None else stored.get(name, {})
        if row.status == "COMPLETED" and stored is not None and not record.get("finished"):
            problems.append(f"job {row.job} completed but its results are not in the store (trial folder {name})")
        writer = _recorded_trial(row, record)
        if writer is not None and writer != row.trial_id:
            problems.append(f"job {row.job}'s record ({name}/{TRIAL_RECORD}) was written by trial {writer}, "
                            f"not by its own trial {row.trial_id}")
    return problems
