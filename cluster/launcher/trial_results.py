"""What each trial of a finished (or interrupted) Tune run came to: one leaderboard row and Hydra's JobReturn,
built from what the trial reported and returned, never from files on the node that ran it.

Status: COMPLETED (the job returned), STOPPED (the scheduler ended it early), FAILED (it kept failing),
INTERRUPTED (the sweep was stopped, e.g. Ctrl-C, before it ended: rerunning the command resumes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from hydra.core.utils import JobReturn, JobStatus, filter_overrides

from cluster.launcher import leaderboard
from cluster.launcher.job_configs import task_config
from cluster.launcher.tune_trial import DONE_KEY, LINEAGE_KEY, returned_value
from cluster.private_apis import experiment_trials


def _best_reported(history, metric: Optional[str], mode: str) -> tuple[Optional[float], Optional[int], Optional[int]]:
    """(best value, its epoch, last epoch) over the trial's epoch reports."""
    if history is None or metric is None or metric not in history or "epoch" not in history:
        return None, None, None
    reports = history.dropna(subset=[metric, "epoch"])
    if not len(reports):
        return None, None, None
    pick = reports[metric].idxmin() if mode == "min" else reports[metric].idxmax()
    return float(reports.loc[pick, metric]), int(reports.loc[pick, "epoch"]), int(reports["epoch"].max())


def _status(trial, last: dict, interrupted: bool) -> str:
    if last.get(DONE_KEY):
        return "COMPLETED"
    if trial.status == "ERROR":
        return "FAILED"
    if interrupted or trial.status != "TERMINATED":
        return "INTERRUPTED"
    return "STOPPED"


def failures_of(trial) -> int:
    """How many times the trial's process failed (Tune retried it up to max_failures)."""
    return int(getattr(getattr(trial, "run_metadata", None), "num_failures", 0) or 0)


def _events(status: str, epochs: Optional[int], last: dict, scheduler: Optional[str], failures: int = 0) -> list[str]:
    """What happened to the trial besides training: crashes Tune retried, where PBT copied it from, where a
    scheduler stopped it."""
    import json

    events = []
    if failures and status != "FAILED":
        events.append(f"crashed {failures} time{'s' if failures > 1 else ''} and was retried (see its trial.log)")
    lineage = last.get(LINEAGE_KEY)
    for entry in json.loads(lineage) if isinstance(lineage, str) else []:
        before = dict(item.split("=", 1) for item in entry.get("overrides_before") or [] if "=" in item)
        after = dict(item.split("=", 1) for item in entry.get("overrides") or [] if "=" in item)
        changed = ", ".join(f"{key} {before.get(key, '-')} -> {value}"
                            for key, value in after.items() if before.get(key) != value)
        events.append(f"exploited job {entry.get('job')} at its epoch {entry.get('epoch')}"
                      + (f" ({changed})" if changed else ""))
    if status == "STOPPED":
        events.append(f"stopped by {scheduler or 'the scheduler'} after epoch {epochs if epochs is not None else '?'}")
    return events


class JobView:
    """What a row and a JobReturn need of a job: its folder and overrides at once, its config (costly to build
    for each of thousands of jobs) only when something reads the JobReturn's cfg or hydra_cfg."""

    def __init__(self, overrides: list, job_dir: str, task_name: str, make_config: Callable[[], Any]):
        self.overrides, self.job_dir, self.task_name, self.make_config = overrides, job_dir, task_name, make_config

    @classmethod
    def of(cls, sweep_config) -> "JobView":
        sweep = sweep_config.hydra.sweep
        return cls(list(sweep_config.hydra.overrides.task), f"{sweep.dir}/{sweep.subdir}",
                   str(sweep_config.hydra.job.name), lambda: sweep_config)


