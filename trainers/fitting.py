"""A job's model trained stage by stage: a new model, or the one its saved state holds; a fresh optimizer
for each stage; the callbacks of each `fit`; the state saved between stages.

`resume_or_start` gives a `Fitting`, and its `run` trains the stages trainers/stages.py plans.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import keras

from .callbacks import (
    BestTracker,
    EpochHook,
    EpochState,
    StateHook,
    StepState,
    ThroughputLogger,
    build_callbacks,
    progress_record,
)
from .hparams import session_callbacks
from .hyperparameter_changes import apply_changes
from .input_wait import InputWaitClock
from .job_files import BEST_CHECKPOINT, STATE, Progress, Stage, update_progress, write_state
from .job_setup import JobSetup
from .models import build_model, compile_model
from .optimizers import build_optimizer
from .resume import load_resume_point
from .schedules import build_schedule
from .stages import PlannedStage, run_stages
from .transfer import fine_tuning_planned, unfreeze_last_layers

# The job's console and log-file lines name trainers.job, whichever of its modules writes them.
log = logging.getLogger("trainers.job")


def planned_stages(job: JobSetup) -> list[PlannedStage]:
    """"train" for every job; then "fine_tune" for model=transfer with model.fine_tune.epochs > 0."""
    cfg = job.cfg
    planned = [PlannedStage("train", cfg.trainer.epochs, job.learning_rate)]
    if fine_tuning_planned(cfg.model):
        planned.append(PlannedStage("fine_tune", cfg.model.fine_tune.epochs, cfg.model.fine_tune.lr))
    return planned


def compile_for_stage(job: JobSetup, model: keras.Model, stage_lr: float, stage_epochs: int) -> None:
    """Compile `model` for a stage of `stage_epochs` epochs at `stage_lr`. Call in the strategy's scope."""
    # A fresh optimizer per stage: its step counter, and so any lr_schedule, starts at the stage's start.
    cfg = job.cfg
    schedule = build_schedule(cfg.get("lr_schedule"), stage_lr, stage_epochs * job.steps)
    optimizer = build_optimizer(cfg.optimizer, schedule)
    compile_model(model, optimizer, job.data.spec.task, cfg.trainer.jit_compile, cfg.trainer.steps_per_execution)


def resume_or_start(job: JobSetup, output_dir: Path, on_epoch_end: Optional[EpochHook] = None,
                    overrides: Sequence[str] = (), on_state_saved: Optional[StateHook] = None) -> "Fitting":
    """The model and progress of the newest usable state in `output_dir` (with trainer.resume), else a new
    model compiled for the first stage; either way with the lr, optimizer.* and model.dropout `job.cfg`
    names now. A state saved within an epoch resumes at its step (the epoch's batches before it skipped)."""
    cfg = job.cfg
    with job.strategy.scope():
        state, model = load_resume_point(output_dir, keras.models.load_model) if cfg.trainer.resume else (None, None)
        if state:
            log.info("Resuming from %s found in %s", state.describe_position(), output_dir)
        else:
            model = build_model(cfg.model, job.data.spec, augmentation=cfg.get("augmentation"))
            compile_for_stage(job, model, job.learning_rate, cfg.trainer.epochs)
    fitting = Fitting(job, output_dir, model, state, on_epoch_end, overrides, on_state_saved)
    fitting.apply_config_changes()
    return fitting


