"""How a search's trials get their job numbers (cluster.tune_trial.JobNumbers), without Ray: the driver-side
naming that decides which folder, and so which saved state, a trial continues."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from cluster.search_space import SearchSpace, build_search_space, trial_overrides
from cluster.tune_trial import TRIAL_RECORD, JobNumbers, SweepPlan

ARGUMENTS = ["model=cnn", "lr=tag(log,interval(1e-4,1e-2))"]


def plan(space: SearchSpace) -> SweepPlan:
    return SweepPlan(hydra_context=None, task_function=None, config=None, singleton_state=None, space=space)


def trial(trial_id: str, lr: float) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"overrides": {"lr": lr}})


def leave_folder(sweep_dir, number: int, trial_id: str, overrides: list[str], finished: bool, started: float) -> None:
    folder = sweep_dir / str(number)
    folder.mkdir(parents=True)
    record = {"trial_id": trial_id, "overrides": overrides, "attempts": [{"started": started}]}
    if finished:
        record["result"] = {"job_finished": True}
    (folder / TRIAL_RECORD).write_text(json.dumps(record))


def test_a_resumed_search_gives_a_re_proposed_trial_the_folder_its_lost_twin_left(tmp_path):
    """The previous driver started job 1 (lr 0.0055) and died before Tune saved it in its experiment state.
    Restored, the searcher proposes lr 0.0055 again under a new trial id: that trial is job 1 again (it
    resumes from job 1's saved epochs), and the next new values get job 2, not 3."""
    space = build_search_space(ARGUMENTS)
    before = time.time() - 60
    leave_folder(tmp_path, 0, "a0", trial_overrides(space, {"overrides": {"lr": 0.0003}}), True, before)
    leave_folder(tmp_path, 1, "a1", trial_overrides(space, {"overrides": {"lr": 0.0055}}), False, before)
    numbers = JobNumbers(plan(space), tmp_path)
    numbers.given = {"a0": 0}  # what the restored experiment state knew
    JobNumbers.resuming(tmp_path)
    try:
        assert numbers.name_of(trial("b1", 0.0055)) == "job_1"
        assert numbers.name_of(trial("b2", 0.0026)) == "job_2"
    finally:
        JobNumbers.resumed_at.pop(str(tmp_path.absolute()))


def test_an_unfinished_folder_is_never_shared_outside_a_resume_or_with_a_trial_of_this_driver(tmp_path):
    """Two trials with the same values (a choice() search can draw them twice) are two jobs: outside a resumed
    sweep, and in one for a folder that a trial of this very driver started."""
    space = build_search_space(ARGUMENTS)
    overrides = trial_overrides(space, {"overrides": {"lr": 0.0055}})
    leave_folder(tmp_path, 0, "a0", overrides, False, time.time() - 60)
    fresh = JobNumbers(plan(space), tmp_path)
    assert fresh.name_of(trial("b1", 0.0055)) == "job_1"

    JobNumbers.resuming(tmp_path)
    try:
        leave_folder(tmp_path, 5, "c5", overrides, False, time.time() + 1)  # started by this driver
        resumed = JobNumbers(plan(space), tmp_path)
        resumed.given = {"a0": 0}  # job 0 is known to the restored experiment
        assert resumed.name_of(trial("c6", 0.0055)) == "job_6"
    finally:
        JobNumbers.resumed_at.pop(str(tmp_path.absolute()))


def test_a_searcher_id_of_decimal_digits_is_not_taken_for_tune_s_counter(tmp_path):
    """Searchers' trial ids are 8 random hex digits, all decimal one time in 43 ("81030035"): numbered in
    order like any other, not as job 81030035. Tune's random search ids (<experiment>_<counter>) keep theirs."""
    space = build_search_space(ARGUMENTS)
    numbers = JobNumbers(plan(space), tmp_path)
    assert numbers.name_of(trial("81030035", 0.001)) == "job_0"
    assert numbers.name_of(trial("3fa9c2d1", 0.002)) == "job_1"
    assert JobNumbers(plan(space), tmp_path).name_of(trial("1e65c_00002", 0.003)) == "job_2"
