"""One training job: data, model, fit, evaluate the best checkpoint, write metrics.json.

Runs the same in a plain process and inside a sweep trial; whoever runs it may pass `on_epoch_end` to
hear about each finished epoch (metrics and the resumable state folder).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from .job_files import BEST_CHECKPOINT, EXPORT, METRICS, RESOLVED_CONFIG, STATE, Stage, update_progress, write_state
from .schema import resolve_mode, validate

if TYPE_CHECKING:  # callbacks imports Keras: this module loads without TensorFlow until train() runs
    from .callbacks import EpochHook

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("saved_model", "tflite", "onnx", "tfjs")


def train(
    cfg: DictConfig,
    output_dir: str | Path,
    on_epoch_end: Optional[EpochHook] = None,
    overrides: Sequence[str] = (),
) -> dict:
    """Train the job `cfg` describes, writing every artefact under `output_dir`; return metrics.json's content.

    `overrides` are the job's command-line overrides (e.g. `lr=1e-4`): they join the hyperparameters
    shown in TensorBoard's HParams dashboard.
    """
    validate(cfg)
    started = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    from .export import check_export_target, check_exportable

    check_export_target(output_dir / EXPORT, cfg.get("export"))

    # TensorFlow is imported only now: a bad config above fails in milliseconds.
    from . import devices

    devices.configure_devices(cfg.distribution.cpu_replicas)

    import keras
    import tensorflow as tf

    from .callbacks import BestTracker, EpochState, ThroughputLogger, build_callbacks, progress_record
    from .datasets import load_data
    from .hparams import session_callbacks
    from .hyperparameter_changes import apply_changes
    from .models import build_model, compile_model
    from .optimizers import build_optimizer
    from .pipeline import build_pipelines
    from .resume import load_resume_point
    from .schedules import build_schedule, steps_per_epoch
    from .transfer import fine_tuning_planned, unfreeze_last_layers

    keras.utils.set_random_seed(cfg.seed)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = devices.apply_precision(cfg.precision)
    strategy = devices.build_strategy(cfg.distribution.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    global_batch_size = cfg.trainer.batch_size * replicas
    learning_rate = cfg.lr * replicas if cfg.distribution.scale_lr else cfg.lr
    mode = resolve_mode(cfg.metric, cfg.mode)

    data = build_pipelines(cfg.data, load_data(cfg.data), global_batch_size, cfg.seed)
    # Categorical columns and the precision (auto) are known only now, still before training.
    check_exportable(data.spec, cfg.get("export"), policy)
    steps = steps_per_epoch(data.spec.num_train_examples, global_batch_size)

    def compile_for_stage(stage_lr: float, stage_epochs: int) -> None:
        # A fresh optimizer per stage: its step counter, and so any lr_schedule, starts at the stage's start.
        schedule = build_schedule(cfg.get("lr_schedule"), stage_lr, stage_epochs * steps)
        optimizer = build_optimizer(cfg.optimizer, schedule)
        compile_model(model, optimizer, data.spec.task, cfg.trainer.jit_compile, cfg.trainer.steps_per_execution)

    state_dir = output_dir / STATE
    with strategy.scope():
        state, model = load_resume_point(output_dir, keras.models.load_model) if cfg.trainer.resume else (None, None)
        if state:
            log.info("Resuming from epoch %d found in %s", state.epochs_completed, output_dir)
        else:
            model = build_model(cfg.model, data.spec, augmentation=cfg.get("augmentation"))
            compile_for_stage(learning_rate, cfg.trainer.epochs)

    history: list[dict] = list(state.history) if state else []
    tracker = BestTracker(cfg.metric, mode, state and state.best_value, state and state.best_epoch)
    throughput = ThroughputLogger(data.spec.num_train_examples)

    planned = [PlannedStage("train", cfg.trainer.epochs, learning_rate)]
    if fine_tuning_planned(cfg.model):
        planned.append(PlannedStage("fine_tune", cfg.model.fine_tune.epochs, cfg.model.fine_tune.lr))
    stages = list(state.stages) if state else []
    if not stages:  # a new job, or a state written before stages were recorded
        stages = [Stage("train", first_epoch=1, learning_rate=learning_rate, trainable_weights=len(model.trainable_weights))]
    # lr, optimizer.* and model.dropout may differ from the resumed state's (population-based training
    # explores them): the new values apply from the next epoch on, and the stage records them.
    current_plan = planned[min(len(stages), len(planned)) - 1]
    with strategy.scope():
        apply_changes(model, cfg, stages[-1], current_plan.learning_rate,
                      lambda new_lr: build_schedule(cfg.get("lr_schedule"), new_lr, current_plan.epochs * steps),
                      len(history), bool(state))

    def stage_callbacks() -> list:
        # New callbacks per fit, as after a resume: early stopping and plateau counting start again, the
        # checkpoint only takes epochs better than the best so far, TensorBoard adds files to the same run.
        # Order matters: the throughput logger adds to the logs every later callback sees, and the state
        # (with the outside hook) comes after TensorBoard has written the epoch.
        configured = build_callbacks(cfg.trainer, cfg.metric, mode, output_dir, tracker.best_value)
        return [
            throughput,
            *configured,
            # Writes the HParams session now, so TensorBoard lists this job while it runs, and flushes
            # TensorBoard's files each epoch, before the state hook may upload them.
            *session_callbacks(cfg, overrides, model, configured),
            EpochState(state_dir, tracker, history, on_epoch_end, stages),
        ]

    def fit(end_epoch: int) -> None:
        model.fit(
            data.train,
            validation_data=data.validation,
            epochs=end_epoch,
            initial_epoch=len(history),
            callbacks=stage_callbacks(),
            verbose=cfg.trainer.verbose,
            shuffle=False,  # the tf.data pipeline shuffles the training split itself
        )

    def begin_fine_tuning(plan: PlannedStage) -> Stage:
        first_epoch = len(history) + 1
        with strategy.scope():
            unfrozen = unfreeze_last_layers(model, cfg.model.backbone, cfg.model.fine_tune.unfreeze_layers)
            compile_for_stage(plan.learning_rate, plan.epochs)
        log.info(
            "Fine-tuning from epoch %d at lr %g: %d of %s's last %d layers unfrozen (BatchNormalization stays frozen)",
            first_epoch, plan.learning_rate, unfrozen, cfg.model.backbone, cfg.model.fine_tune.unfreeze_layers,
        )
        return Stage(plan.name, first_epoch, plan.learning_rate, len(model.trainable_weights), unfrozen_layers=unfrozen)

    def save_state() -> None:
        write_state(state_dir, model, progress_record(len(history), tracker, history, stages))

    def fit_ended(stopped_early: bool) -> None:
        update_progress(state_dir, finished=True, stopped_early=stopped_early)

    initial_epoch = state.epochs_completed if state else 0
    stopped_early = run_stages(
        planned, stages, history, bool(state and state.stopped_early),
        fit=fit, begin=begin_fine_tuning, save_state=save_state, fit_ended=fit_ended,
    )

    # Score the best epoch's weights, not the last epoch's.
    best_path = output_dir / BEST_CHECKPOINT
    if best_path.is_file():
        with strategy.scope():
            model = keras.models.load_model(best_path)
    test_metrics = model.evaluate(data.test, return_dict=True, verbose=0)

    metrics = {
        "metric": cfg.metric,
        "mode": mode,
        "best_value": tracker.best_value,
        "best_epoch": tracker.best_epoch,
        "test": {name: float(value) for name, value in test_metrics.items()},
        "epochs_run": len(history),
        "resumed_from_epoch": initial_epoch,
        "stopped_early": stopped_early,
        "wall_time_s": time.perf_counter() - started,
        "train_samples_per_second": throughput.steady_rate(),
        "replicas": replicas,
        "precision": policy,
        "global_batch_size": global_batch_size,
        "learning_rate": learning_rate,
        "num_train_examples": data.spec.num_train_examples,
        # What the saved model takes (shape, dtype, value range seen in training), for its callers.
        "inputs": data.spec.inputs(),
        "checkpoint": str(BEST_CHECKPOINT) if best_path.is_file() else None,
        # Where each training stage began and ended (model=transfer: "train" then "fine_tune").
        "stages": [stage.to_json() for stage in stages],
        "history": history,
    }
    if data.spec.columns:  # which columns the model took as numbers, one-hot categories or embeddings
        metrics["features"] = {
            column["name"]: column["encoding"] + (f" ({len(column['vocabulary'])} categories)" if "vocabulary" in column else "")
            for column in data.spec.columns
        }
    if data.naive_forecast_mae is not None:
        metrics["naive_forecast"] = compare_to_naive_forecast(data.naive_forecast_mae, metrics["test"]["mae"])
    export_cfg = cfg.get("export")
    if export_cfg is not None and any(export_cfg.get(name) for name in EXPORT_FORMATS):
        from .export import export_model

        metrics["export"] = export_model(model, output_dir / EXPORT, export_cfg)
    (output_dir / METRICS).write_text(json.dumps(metrics, indent=1))
    return metrics


@dataclass(frozen=True)
class PlannedStage:
    name: str
    epochs: int
    learning_rate: float


def run_stages(
    planned: Sequence[PlannedStage],
    stages: list[Stage],
    history: list[dict],
    stopped_early: bool,
    *,
    fit: Callable[[int], None],
    begin: Callable[[PlannedStage], Stage],
    save_state: Callable[[], None],
    fit_ended: Callable[[bool], None],
) -> bool:
    """Train the planned stages, one `fit` each, continuing a resumed job where it stopped; returns
    whether the last stage ended by early stopping.

    Epochs are numbered on across stages, so TensorBoard shows one run. `stages` lists the stages begun
    so far (from progress.json on a resume; the last is the one in progress), `history` one entry per
    finished epoch (the state callback appends to it during `fit(end_epoch)`). `stopped_early`: how the
    last stage listed ended, when it ended before a resume. A stage begins once the one before has
    converged (early stopping) or used its epochs: `begin` prepares the model for it (e.g. unfreezes
    layers) and `save_state` then saves it, so a job killed from then on resumes in the new stage.
    A rerun continues a stage up to its epochs (raise them to train longer) unless early stopping ended it.
    Fills in each stage's `stopped_early` and `last_epoch`.
    """
    for index, plan in enumerate(planned):
        if index < len(stages) - 1:
            continue  # finished before this job was resumed
        if index == len(stages):
            stages[-1].stopped_early = stopped_early
            stages.append(begin(plan))
            save_state()
            stopped_early = False
        end_epoch = stages[index].first_epoch - 1 + plan.epochs
        if len(history) < end_epoch and not stopped_early:
            fit(end_epoch)
            stopped_early = len(history) < end_epoch
            fit_ended(stopped_early)  # after early stopping a rerun does not train this stage again
    stages[-1].stopped_early = stopped_early
    for stage, following in zip(stages, stages[1:] + [None]):
        stage.last_epoch = following.first_epoch - 1 if following else len(history)
    return stopped_early


def compare_to_naive_forecast(naive_mae: dict, model_test_mae: float) -> dict:
    """The forecast's test MAE beside the naive forecast's (the last observed value), both in the target's
    units and on the same windows: a forecast that does not beat it has learnt nothing useful."""
    return {
        "forecast": "last observed value",
        "validation_mae": naive_mae["validation"],
        "test_mae": naive_mae["test"],
        "model_test_mae": model_test_mae,
        "beats_naive": model_test_mae < naive_mae["test"],
    }
