"""Launch Keras training jobs composed by Hydra.

    python launch.py                                   # cnn on the offline digits data, CPU, ~15 s on 2 cores
    python launch.py model=lstm lr=1e-4 trainer.epochs=3
    python launch.py data=timeseries data.path=F.csv data.target=COL model=lstm   # forecast; vs the naive forecast
    python launch.py export.onnx=true export.tfjs=true  # also ONNX and TensorFlow.js beside the checkpoint
    python launch.py --cfg job                         # print the composed config (Hydra's flags all work)
    python launch.py tensorboard outputs/              # TensorBoard over jobs or a sweep (HParams tab)
    python launch.py storage.uri=gs://my-bucket/exp    # also copy results to a bucket while training
    python launch.py pull --list results               # sweeps in a store; `pull --help` for downloads

Each job writes to its Hydra output folder: resolved_config.yaml, metrics.json, tensorboard/,
checkpoints/best.keras (and state/ for resuming).
"""

from __future__ import annotations

import os
import sys

# Keep TensorFlow's C++ start-up chatter out of the console unless the user asks for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from cluster.storage import StorageError  # noqa: E402
from cluster.storage.session import JobUploads  # noqa: E402
from cluster.trial import combine_epoch_hooks, current_epoch_hook  # noqa: E402
from cluster.watch import watch_line  # noqa: E402
from trainers.schema import ConfigError, register_schemas, resolve_mode, validate  # noqa: E402

register_schemas()


def summary_lines(metrics: dict, output_dir: str) -> list[str]:
    test = ", ".join(f"{name} {value:.4f}" for name, value in metrics["test"].items())
    lines = [
        f"Best {metrics['metric']}: {metrics['best_value']:.4f} at epoch {metrics['best_epoch']} "
        f"of {metrics['epochs_run']} ({metrics['replicas']} replica(s), {metrics['precision']}, "
        f"{metrics['train_samples_per_second']:.0f} samples/s)",
        f"Test: {test}",
    ]
    naive = metrics.get("naive_forecast")
    if naive:  # forecasting: is the model better than repeating the last observed value?
        verdict = "beats it" if naive["beats_naive"] else "does NOT beat it"
        if naive["test_mae"] > 0:
            verdict += f" ({naive['model_test_mae'] / naive['test_mae'] - 1:+.0%})"
        lines.append(
            f"Forecast test MAE {naive['model_test_mae']:.4g} vs naive forecast (last observed value) "
            f"{naive['test_mae']:.4g}: the model {verdict}"
        )
    lines.append(f"Outputs: {output_dir}")
    if metrics["checkpoint"]:
        lines.append(f"  best model:  {os.path.join(output_dir, metrics['checkpoint'])}")
    lines += [
        f"  metrics:     {os.path.join(output_dir, 'metrics.json')}",
        f"  TensorBoard: tensorboard --logdir {os.path.join(output_dir, 'tensorboard')}",
    ]
    return lines


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    uploads = None
    try:
        validate(cfg)
        if hydra_cfg.mode == RunMode.RUN:  # a sweep prints one line for all its trials
            print(watch_line(output_dir), flush=True)
        # Before any training: a bad storage.uri, missing bucket or credentials fail here in seconds.
        uploads = JobUploads.start(cfg.get("storage"), hydra_cfg, cfg.metric, resolve_mode(cfg.metric, cfg.mode))
        # Uploads run on their own thread; the hook only queues what the epoch changed.
        hook = combine_epoch_hooks(current_epoch_hook(), uploads and uploads.on_epoch_end)
        from trainers.job import train  # TensorFlow loads here, after the cheap checks above

        # The overrides (what the user set or swept) become HParams in TensorBoard.
        metrics = train(cfg, output_dir, on_epoch_end=hook, overrides=list(hydra_cfg.overrides.task))
    except ConfigError as error:
        print(f"Config error: {error}", file=sys.stderr)
        sys.exit(2)
    except StorageError as error:
        print(f"Storage error: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        if uploads is not None:  # also when training failed: keep what it produced so far
            uploads.finish()
    print("\n".join(summary_lines(metrics, output_dir) + (uploads.summary_lines() if uploads else [])))
    return metrics


if __name__ == "__main__":
    # Subcommands are dispatched before Hydra parses argv.
    if sys.argv[1:2] == ["tensorboard"]:
        from cluster.watch import main as tensorboard_main

        tensorboard_main(sys.argv[2:])
    if sys.argv[1:2] == ["pull"]:
        from cluster.pull import main as pull_main

        sys.exit(pull_main(sys.argv[2:]))
    main()
