"""What runs inside one Ray Tune trial's process: compose the Hydra job, point its logs at its own file,
run the task function with the trial context it can report epochs through (trial_context.py), and send
its result to Tune. A task that resumes from its own saved state (the app's business) continues there.

Beside it: what the driver ships (sweep_plan.py), how trials are numbered (job_numbers.py), the trial's
record of its attempts (trial_record.py) and, under population-based training (SweepPlan.checkpoint_interval
set), the job state handed between trials (pbt_handover.py): an exploit is recorded in trial.json
(`lineage`) and sent with the final report. Other sweeps use no Tune checkpoint at all (after a killed
driver Tune would restore one its last snapshot named, which rotation may have deleted); PBT keeps every
checkpoint it took (see tuner.py).

Mirrors what Hydra's own launchers do on a worker (Singleton state shipped over, setup_globals, run_job),
so the job sees the same config, output folder and hydra.job.num/id as under the basic launcher.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional

from cluster.launcher.node_paths import hydra_context_on_this_node, on_this_node
from cluster.launcher.pbt_handover import StateSnapshots, take_over
from cluster.launcher.sweep_plan import SweepPlan
from cluster.launcher.trial_failures import INTERRUPTED_EXIT_STATUS, TrialInterrupted
from cluster.launcher.trial_record import (
    TRIAL_LOG,
    TrialStore,
    finished_before,
    read_record,
    record_attempt,
    record_end,
)
from cluster.private_apis import failed_job_error

log = logging.getLogger(__name__)

# Final-report keys (besides the metric): the task function's return value and a marker that the job ended.
RETURN_KEY = "return_value"
DONE_KEY = "job_finished"
# Final-report key: the trial's lineage under PBT (JSON list of exploits), for the leaderboard.
LINEAGE_KEY = "lineage"
# A trial a scheduler stops (ASHA, HyperBand) ends its process gracefully; the process waits at most this long
# for the task function to unwind (its `finally` blocks: uploads of the epoch it was stopped at).
STOP_GRACE_S = 120.0


def compose(plan: SweepPlan, overrides: list[str], num: int, trial_id: str, hydra_context=None):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    hydra_context = hydra_context or plan.hydra_context
    sweep_config = hydra_context.config_loader.load_sweep_config(plan.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = trial_id
        sweep_config.hydra.job.num = num
        # Hydra re-composes in Tune's trial folder (runtime.cwd = os.getcwd()): take the driver's absolute sweep
        # dir and working directory, so the job folder and relative config paths (storage.uri=results) are the user's.
        sweep_config.hydra.sweep.dir = str(plan.config.hydra.sweep.dir)
        # The driver's working directory is in Ray's copy of the checkout when it runs as a Ray job: this node's copy.
        sweep_config.hydra.runtime.cwd = on_this_node(str(plan.config.hydra.runtime.cwd))
    HydraConfig.instance().set_config(sweep_config)
    job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    return sweep_config, job_dir


def log_failure_before_the_job(sweep_config, num: int, trial_id: str) -> Optional[Path]:
    """A trial that fails before its job has a folder (its config does not compose on this node) still leaves
    its error in `<sweep dir>/<num>/trial.log`, the file the sweep's failure summary names, when the job folders
    are Hydra's default `${hydra.job.num}`. Call inside the `except`."""
    import traceback

    from omegaconf import OmegaConf

    if OmegaConf.to_container(sweep_config.hydra.sweep, resolve=False).get("subdir") != "${hydra.job.num}":
        return None
    path = Path(str(sweep_config.hydra.sweep.dir)) / str(num) / TRIAL_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as trial_log:
            trial_log.write(f"[raylaunch] trial {trial_id}, job #{num} failed before its job started (on "
                            f"{os.uname().nodename}, pid {os.getpid()}):\n{traceback.format_exc()}")
    except OSError:
        return None
    return path


def _redirect_output(path: Path) -> None:
    """Everything this process prints from now on (Python, TensorFlow's C++ logs, Keras progress bars)
    goes to the trial's own log file instead of the sweep's console. The process serves this trial only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _as_json(value: Any) -> Optional[str]:
    """One string, not a nested dict: Tune would print and log every nested key as its own column."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return None


def returned_value(result_metrics: dict) -> Any:
    """The task function's return value from a trial's final report (None when it did not finish)."""
    text = (result_metrics or {}).get(RETURN_KEY)
    return json.loads(text) if isinstance(text, str) else None


def _final_report(value: Any, held_back: dict, metric: Optional[str], lineage: Optional[list] = None) -> dict:
    """The trial's last report: the task's return value, the held-back last epoch if there was one, and
    the metric (from that epoch, else from the return value: a number, or a dict holding the metric)."""
    final = {DONE_KEY: True, RETURN_KEY: _as_json(value), **held_back}
    if lineage:
        kept = ("job", "epoch", "overrides_before", "overrides")
        final[LINEAGE_KEY] = _as_json([{key: entry.get(key) for key in kept}
                                       for entry in lineage])
    if metric is not None and metric not in final:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            final[metric] = float(value)
        elif isinstance(value, dict) and isinstance(value.get(metric), (int, float)):
            final[metric] = float(value[metric])
    if "epoch" not in final and isinstance(value, dict) and isinstance(value.get("epochs"), int):
        final["epoch"] = value["epochs"]
    return final


