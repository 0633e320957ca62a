"""How a search's trials get their job numbers (cluster.launcher.job_numbers.JobNumbers), without Ray: the driver-side
naming that decides which folder, store prefix and saved state a trial has. Tune deep-copies and pickles the
name creator for every trial it creates, so the tests name trials through such copies, as Tune does."""

from __future__ import annotations

import copy
import pickle
from types import SimpleNamespace

from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.search_space import SearchSpace, build_search_space
from cluster.launcher.sweep_plan import SweepPlan

ARGUMENTS = ["model=cnn", "lr=tag(log,interval(1e-4,1e-2))"]


def plan(space: SearchSpace, jobs=None) -> SweepPlan:
    return SweepPlan(hydra_context=None, task_function=None, config=None, singleton_state=None, space=space, jobs=jobs)


def trial(trial_id: str, lr: float) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"overrides": {"lr": lr}})


def as_tune_keeps_it(numbers: JobNumbers):
    """The name creator as Tune holds it for one new trial: a deep copy of the spec, through its pickled form."""
    return pickle.loads(pickle.dumps(copy.deepcopy(numbers.name_of)))


def test_a_burst_of_searcher_trials_named_before_any_folder_exists_gets_distinct_numbers(tmp_path):
    """Optuna with max_concurrent_trials=4: Tune creates four trials at once, each through its own copy of
    the name creator, before any trial made its folder. Each is its own job (the bug: all four were job 0)."""
    numbers = JobNumbers(plan(build_search_space(ARGUMENTS)), tmp_path)
    names = [as_tune_keeps_it(numbers)(trial(f"{index:08x}", 0.001 * (index + 1))) for index in range(4)]
    assert names == ["job_0", "job_1", "job_2", "job_3"]
    assert not [path for path in tmp_path.iterdir() if path.name.isdigit()]  # no folder was needed
    # A trial is named twice (trial_name_creator and trial_dirname_creator): the same number both times.
    assert as_tune_keeps_it(numbers)(trial("00000002", 0.003)) == "job_2"


def test_a_resumed_driver_numbers_new_trials_after_every_number_given_before(tmp_path):
    """The ledger, not the folders: the killed driver named jobs 0-2 and none of them made a folder yet
    (they ran on other nodes). The resumed driver's new trials are jobs 3 and 4."""
    space = build_search_space(ARGUMENTS)
    first = JobNumbers(plan(space), tmp_path)
    for index in range(3):
        as_tune_keeps_it(first)(trial(f"a{index}", 0.001 * (index + 1)))
    resumed = JobNumbers(plan(space), tmp_path)  # a new driver process builds it anew
    resumed.resuming({"a0", "a1", "a2"})
    assert as_tune_keeps_it(resumed)(trial("b0", 0.0077)) == "job_3"
    assert as_tune_keeps_it(resumed)(trial("b1", 0.0088)) == "job_4"


def test_a_resumed_search_gives_a_re_proposed_trial_the_number_its_lost_twin_had(tmp_path):
    """The previous driver numbered job 1 (lr 0.0055) and died before Tune saved it in its experiment state.
    Restored, the searcher proposes lr 0.0055 again under a new trial id: that trial is job 1 again (it
    resumes from job 1's saved epochs), and the next new values get job 2, not 3."""
    space = build_search_space(ARGUMENTS)
    first = JobNumbers(plan(space), tmp_path)
    as_tune_keeps_it(first)(trial("a0", 0.0003))
    as_tune_keeps_it(first)(trial("a1", 0.0055))
    resumed = JobNumbers(plan(space), tmp_path)
    resumed.resuming({"a0"})  # what the restored experiment state knew
    assert as_tune_keeps_it(resumed)(trial("b1", 0.0055)) == "job_1"
    assert as_tune_keeps_it(resumed)(trial("b2", 0.0026)) == "job_2"


def test_a_number_is_never_shared_with_a_known_trial_or_one_of_this_driver(tmp_path):
    """Two trials with the same values (a choice() search can draw them twice) are two jobs: outside a
    resume; in a resume when the earlier trial is known to the restored experiment; and when a trial of this
    very driver already took the lost one's number."""
    space = build_search_space(ARGUMENTS)
    fresh = JobNumbers(plan(space), tmp_path)
    assert as_tune_keeps_it(fresh)(trial("a0", 0.0055)) == "job_0"
    assert as_tune_keeps_it(fresh)(trial("a1", 0.0055)) == "job_1"

    known = JobNumbers(plan(space), tmp_path)
    known.resuming({"a0", "a1"})
    assert as_tune_keeps_it(known)(trial("b0", 0.0055)) == "job_2"

    lost = JobNumbers(plan(space), tmp_path)
    lost.resuming({"a0", "a1"})  # b0 (job 2) was lost this time
    assert as_tune_keeps_it(lost)(trial("c0", 0.0055)) == "job_2"
    assert as_tune_keeps_it(lost)(trial("c1", 0.0055)) == "job_3"


def test_an_unreadable_experiment_takes_no_trial_for_a_lost_one(tmp_path):
    space = build_search_space(ARGUMENTS)
    as_tune_keeps_it(JobNumbers(plan(space), tmp_path))(trial("a0", 0.0055))
    resumed = JobNumbers(plan(space), tmp_path)
    resumed.resuming(None)
    assert as_tune_keeps_it(resumed)(trial("b0", 0.0055)) == "job_1"


def test_a_ledger_line_cut_short_by_a_killed_driver_is_skipped(tmp_path):
    space = build_search_space(ARGUMENTS)
    as_tune_keeps_it(JobNumbers(plan(space), tmp_path))(trial("a0", 0.001))
    with open(tmp_path / JobNumbers.LEDGER, "a") as ledger:
        ledger.write('{"trial_id": "a1", "jo')
    assert as_tune_keeps_it(JobNumbers(plan(space), tmp_path))(trial("b0", 0.002)) == "job_1"


def test_a_searcher_id_of_decimal_digits_is_not_taken_for_tune_s_counter(tmp_path):
    """Searchers' trial ids are 8 random hex digits, all decimal one time in 43 ("81030035"): numbered in
    order like any other, not as job 81030035. Tune's random search ids (<experiment>_<counter>) keep theirs,
    and a grid's trials are numbered by their position."""
    space = build_search_space(ARGUMENTS)
    numbers = JobNumbers(plan(space), tmp_path)
    assert as_tune_keeps_it(numbers)(trial("81030035", 0.001)) == "job_0"
    assert as_tune_keeps_it(numbers)(trial("3fa9c2d1", 0.002)) == "job_1"
    assert as_tune_keeps_it(JobNumbers(plan(space), tmp_path / "random"))(trial("1e65c_00002", 0.003)) == "job_2"
    grid = JobNumbers(plan(None, jobs=[["lr=0.1"], ["lr=0.2"]]), tmp_path / "grid")
    assert as_tune_keeps_it(grid)(SimpleNamespace(trial_id="x", config={"job": 1})) == "job_1"
