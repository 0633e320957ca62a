"""One training job: data, model, fit, evaluate the best checkpoint, write metrics.json.

Runs the same in a plain process and inside a sweep trial; whoever runs it may pass `on_epoch_end` to
hear about each finished epoch (metrics and the resumable state folder).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from .callbacks import EpochHook
from .schema import resolve_mode, validate

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
BEST_CHECKPOINT = Path("checkpoints") / "best.keras"
STATE_DIR = "state"


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
    (output_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    # TensorFlow is imported only now: a bad config above fails in milliseconds.
    from . import devices

    devices.configure_devices(cfg.distribution.cpu_replicas)

    import keras
    import tensorflow as tf

    from .callbacks import BestTracker, EpochState, ThroughputLogger, build_callbacks, mark_finished, read_state
    from .datasets import load_data
    from .hparams import session_callbacks
    from .models import build_model, compile_model
    from .optimizers import build_optimizer
    from .pipeline import build_pipelines

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

    state_dir = output_dir / STATE_DIR
    state = read_state(state_dir) if cfg.trainer.resume else None
    with strategy.scope():
        if state:
            model = keras.models.load_model(state_dir / "last.keras")
            log.info("Resuming from epoch %d found in %s", state["epochs_completed"], state_dir)
        else:
            model = build_model(cfg.model, data.spec, augmentation=cfg.get("augmentation"))
            optimizer = build_optimizer(cfg.optimizer, learning_rate)
            compile_model(model, optimizer, data.spec.task, cfg.trainer.jit_compile, cfg.trainer.steps_per_execution)

    history: list[dict] = list(state["history"]) if state else []
    tracker = BestTracker(cfg.metric, mode, state and state["best_value"], state and state["best_epoch"])
    throughput = ThroughputLogger(data.spec.num_train_examples)
    # Order matters: the throughput logger adds to the logs every later callback sees, and the state
    # (with the outside hook) comes after TensorBoard has written the epoch.
    configured = build_callbacks(cfg.trainer, cfg.metric, mode, output_dir, tracker.best_value)
    callbacks = [
        throughput,
        *configured,
        # Writes the HParams session now, so TensorBoard lists this job while it runs, and flushes
        # TensorBoard's files each epoch, before the state hook may upload them.
        *session_callbacks(cfg, overrides, model, configured),
        EpochState(state_dir, tracker, history, on_epoch_end),
    ]

    initial_epoch = state["epochs_completed"] if state else 0
    stopped_early = bool(state and state.get("stopped_early"))
    # A rerun continues up to trainer.epochs (raise it to train longer) unless early stopping ended the job.
    if initial_epoch < cfg.trainer.epochs and not stopped_early:
        model.fit(
            data.train,
            validation_data=data.validation,
            epochs=cfg.trainer.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=cfg.trainer.verbose,
        )
        stopped_early = len(history) < cfg.trainer.epochs
        mark_finished(state_dir, stopped_early)

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
        "checkpoint": str(BEST_CHECKPOINT) if best_path.is_file() else None,
        "history": history,
    }
    (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    return metrics