def _wait_at_exit_for_the_task():
    """Tune ends a stopped trial's process gracefully, without waiting for its training thread, which is then
    unwinding from its last report: the process's exit waits (bounded) until the task function has returned,
    so what its `finally` blocks do (the job's last uploads) is done. The returned event marks that."""
    import atexit
    import threading

    unwound = threading.Event()
    atexit.register(unwound.wait, STOP_GRACE_S)
    return unwound


class EpochReports:
    """What the task reports each epoch, passed on to Tune (with a PBT snapshot of its state when the sweep
    takes them). The last epoch's metrics are held back and sent with the job's result after its final work:
    a scheduler that ends trials at their last epoch (ASHA at max_t) would otherwise stop it before the task
    returns."""

    def __init__(self, snapshots: Optional[StateSnapshots]):
        self.snapshots = snapshots
        self.held_back: dict = {}
        self.stopped_at: Optional[int] = None  # the epoch after which Tune's scheduler stopped the trial

    def __call__(self, epoch: int, metrics: dict, last: bool, state_paths: list) -> None:
        from ray import tune

        if last:
            self.held_back.update(metrics, epoch=epoch)
            return
        checkpoint, folder = self.snapshots.checkpoint(epoch, state_paths) if self.snapshots else (None, None)
        try:
            tune.report({**metrics, "epoch": epoch}, checkpoint=checkpoint)
        except SystemExit:  # Tune stopped the trial (a scheduler's decision) while it waited on this report
            self.stopped_at = epoch
            raise
        finally:
            if folder is not None:  # Tune copied it into the experiment's folder
                import shutil

                shutil.rmtree(folder, ignore_errors=True)


def _run_job(plan: SweepPlan, hydra_context, sweep_config, num: int, job_dir: Path, reports: EpochReports):
    """Hydra's run_job in the trial, the task's exits told apart: a scheduler's stop, or the task's own error."""
    from hydra.core.utils import run_job

    from cluster.launcher.trial_context import leave_trial

    unwound = _wait_at_exit_for_the_task()
    try:
        return run_job(hydra_context=hydra_context, task_function=plan.task_function, config=sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except SystemExit as exit_:
        if reports.stopped_at is not None:
            print(f"[raylaunch] job #{num} was stopped by the sweep's scheduler after epoch {reports.stopped_at}; its "
                  f"final work (uploads) is done", flush=True)
            raise
        if exit_.code == INTERRUPTED_EXIT_STATUS:  # stopped on request, its state saved: retried, not counted
            raise TrialInterrupted(f"job #{num} was interrupted (exit status {exit_.code}: stopped on request, its "
                                   f"state saved); see {job_dir / TRIAL_LOG}") from None
        # The task function's own error exit; Tune must see a failure.
        raise RuntimeError(f"job #{num} exited with status {exit_.code}; see {job_dir / TRIAL_LOG}") from None
    finally:
        leave_trial()
        unwound.set()


def run_trial(config: dict, plan: SweepPlan) -> None:
    """The Tune function trainable: one Hydra job."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, setup_globals
    from ray import tune

    from cluster.launcher.trial_context import TrialInfo, enter_trial

    trial_id = tune.get_context().get_trial_id()
    num, overrides = plan.job_of(config, trial_id, tune.get_context().get_trial_name())
    Singleton.set_state(plan.singleton_state)
    setup_globals()
    hydra_context = hydra_context_on_this_node(plan.hydra_context)  # nodes may unpack the app elsewhere
    try:
        sweep_config, job_dir = compose(plan, overrides, num, trial_id, hydra_context)
    except Exception:
        log_failure_before_the_job(plan.config, num, trial_id)
        raise
    _redirect_output(job_dir / TRIAL_LOG)
    print(f"[raylaunch] trial {trial_id}, job #{num}: {' '.join(overrides)}", flush=True)
    stored = TrialStore(plan, sweep_config) if plan.store_uri else None
    finished = finished_before(job_dir, trial_id, overrides, stored)
    if finished is not None:
        print(f"[raylaunch] job #{num} had finished before the sweep was interrupted: its result is reported "
              f"again, the job is not rerun", flush=True)
        tune.report(finished)
        return
    inherited = take_over(job_dir, trial_id, overrides, stored) if plan.checkpoint_interval else None
    attempt = record_attempt(job_dir, trial_id, overrides, stored, inherited)
    # Relative paths in the job config mean the same as for a local Hydra job (Tune runs the trial in its own folder).
    runtime_cwd = str(sweep_config.hydra.runtime.cwd)
    if os.path.isdir(runtime_cwd):
        os.chdir(runtime_cwd)
    reports = EpochReports(StateSnapshots(job_dir, plan.checkpoint_interval, {
        "trial_id": trial_id, "job": num, "overrides": overrides}) if plan.checkpoint_interval else None)
    enter_trial(TrialInfo(sweep_id=plan.sweep_id, gpu_ids=tuple(attempt["gpu_ids"]), inherited=inherited), reports)
    result = _run_job(plan, hydra_context, sweep_config, num, job_dir, reports)
    if result.status == JobStatus.FAILED:
        record_end(job_dir, stored)
        raise RuntimeError(f"job #{num} failed; see {job_dir / TRIAL_LOG}") from failed_job_error(result)
    lineage = (read_record(job_dir, None) or {}).get("lineage")
    final = _final_report(result.return_value, reports.held_back, plan.metric, lineage)
    record_end(job_dir, stored, final)
    tune.report(final)