class _LazyJobReturn(JobReturn):
    """Hydra's JobReturn whose cfg (the task's config) and hydra_cfg are built on first access."""

    def __init__(self, job: JobView, **kwargs):
        self._job, self._built = job, None
        super().__init__(cfg=None, hydra_cfg=None, **kwargs)

    def _configs(self):
        if self._built is None:
            sweep_config = self._job.make_config()
            self._built = (task_config(sweep_config), sweep_config)
        return self._built

    @property
    def cfg(self):
        return self._configs()[0]

    @cfg.setter
    def cfg(self, value) -> None:
        if value is not None:
            self._built = (value, self._configs()[1])

    @property
    def hydra_cfg(self):
        return self._configs()[1]

    @hydra_cfg.setter
    def hydra_cfg(self, value) -> None:
        if value is not None:
            self._built = (self._configs()[0], value)


def _job_return(job: JobView) -> JobReturn:
    return _LazyJobReturn(job, overrides=job.overrides, working_dir=job.job_dir, task_name=job.task_name)


def outcome(trial, result, num: int, job: "JobView", metric: Optional[str], mode: str,
            interrupted: bool = False, scheduler: Optional[str] = None) -> tuple[leaderboard.Row, JobReturn]:
    """The leaderboard row and the JobReturn of one trial."""
    job = job if isinstance(job, JobView) else JobView.of(job)
    job_dir = Path(job.job_dir)
    overrides = list(job.overrides)
    last = result.metrics or {}
    returned = returned_value(last)
    value, best_epoch, epochs = _best_reported(result.metrics_dataframe, metric, mode)
    if isinstance(returned, dict) and metric and isinstance(returned.get(metric), (int, float)):
        # The task's own account, which also covers epochs it ran before a restore (not reported again).
        value, best_epoch = float(returned[metric]), returned.get("best_epoch", best_epoch)
        epochs = returned.get("epochs", epochs)
    elif isinstance(returned, (int, float)) and not isinstance(returned, bool) and value is None:
        value = float(returned)
    status = _status(trial, last, interrupted)
    # The end of the error: its last line says what was raised (a traceback's top says only where).
    error = None if result.error is None else str(result.error)[-2000:]
    row = leaderboard.Row(
        job=num, trial_id=str(trial.trial_id), status=status, value=value, best_epoch=best_epoch, epochs=epochs,
        wall_time_s=last.get("time_total_s"), overrides=" ".join(filter_overrides(overrides)), job_dir=str(job_dir),
        # The sweep's store names it later (pipeline); a task may return a path of its own.
        checkpoint=str(job_dir / returned["checkpoint"])
        if isinstance(returned, dict) and returned.get("checkpoint") else None,
        # Tune adds the address of the node that sent each result.
        node=last.get("node_ip"), error=error, events=_events(status, epochs, last, scheduler, failures_of(trial)),
        summary=_summary(returned),
    )
    job_return = _job_return(job)
    if status in ("FAILED", "INTERRUPTED"):
        job_return.status = JobStatus.FAILED
        job_return.return_value = result.error or RuntimeError(f"job #{num} was interrupted before it ended")
    else:
        job_return.status, job_return.return_value = JobStatus.COMPLETED, returned
    return row, job_return


def _summary(returned: Any) -> dict:
    """The task's `summary` when it returned one: the scalar values only (a table cell each)."""
    found = returned.get("summary") if isinstance(returned, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(name): value for name, value in found.items()
            if isinstance(value, (int, float, str, bool)) or value is None}


def trials_with_results(result_grid) -> list[tuple[Any, Any]]:
    """(Tune trial, its Result) pairs: the grid lists results in the order of the experiment's trials."""
    return list(zip(experiment_trials(result_grid), result_grid))


def never_started(num: int, job: "JobView") -> tuple[leaderboard.Row, JobReturn]:
    """A job of the grid whose trial the run never created (it was interrupted first)."""
    job = job if isinstance(job, JobView) else JobView.of(job)
    row = leaderboard.Row(job=num, trial_id="", status="INTERRUPTED", value=None, best_epoch=None, epochs=None,
                          wall_time_s=None, overrides=" ".join(filter_overrides(job.overrides)), job_dir=job.job_dir,
                          checkpoint=None)
    job_return = _job_return(job)
    job_return.status, job_return.return_value = JobStatus.FAILED, RuntimeError(f"job #{num} never started")
    return row, job_return
