"""Callbacks from config, plus those the job needs for itself: throughput/learning-rate logging, the
per-epoch resumable state, and the state saved within an epoch (every trainer.save_every_steps steps, and
when the process is asked to stop: trainers/preemption.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from .epoch_order import TrainingOrder
from .input_wait import InputWaitClock
from .job_files import BEST_CHECKPOINT, TENSORBOARD, Progress, Stage, write_state
from .preemption import Preempted, stop_requested

# Called after every epoch, once that epoch's resumable state is on disk:
# (epoch number counted from 1, the epoch's logs, the state folder).
EpochHook = Callable[[int, dict, str], None]
# Called after each state saved within an epoch (trainer.save_every_steps, a stop request): (the state folder).
StateHook = Callable[[str], None]

log = logging.getLogger("trainers.job")


class ThroughputLogger(keras.callbacks.Callback):
    """Adds `samples_per_second` (training part of the epoch only), `input_wait_fraction` (the part of that time
    spent waiting for the next training batch, when given the clock that times the batches:
    trainers/input_wait.py) and `learning_rate` to the logs, so TensorBoard and every later callback see them."""

    def __init__(self, num_train_examples: int, input_wait: Optional[InputWaitClock] = None):
        super().__init__()
        self.num_train_examples = num_train_examples
        self.input_wait = input_wait
        self._epoch_start = 0.0
        self._wait_start = 0.0
        self._train_seconds: Optional[float] = None
        self._wait_seconds: Optional[float] = None
        self.epoch_rates: list[float] = []
        # Per epoch: (seconds waiting for input, seconds of training), for the job's figure.
        self.epoch_waits: list[tuple[float, float]] = []

    def _waited(self) -> float:
        return self.input_wait.seconds() - self._wait_start if self.input_wait is not None else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._train_seconds = self._wait_seconds = None
        self._wait_start = self.input_wait.seconds() if self.input_wait is not None else 0.0
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._train_seconds is None:  # validation inside fit starts: training part is over
            self._train_seconds = time.perf_counter() - self._epoch_start
            self._wait_seconds = self._waited()

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._train_seconds or (time.perf_counter() - self._epoch_start)
        waited = self._waited() if self._wait_seconds is None else self._wait_seconds
        rate = self.num_train_examples / seconds
        self.epoch_rates.append(rate)
        if self.input_wait is not None:
            self.epoch_waits.append((waited, seconds))
        if logs is not None:
            logs["samples_per_second"] = rate
            if self.input_wait is not None:
                logs["input_wait_fraction"] = waited / seconds
            logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def steady_rate(self) -> float:
        """Mean rate after the first epoch, which pays for tracing the graph."""
        rates = self.epoch_rates[1:] or self.epoch_rates
        return sum(rates) / len(rates) if rates else 0.0

    def steady_input_wait(self) -> Optional[float]:
        """Seconds waiting for input over seconds of training, summed over the epochs after the first (which
        pays for tracing, and fills the cache); None when the batches were not timed."""
        waits = self.epoch_waits[1:] or self.epoch_waits
        seconds = sum(total for _, total in waits)
        return sum(waited for waited, _ in waits) / seconds if seconds else None


class BestTracker:
    def __init__(self, metric: str, mode: str, best_value: Optional[float] = None, best_epoch: Optional[int] = None):
        self.metric, self.mode = metric, mode
        self.best_value, self.best_epoch = best_value, best_epoch

    def update(self, epoch: int, logs: dict) -> None:
        value = logs.get(self.metric)
        if value is None:
            raise KeyError(
                f"metric={self.metric!r} is not among this job's logged metrics {sorted(logs)}; "
                f"set metric to one of them, e.g. metric=val_loss."
            )
        value = float(value)
        better = self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value)
        if better:
            self.best_value, self.best_epoch = value, epoch


class EpochState(keras.callbacks.Callback):
    """Writes `state/` after each epoch (last model with optimizer, progress.json) so a job killed
    mid-run resumes from its last finished epoch, then calls the outside hook."""

    def __init__(
        self, state_dir: Path, tracker: BestTracker, history: list[dict], hook: Optional[EpochHook], stages: list[Stage]
    ):
        super().__init__()
        self.state_dir, self.tracker, self.history, self.hook = state_dir, tracker, history, hook
        self.stages = stages

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        number = epoch + 1
        self.tracker.update(number, logs)
        self.history.append({"epoch": number, **logs})
        write_state(self.state_dir, self.model, progress_record(number, self.tracker, self.history, self.stages))
        if self.hook is not None:
            self.hook(number, logs, str(self.state_dir))


class StepState(keras.callbacks.Callback):
    """Sets each epoch's data order (trainers/epoch_order.py) and saves `state/` within epochs: every
    `save_every_steps` training steps (counted over the whole job, so the saves fall on the same steps
    after a resume) and at the end of the step during which the process was asked to stop, which then
    raises `Preempted`. A state saved so records the steps done in the epoch and the epoch's training
    metrics so far; a fit that resumes one (`resumed`: that progress) adds those metrics back after its
    first step, so the epoch's logged metrics cover all its steps."""

    def __init__(self, state_dir: Path, order: TrainingOrder, save_every_steps: Optional[int],
                 progress: Callable[[int], Progress], hook: Optional[StateHook], resumed: Optional[Progress] = None):
        """`progress(epochs_completed)`: the job's progress record as of now."""
        super().__init__()
        self.state_dir, self.order, self.save_every_steps = state_dir, order, save_every_steps
        self.progress, self.hook, self.resumed = progress, hook, resumed
        self.epoch = 1  # counted from 1
        self.steps_before = resumed.steps_into_epoch if resumed else 0  # of the epoch this fit starts in
        self.done = 0  # steps of the current epoch done

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.order.set_epoch(self.epoch)
        self.done = self.steps_before

    def on_epoch_end(self, epoch, logs=None):
        self.steps_before = 0
        reason = stop_requested()
        if reason:  # asked during the epoch's last step or its validation: the epoch's state is saved (EpochState)
            raise Preempted(reason, f"epoch {self.epoch}", str(self.state_dir))

    def on_train_batch_end(self, batch, logs=None):
        before, self.done = self.done, self.steps_before + batch + 1
        if self.resumed is not None:
            self._add_resumed_metrics()
        if self.done >= self.order.steps:
            return  # the epoch's end saves the state
        reason = stop_requested()
        if reason:
            self.save()
            raise Preempted(reason, f"step {self.done} of epoch {self.epoch}", str(self.state_dir))
        every = self.save_every_steps
        job_step = (self.epoch - 1) * self.order.steps
        if every and (job_step + self.done) // every > (job_step + before) // every:
            self.save()

    def save(self) -> None:
        metrics = {variable.path: np.asarray(variable).tolist() for variable in self.model.metrics_variables}
        progress = replace(self.progress(self.epoch - 1), steps_into_epoch=self.done, epoch_metrics=metrics)
        write_state(self.state_dir, self.model, progress)
        if self.hook is not None:
            self.hook(str(self.state_dir))

    def _add_resumed_metrics(self) -> None:
        """After the resumed epoch's first step: its metric variables hold that step's part; add the rest."""
        saved, self.resumed = self.resumed.epoch_metrics, None
        variables = {variable.path: variable for variable in self.model.metrics_variables}
        if set(saved) != set(variables):
            log.warning("The resumed epoch's training metrics cover only the steps after the resume: the saved "
                        "metrics (%s) are not this model's (%s)", sorted(saved), sorted(variables))
            return
        for path, value in saved.items():
            variable = variables[path]
            variable.assign(np.asarray(variable) + np.asarray(value, dtype=variable.dtype))


