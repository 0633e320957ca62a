"""A sweep's books (cluster.launcher.sweep_books.audit): trials, jobs, leaderboard rows and the store's results agree,
or the sweep says which do not. No Ray: the rows and records are what a finished sweep would have."""

from __future__ import annotations

import json

from cluster.launcher.leaderboard import Row
from cluster.launcher.sweep_books import audit


def row(tmp_path, job: int, trial_id: str, status: str = "COMPLETED", record_by: str | None = None) -> Row:
    folder = tmp_path / str(job)
    folder.mkdir(exist_ok=True)
    if record_by is not None:
        (folder / "trial.json").write_text(json.dumps({"trial_id": record_by}))
    return Row(job=job, trial_id=trial_id, status=status, value=0.1, best_epoch=1, epochs=2, wall_time_s=1.0,
               overrides=f"lr={job}", job_dir=str(folder), checkpoint=None)


def test_books_that_agree_say_nothing(tmp_path):
    rows = [row(tmp_path, number, f"t{number}", record_by=f"t{number}") for number in range(3)]
    stored = {str(number): {"finished": True, "trial_id": f"t{number}"} for number in range(3)}
    assert audit([(f"t{number}", number) for number in range(3)], rows, stored) == []
    assert audit([(f"t{number}", number) for number in range(3)], rows, None) == []


def test_four_trials_numbered_as_one_job_are_named(tmp_path):
    """The bug of issue 19: four Optuna trials all became job 0 and the leaderboard had one row."""
    rows = [row(tmp_path, 0, "d", record_by="d")]
    problems = audit([("a", 0), ("b", 0), ("c", 0), ("d", 0)], rows, None)
    assert any("job 0 was run by 4 trials (a, b, c, d)" in problem for problem in problems)
    assert any("Tune ran 4 trials, which make 1 jobs and 1 leaderboard rows" in problem for problem in problems)


def test_a_job_record_written_by_another_trial_is_named(tmp_path):
    """Two trials in one folder leave the record of whichever wrote last: the folder's (no store) or the
    store's (the folder may be on another node)."""
    rows = [row(tmp_path, 0, "a", record_by="b"), row(tmp_path, 1, "b", record_by="b")]
    problems = audit([("a", 0), ("b", 1)], rows, None)
    assert problems == ["job 0's record (0/trial.json) was written by trial b, not by its own trial a"]
    stored = {"0": {"finished": True, "trial_id": "a"}, "1": {"finished": True, "trial_id": "a"}}
    assert audit([("a", 0), ("b", 1)], rows, stored) == [
        "job 1's record (1/trial.json) was written by trial a, not by its own trial b"]


def test_a_completed_trial_without_results_in_the_store_is_named(tmp_path):
    rows = [row(tmp_path, 0, "a"), row(tmp_path, 1, "b"), row(tmp_path, 2, "c", status="FAILED")]
    stored = {"0": {"finished": True, "trial_id": "a"}, "2": {"finished": False, "trial_id": "c"}}
    assert audit([("a", 0), ("b", 1), ("c", 2)], rows, stored) == [
        "job 1 completed but its results are not in the store (trial folder 1)"]


def test_a_grid_job_that_never_started_is_not_a_lost_trial(tmp_path):
    rows = [row(tmp_path, 0, "a"), row(tmp_path, 1, "", status="INTERRUPTED")]
    assert audit([("a", 0)], rows, None) == []