class Fitting:
    """One job's model, its progress (history, best epoch, stages begun) and how each stage trains it."""

    def __init__(self, job: JobSetup, output_dir: Path, model: keras.Model, state: Optional[Progress],
                 on_epoch_end: Optional[EpochHook], overrides: Sequence[str],
                 on_state_saved: Optional[StateHook] = None):
        self.job, self.output_dir, self.model = job, output_dir, model
        self.on_epoch_end, self.overrides, self.on_state_saved = on_epoch_end, overrides, on_state_saved
        # A state saved within an epoch: the first fit trains that epoch's remaining steps only.
        self.resumed_mid_epoch = state if state and state.steps_into_epoch else None
        self.state_dir = output_dir / STATE
        self.resumed = bool(state)
        self.resumed_from_epoch = state.epochs_completed if state else 0
        self.stopped_early_before = bool(state and state.stopped_early)
        self.history: list[dict] = list(state.history) if state else []
        self.tracker = BestTracker(job.cfg.metric, job.mode, state and state.best_value, state and state.best_epoch)
        # Times each training batch's wait at the end of the pipeline (trainers/input_wait.py).
        self.input_wait = InputWaitClock() if job.cfg.trainer.time_input_wait else None
        self.throughput = ThroughputLogger(job.data.spec.num_train_examples, self.input_wait)
        self.planned = planned_stages(job)
        self.stages: list[Stage] = list(state.stages) if state else []
        if not self.stages:  # a new job, or a state written before stages were recorded
            self.stages = [Stage("train", first_epoch=1, learning_rate=job.learning_rate,
                                 trainable_weights=len(model.trainable_weights))]

    def apply_config_changes(self) -> None:
        # lr, optimizer.* and model.dropout may differ from the resumed state's (population-based training
        # explores them): the new values apply from the next epoch on, and the stage records them.
        job, plan = self.job, self.planned[min(len(self.stages), len(self.planned)) - 1]
        with job.strategy.scope():
            apply_changes(self.model, job.cfg, self.stages[-1], plan.learning_rate,
                          lambda new_lr: build_schedule(job.cfg.get("lr_schedule"), new_lr, plan.epochs * job.steps),
                          len(self.history), self.resumed)

    def run(self) -> bool:
        """Train the stages not trained yet; returns whether the last one ended by early stopping."""
        return run_stages(
            self.planned, self.stages, self.history, self.stopped_early_before,
            fit=self.fit, begin=self.begin_fine_tuning, save_state=self.save_state, fit_ended=self.fit_ended,
        )

    def callbacks(self, resumed: Optional[Progress] = None) -> list:
        # New callbacks per fit, as after a resume: early stopping and plateau counting start again, the
        # checkpoint only takes epochs better than the best so far, TensorBoard adds files to the same run.
        # Order matters: the throughput logger adds to the logs every later callback sees, and the state
        # (with the outside hook) comes after TensorBoard has written the epoch; the step state last, so that
        # a stop asked for during an epoch's last step finds that epoch's state saved.
        cfg = self.job.cfg
        configured = build_callbacks(cfg.trainer, cfg.metric, self.job.mode, self.output_dir, self.tracker.best_value)
        return [
            self.throughput,
            *configured,
            # Writes the HParams session now, so TensorBoard lists this job while it runs, and flushes
            # TensorBoard's files each epoch, before the state hook may upload them.
            *session_callbacks(cfg, self.overrides, self.model, configured),
            EpochState(self.state_dir, self.tracker, self.history, self.on_epoch_end, self.stages),
            StepState(self.state_dir, self.job.data.train, cfg.trainer.save_every_steps, self.progress,
                      self.on_state_saved, resumed),
        ]

    def progress(self, epochs_completed: int) -> Progress:
        return progress_record(epochs_completed, self.tracker, self.history, self.stages)

    def fit(self, end_epoch: int) -> None:
        order = self.job.data.train
        resumed, self.resumed_mid_epoch = self.resumed_mid_epoch, None
        if resumed is not None:
            # The epoch the state was saved in, from its next step: its own `fit`, as Keras gives every epoch
            # of a fit the same number of steps. Its callbacks start again at that epoch's end.
            epoch, skip = len(self.history) + 1, resumed.steps_into_epoch
            rate_examples = self.throughput.num_train_examples
            self.throughput.num_train_examples = round(rate_examples * (order.steps - skip) / order.steps)
            try:
                self._fit(order.rest_of_epoch(epoch, skip), epoch, self.callbacks(resumed))
            finally:
                self.throughput.num_train_examples = rate_examples
            if len(self.history) < epoch or self.model.stop_training or epoch >= end_epoch:
                return
        self._fit(order.every_epoch(), end_epoch, self.callbacks())

    def _fit(self, batches, end_epoch: int, callbacks: list) -> None:
        self.model.fit(
            self.input_wait.timed(batches) if self.input_wait is not None else batches,
            validation_data=self.job.data.validation,
            epochs=end_epoch,
            initial_epoch=len(self.history),
            callbacks=callbacks,
            verbose=self.job.cfg.trainer.verbose,
            shuffle=False,  # the training split is shuffled per epoch (trainers/epoch_order.py)
        )

    def begin_fine_tuning(self, plan: PlannedStage) -> Stage:
        model, model_cfg = self.model, self.job.cfg.model
        first_epoch = len(self.history) + 1
        with self.job.strategy.scope():
            unfrozen = unfreeze_last_layers(model, model_cfg.backbone, model_cfg.fine_tune.unfreeze_layers)
            compile_for_stage(self.job, model, plan.learning_rate, plan.epochs)
        log.info(
            "Fine-tuning from epoch %d at lr %g: %d of %s's last %d layers unfrozen (BatchNormalization stays frozen)",
            first_epoch, plan.learning_rate, unfrozen, model_cfg.backbone, model_cfg.fine_tune.unfreeze_layers,
        )
        return Stage(plan.name, first_epoch, plan.learning_rate, len(model.trainable_weights), unfrozen_layers=unfrozen)

    def save_state(self) -> None:
        write_state(self.state_dir, self.model, self.progress(len(self.history)))

    def fit_ended(self, stopped_early: bool) -> None:
        update_progress(self.state_dir, finished=True, stopped_early=stopped_early)

    def best_model(self) -> keras.Model:
        """The best epoch's model (checkpoints/best.keras) when the checkpoint callback wrote one, else the last."""
        best_path = self.output_dir / BEST_CHECKPOINT
        if not best_path.is_file():
            return self.model
        with self.job.strategy.scope():
            return keras.models.load_model(best_path)
