"""One training job: data, model, fit, evaluate the best checkpoint, write metrics.json.

Runs the same in a plain process and inside a sweep trial; whoever runs it may pass `on_epoch_end` to
hear about each finished epoch (metrics and the resumable state folder). The steps have modules of their
own: trainers/job_setup.py (devices, precision, strategy, data), trainers/fitting.py (resuming and each
stage's `fit`), trainers/stages.py (the stage plan and loop), trainers/evaluation.py (metrics.json).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from .evaluation import compare_to_naive_forecast, job_metrics
from .job_files import EXPORT, METRICS, RESOLVED_CONFIG
from .preemption import stop_on_sigterm
from .schema import validate
from .stages import PlannedStage, run_stages

if TYPE_CHECKING:  # callbacks imports Keras: this module loads without TensorFlow until train() runs
    from .callbacks import EpochHook, StateHook

# Importable from here as well as from their own modules.
__all__ = ["EXPORT_FORMATS", "PlannedStage", "compare_to_naive_forecast", "exports_requested", "run_stages", "train"]

EXPORT_FORMATS = ("saved_model", "tflite", "onnx", "tfjs")


def train(
    cfg: DictConfig,
    output_dir: str | Path,
    on_epoch_end: Optional[EpochHook] = None,
    overrides: Sequence[str] = (),
    recorded_config: Optional[DictConfig] = None,
    on_state_saved: Optional[StateHook] = None,
) -> dict:
    """Train the job `cfg` describes, writing every artefact under `output_dir`; return metrics.json's content.

    Args:
        cfg: the composed job config (conf/config.yaml); checked with `validate` first.
        output_dir: the job's folder: resolved_config.yaml, metrics.json, checkpoints/, state/, tensorboard/
            and export/ go there. A job rerun in the same folder resumes from its state (trainer.resume).
        on_epoch_end: called after each epoch, once its state is saved: (epoch, logs, state folder).
        overrides: the job's command-line overrides (e.g. `lr=1e-4`): they join the hyperparameters
            shown in TensorBoard's HParams dashboard.
        recorded_config: what resolved_config.yaml records (default `cfg`): the app's own config when `cfg`
            has local copies in place of what the user named (a bucket URI in data.path).
        on_state_saved: called after each state saved within an epoch (trainer.save_every_steps, or a stop
            asked for): (state folder).

    Raises `trainers.preemption.Preempted` when SIGTERM (or `request_stop`) stopped training: the state is
    saved at the step it stopped after, and a rerun in the same folder continues from that step.

    Example:
        >>> from hydra import compose, initialize_config_dir
        >>> from trainers.schema import register_schemas
        >>> register_schemas()
        >>> with initialize_config_dir(config_dir="/path/to/conf", version_base="1.3"):
        ...     cfg = compose("config", overrides=["model=mlp", "trainer.epochs=2"])
        >>> train(cfg, "outputs/mlp")["test"]["accuracy"]
    """
    validate(cfg)
    started = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(recorded_config or cfg, resolve=True))
    from .export import check_export_target

    check_export_target(output_dir / EXPORT, cfg.get("export"))

    # TensorFlow is imported only now: a bad config above fails in milliseconds.
    from .fitting import resume_or_start
    from .job_setup import set_up

    job = set_up(cfg)
    fitting = resume_or_start(job, output_dir, on_epoch_end, overrides, on_state_saved)
    with stop_on_sigterm():  # SIGTERM, or the process's exit in a sweep's trial: save and stop at the next step
        stopped_early = fitting.run()

    # Score the best epoch's weights, not the last epoch's.
    model = fitting.best_model()
    test_metrics = model.evaluate(job.data.test, return_dict=True, verbose=0)
    forecast_errors = None
    if job.data.naive_forecast_mae is not None:  # a forecast: its errors per target and series, beside the baselines'
        from .series_windows import model_test_errors

        forecast_errors = model_test_errors(model, job.data.test)
    metrics = job_metrics(job, fitting, test_metrics, stopped_early, started, forecast_errors)
    if exports_requested(cfg.get("export")):
        from .export import export_model

        metrics["export"] = export_model(model, output_dir / EXPORT, cfg.get("export"))
    (output_dir / METRICS).write_text(json.dumps(metrics, indent=1))
    return metrics


def exports_requested(export_cfg) -> bool:
    """Whether `export.*` asks for any serving format (saved_model, tflite, onnx, tfjs)."""
    return export_cfg is not None and any(export_cfg.get(name) for name in EXPORT_FORMATS)