def progress_record(epochs_completed: int, tracker: BestTracker, history: list[dict], stages: list[Stage]) -> Progress:
    """The job's progress after `epochs_completed` epochs; `stages` are the training stages begun so far."""
    return Progress(epochs_completed, tracker.best_value, tracker.best_epoch, history, stages)


def build_callbacks(trainer_cfg, metric: str, mode: str, output_dir: Path, best_so_far: Optional[float]) -> list:
    """The configured Keras callbacks, in the order they must see each epoch's logs."""
    settings = trainer_cfg.callbacks
    callbacks: list = []
    if settings.early_stopping.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=metric,
                mode=mode,
                patience=settings.early_stopping.patience,
                min_delta=settings.early_stopping.min_delta,
                restore_best_weights=True,
            )
        )
    if settings.reduce_lr_on_plateau.enabled:
        plateau = settings.reduce_lr_on_plateau
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=metric, mode=mode, factor=plateau.factor, patience=plateau.patience, min_lr=plateau.min_lr
            )
        )
    if settings.checkpoint.enabled:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                filepath=str(output_dir / BEST_CHECKPOINT),
                monitor=metric,
                mode=mode,
                save_best_only=True,
                # After a resume, only an epoch better than every earlier one replaces the checkpoint.
                initial_value_threshold=best_so_far,
            )
        )
    if settings.tensorboard.enabled:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(output_dir / TENSORBOARD),
                update_freq=settings.tensorboard.update_freq,
                histogram_freq=settings.tensorboard.histogram_freq,
                write_graph=False,
            )
        )
    return callbacks
