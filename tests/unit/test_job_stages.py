"""The stage loop of a job (trainers/job.py run_stages): which stages train, from which epoch, after a
fresh start, early stopping and resumes. `fit` is simulated: these are the loop's decisions, not Keras'."""

from __future__ import annotations

from trainers.job import PlannedStage, run_stages
from trainers.job_files import Stage

PLAN = [PlannedStage("train", 3, 1e-3), PlannedStage("fine_tune", 2, 1e-5)]


class Job:
    """Records what run_stages asks for; `stop_after` ends a fit early (as EarlyStopping would) at that epoch."""

    def __init__(self, history_epochs: int = 0, stop_after: set[int] = frozenset()):
        self.history = [{"epoch": epoch} for epoch in range(1, history_epochs + 1)]
        self.stop_after = set(stop_after)
        self.calls: list[tuple] = []

    def fit(self, end_epoch: int) -> None:
        self.calls.append(("fit", len(self.history) + 1, end_epoch))
        while len(self.history) < end_epoch:
            self.history.append({"epoch": len(self.history) + 1})
            if len(self.history) in self.stop_after:
                break

    def begin(self, plan: PlannedStage) -> Stage:
        self.calls.append(("begin", plan.name, len(self.history) + 1))
        return Stage(plan.name, len(self.history) + 1, plan.learning_rate, trainable_weights=30, unfrozen_layers=14)

    def run(self, stages: list[Stage], stopped_early: bool = False) -> bool:
        return run_stages(
            PLAN, stages, self.history, stopped_early, fit=self.fit, begin=self.begin,
            save_state=lambda: self.calls.append(("save", len(stages))),
            fit_ended=lambda early: self.calls.append(("fit_ended", early)),
        )


def train_stage() -> Stage:
    return Stage("train", 1, 1e-3, trainable_weights=2)


def test_a_fresh_job_trains_each_stage_after_the_other_with_epochs_numbered_on():
    job, stages = Job(), [train_stage()]
    assert job.run(stages) is False
    assert job.calls == [("fit", 1, 3), ("fit_ended", False), ("begin", "fine_tune", 4), ("save", 2),
                         ("fit", 4, 5), ("fit_ended", False)]
    assert [(stage.name, stage.first_epoch, stage.last_epoch, stage.stopped_early) for stage in stages] == [
        ("train", 1, 3, False), ("fine_tune", 4, 5, False)]


def test_early_stopping_ends_a_stage_and_the_next_begins_at_the_following_epoch():
    job, stages = Job(stop_after={2}), [train_stage()]
    assert job.run(stages) is False
    assert job.calls[:3] == [("fit", 1, 3), ("fit_ended", True), ("begin", "fine_tune", 3)]
    assert [(stage.first_epoch, stage.last_epoch, stage.stopped_early) for stage in stages] == [
        (1, 2, True), (3, 4, False)]


def test_a_job_resumed_during_fine_tuning_continues_it_without_training_the_first_stage_again():
    stages = [Stage("train", 1, 1e-3, 2, stopped_early=False), Stage("fine_tune", 4, 1e-5, 30, unfrozen_layers=14)]
    job = Job(history_epochs=4)
    job.run(stages)
    assert job.calls == [("fit", 5, 5), ("fit_ended", False)]
    assert stages[1].last_epoch == 5


def test_a_job_resumed_after_its_first_stage_stopped_early_goes_on_to_fine_tuning():
    job, stages = Job(history_epochs=2), [train_stage()]
    job.run(stages, stopped_early=True)  # progress.json: the first stage's fit ended early
    assert job.calls[0] == ("begin", "fine_tune", 3)
    assert stages[0].stopped_early is True and stages[0].last_epoch == 2


def test_a_rerun_with_more_epochs_continues_the_stage_but_not_one_that_stopped_early():
    plan = [PlannedStage("train", 5, 1e-3)]
    job = Job(history_epochs=3)
    run_stages(plan, [train_stage()], job.history, False, fit=job.fit, begin=job.begin,
               save_state=lambda: None, fit_ended=lambda early: None)
    assert job.calls == [("fit", 4, 5)]
    stopped = Job(history_epochs=3)
    assert run_stages(plan, [train_stage()], stopped.history, True, fit=stopped.fit, begin=stopped.begin,
                      save_state=lambda: None, fit_ended=lambda early: None) is True
    assert stopped.calls == []
