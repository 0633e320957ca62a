"""Launch Keras training jobs composed by Hydra.

    python launch.py                                   # cnn on the offline digits data, CPU, ~15 s on 2 cores
    python launch.py model=lstm lr=1e-4 trainer.epochs=3
    python launch.py data=timeseries data.path=F.csv data.target=COL model=lstm   # forecast; vs the naive forecast
    python launch.py export.onnx=true export.tfjs=true  # also ONNX and TensorFlow.js beside the checkpoint
    python launch.py --cfg job                         # print the composed config (Hydra's flags all work)
    python launch.py tensorboard outputs/              # TensorBoard over jobs or a sweep (HParams tab)
    python launch.py storage.uri=gs://my-bucket/exp    # also copy results to a bucket while training
    python launch.py pull --list results               # sweeps in a store; `pull --help` for downloads
    python launch.py push ./photos gs://B/data/photos  # a local data set into a bucket (`push --help`)
    python launch.py data=image_folder data.path=gs://B/data/photos   # data (or model.weights) from a bucket,
                                                       # downloaded once per node into its cache
    python launch.py -m ... storage.uri=gs://B/exp hydra.launcher.submit=http://127.0.0.1:8265
                                                       # a sweep on a Ray cluster
    python launch.py jobs                              # submitted sweeps: list, logs --follow, stop
    python launch.py resume gs://B/exp/SWEEP           # a sweep whose machine (or folder) is gone, from the bucket
    python launch.py resume gs://B/exp/SWEEP hydra.launcher.submit=http://127.0.0.1:8265   # ... on a Ray cluster

Each job writes to its Hydra output folder: resolved_config.yaml, metrics.json, tensorboard/,
checkpoints/best.keras (and state/ for resuming). A sweep with a store also keeps its driver's state there
(<store>/<sweep>/driver/), so `resume` (or its own command) continues it on any machine.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Optional

# Keep TensorFlow's C++ start-up chatter out of the console unless the user asks for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.errors import CompactHydraException, ConfigCompositionException, MissingConfigException  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig, read_write  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from cluster.launcher.job_configs import SweepError, SweepRefused  # noqa: E402
from cluster.launcher.trial_context import current_trial, report_epoch  # noqa: E402
from cluster.results.inputs import local_inputs, validate_job  # noqa: E402
from cluster.results.session import JobUploads  # noqa: E402
from cluster.results.watch import watch_line  # noqa: E402
from cluster.store import StorageError  # noqa: E402
from cluster.submission.submit import SubmitError  # noqa: E402
from trainers.console import hide_tensorflow_startup_lines  # noqa: E402
from trainers.job_files import BEST_CHECKPOINT, METRICS, TENSORBOARD, newest_usable_state  # noqa: E402
from trainers.preemption import PREEMPTED_EXIT_STATUS, Preempted  # noqa: E402
from trainers.schema import (  # noqa: E402
    ConfigError,
    composition_error_message,
    planned_epochs,
    register_schemas,
    resolve_mode,
)

register_schemas()

# A job stopped by SIGTERM (a spot VM's preemption gives ~30 s) waits this long at most for its state's upload.
PREEMPTED_UPLOAD_SECONDS = 20.0

# Hydra prints an error of its own and exits 1 unless this is set, in which case it raises the error.
FULL_ERROR = "HYDRA_FULL_ERROR"
_full_error_set_here = False


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
        seasonal = naive.get("seasonal_naive")
        if seasonal:
            lines.append(
                f"  vs seasonal-naive forecast (a season of {seasonal['season']} rows) {seasonal['test_mae']:.4g}: "
                f"the model {'beats it' if seasonal['beats_seasonal_naive'] else 'does NOT beat it'}"
            )
        for target, scores in (naive.get("targets") or {}).items():  # beats_naive above: on every target
            lines.append(
                f"  {target}: test MAE {scores['test_mae']:.4g} vs naive {scores['naive_test_mae']:.4g}: "
                f"{'beats it' if scores['beats_naive'] else 'does NOT beat it'}"
            )
    lines.append(f"Outputs: {output_dir}")
    if metrics["checkpoint"]:
        lines.append(f"  best model:  {os.path.join(output_dir, metrics['checkpoint'])}")
    lines += [
        f"  metrics:     {os.path.join(output_dir, METRICS)}",
        f"  TensorBoard: tensorboard --logdir {os.path.join(output_dir, TENSORBOARD)}",
    ]
    return lines


def rehearse_gpus_on_cpu(cfg: DictConfig) -> None:
    """Rehearsal of a GPU sweep on CPU: as many CPU replicas as Ray gave the trial GPU ids. The trainer
    only splits the CPU when TensorFlow sees no GPU, so on a real GPU node this changes nothing."""
    trial = current_trial()
    if trial is not None and trial.gpu_ids and cfg.resources.rehearse_gpus_on_cpu:
        with read_write(cfg):
            cfg.distribution.cpu_replicas = len(trial.gpu_ids)


def run_explaining_config_errors(app) -> None:
    """Run the Hydra app, so that a value a field's type refuses while Hydra composes the config
    (precision=fp8) is refused like any other bad value: named with the values allowed, exit status 2.

    Hydra reports what goes wrong itself and exits 1, unless HYDRA_FULL_ERROR=1 makes it raise: so that is
    set until the job starts (main() unsets it, and Hydra reports the job's own errors as usual); other
    errors before then are printed as Hydra prints them."""
    global _full_error_set_here
    _full_error_set_here = os.environ.get(FULL_ERROR) != "1"
    os.environ[FULL_ERROR] = "1"
    try:
        app()
    except Exception as error:  # noqa: BLE001 - printed below, as Hydra would, when not a config value
        message = composition_error_message(error)
        if message is not None:
            if not isinstance(error, ConfigCompositionException):  # e.g. a sweep naming the job it could not compose
                print(error, file=sys.stderr)
            print(f"Config error: {message}", file=sys.stderr)
            sys.exit(2)
        if not _full_error_set_here:
            raise
        # Bad input is one line and exit status 2, for a sweep as for a single job; a sweep that ran and did
        # not succeed is its message and status 1. Neither needs Hydra's hint about stack traces.
        if isinstance(error, MissingConfigException) and error.options is not None:
            print(f"Config error: {unknown_option_message(error)}", file=sys.stderr)
            sys.exit(2)
        if isinstance(error, (SweepRefused, SubmitError)):
            print(error, file=sys.stderr)
            sys.exit(2)
        if isinstance(error, SweepError):
            print(error, file=sys.stderr)
            sys.exit(1)
        if isinstance(error, CompactHydraException):
            print(error, file=sys.stderr)
            if isinstance(error.__cause__, OmegaConfBaseException):
                print(error.__cause__, file=sys.stderr)
        else:
            traceback.print_exc()
        print(f"\nSet the environment variable {FULL_ERROR}=1 for a complete stack trace.", file=sys.stderr)
        sys.exit(1)
    finally:
        restore_hydra_error_reports()


def unknown_option_message(error: MissingConfigException) -> str:
    """`model=cnnn`: the group, what was received and the options, in one line (Hydra's block is 14 lines)."""
    group, _, option = str(error.missing_cfg_file or "").rpartition("/")
    if not group:
        return str(error).splitlines()[0]
    return (f"{group}={option}: there is no such option in conf/{group}/. Allowed: {', '.join(error.options)}. "
            f"For example `{group}={error.options[0]}`.")


def restore_hydra_error_reports() -> None:
    global _full_error_set_here
    if _full_error_set_here:
        os.environ.pop(FULL_ERROR, None)
        _full_error_set_here = False


def _start_uploads(cfg: DictConfig, hydra_cfg) -> Optional[JobUploads]:
    """The job's uploads to its store (None without one). Before any training: a bad storage.uri, missing bucket or
    credentials fail here in seconds. With a store, the job folder first gets this job's newest resumable state
    (its own or the store's)."""
    trial = current_trial()
    # A trial of population-based training may start from another trial's state, put in this job's folder by the
    # sweep: it must not be replaced by this trial's own older state from the store.
    inherited = trial.inherited if trial else None
    return JobUploads.start(cfg.get("storage"), hydra_cfg, cfg.metric, resolve_mode(cfg.metric, cfg.mode),
                            resume=cfg.trainer.resume and not inherited, sweep_id=trial.sweep_id if trial else None)


class JobReports:
    """What the trainer calls as it goes: each epoch's end goes to the uploads, then to the sweep."""

    def __init__(self, uploads: Optional[JobUploads], output_dir: Path, last_epoch: int):
        self.uploads, self.output_dir, self.last_epoch = uploads, output_dir, last_epoch

    def on_epoch_end(self, epoch: int, logs: dict, state_dir: str) -> None:
        # The uploads first (they only queue work), then the sweep (a no-op outside one): a scheduler may stop the
        # trial at this report, and the job's last uploads then include this epoch. `state`: what this job
        # resumes from (population-based training hands it to the trials that exploit this one).
        if self.uploads is not None:
            self.uploads.on_epoch_end(epoch, logs, state_dir)
        state = [state_dir] + [str(path) for path in [self.output_dir / BEST_CHECKPOINT] if path.is_file()]
        report_epoch(epoch, logs, last=epoch >= self.last_epoch, state=state)

    def on_state_saved(self, state_dir: str) -> None:  # within an epoch: uploaded like an epoch's state
        if self.uploads is not None:
            self.uploads.on_state_saved(state_dir)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    restore_hydra_error_reports()  # the config is composed: from here on Hydra reports errors itself
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    uploads = None
    preempted = False
    try:
        rehearse_gpus_on_cpu(cfg)
        validate_job(cfg)
        uploads = _start_uploads(cfg, hydra_cfg)
        if hydra_cfg.mode == RunMode.RUN:  # once every check passed; a sweep prints one line for all its trials
            print(watch_line(output_dir), flush=True)
            hide_tensorflow_startup_lines()  # a trial's log keeps them
        resumed = newest_usable_state(Path(output_dir)) if cfg.trainer.resume else None
        if resumed is not None and any(resumed.position):
            print(f"[raylaunch] resuming from {resumed.folder} ({resumed.progress.describe_position()})", flush=True)
        reports = JobReports(uploads, Path(output_dir), planned_epochs(cfg))
        # Inputs named by a bucket URI: this node's copy (downloaded once per node, shared by its trials). The
        # trainers get the local paths; resolved_config.yaml keeps the URIs.
        local_cfg = local_inputs(cfg)
        from trainers.job import train  # TensorFlow loads here, after the cheap checks above

        # The overrides (what the user set or swept) become HParams in TensorBoard.
        metrics = train(local_cfg, output_dir, on_epoch_end=reports.on_epoch_end,
                        overrides=list(hydra_cfg.overrides.task), recorded_config=cfg,
                        on_state_saved=reports.on_state_saved)
    except ConfigError as error:
        print(f"Config error: {error}", file=sys.stderr)
        sys.exit(2)
    except StorageError as error:
        print(f"Storage error: {error}", file=sys.stderr)
        sys.exit(2)
    except Preempted as stopped:
        # The uploads below are bounded: a preempted VM is gone ~30 s after its shutdown signal.
        print(f"[raylaunch] {stopped}", flush=True)
        preempted = True
        sys.exit(PREEMPTED_EXIT_STATUS)
    finally:
        if uploads is not None:  # also when training failed: keep what it produced so far
            uploads.finish(PREEMPTED_UPLOAD_SECONDS if preempted else None)
    print("\n".join(summary_lines(metrics, output_dir) + (uploads.summary_lines() if uploads else [])))
    # For a sweep's leaderboard: the metric's value is the best epoch's, over every epoch run (a resumed job
    # did not report its earlier epochs again).
    return {**metrics, cfg.metric: metrics["best_value"], "epochs": metrics["epochs_run"]}


if __name__ == "__main__":
    # Subcommands are dispatched before Hydra parses argv.
    if sys.argv[1:2] == ["tensorboard"]:
        from cluster.results.watch import main as tensorboard_main

        tensorboard_main(sys.argv[2:])
    if sys.argv[1:2] == ["pull"]:
        from cluster.results.pull import main as pull_main

        hide_tensorflow_startup_lines()  # pull loads each model it installs

        sys.exit(pull_main(sys.argv[2:]))
    if sys.argv[1:2] == ["push"]:
        from cluster.results.push import main as push_main

        sys.exit(push_main(sys.argv[2:]))
    if sys.argv[1:2] == ["jobs"]:
        from cluster.submission.jobs_cli import main as jobs_main

        sys.exit(jobs_main(sys.argv[2:]))
    if sys.argv[1:2] == ["resume"]:  # then runs the sweep's recorded command, its state restored from the store
        from cluster.launcher.resume import main as resume_main

        sys.argv[1:] = resume_main(sys.argv[2:])
    run_explaining_config_errors(main)
