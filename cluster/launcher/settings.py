"""The launcher's settings (`hydra.launcher`), typed, in one place: the schema Hydra checks them against
(hydra_plugins/ray_tune_launcher/config.py registers it) and the object the launcher reads, built once.

The launcher reads nothing of an app's own config: what it needs of each job (the metric, the resources a
trial asks for, where results go, how to check a job) is set here, which an app fills in by interpolation so
each job's values are its own, e.g. in the app's primary config:

    hydra:
      launcher:
        metric: ${metric}
        resources: {cpus: ${resources.cpus}, gpus: ${resources.gpus}}
        validate: my_app.schema.validate

No `from __future__ import annotations`: OmegaConf reads these annotations as types.
"""

import shlex
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Dict, List, NamedTuple, Optional

from omegaconf import OmegaConf


class Mode(Enum):
    min = "min"
    max = "max"


@dataclass
class TrialResourcesConf:
    # What one trial asks Ray for: CPUs and GPUs (fractions allowed). MirroredStrategy-style jobs use every
    # GPU Ray grants them (CUDA_VISIBLE_DEVICES).
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass
class LauncherSettings:
    # Address of a running Ray cluster, e.g. 10.0.0.5:6379. null: $RAY_ADDRESS if set, else an embedded
    # local Ray started for this sweep and stopped after it.
    address: Optional[str] = None
    # Extra ray.init keywords. Only the keys set here are passed, which matters when attaching to a
    # cluster (a default object_store_memory breaks attaching); e.g. {num_cpus: 2, num_gpus: 2} locally.
    init: Dict[str, Any] = field(default_factory=dict)
    # Seconds to wait for the cluster address to answer before giving up with an error.
    connect_timeout_s: float = 10.0
    # Trials running at once (null: as many as the cluster's resources allow).
    max_concurrent_trials: Optional[int] = None
    # Times a trial that crashed is restarted (the task resumes from its own saved state). Interruptions are
    # retried without counting (trial_failures.py): its process told to stop (SIGTERM: a preempted spot VM), its
    # task exiting with status 75 (EX_TEMPFAIL: stopped on request, state saved), its node lost.
    max_failures: int = 2
    # Tune's console progress view: 0 silent, 1 status updates, 2 also every reported epoch.
    verbose: int = 1
    # The metric trials report (cluster.launcher.trial_context.report_epoch) and the leaderboard ranks by;
    # null: trials are not compared (a scheduler needs one).
    metric: Optional[str] = None
    # Whether a lower or a higher metric is better (an app with a rule of its own resolves it into this).
    mode: Mode = Mode.min
    # Dotted name of a callable (e.g. my_app.schema.validate) called with each job's config (no `hydra`
    # node) before anything runs; raising stops the sweep with the job named.
    validate: Optional[str] = None
    resources: TrialResourcesConf = field(default_factory=TrialResourcesConf)
    # Where the sweep's results go (gs://BUCKET/PREFIX or a folder): the sweep's name is claimed there,
    # each trial's record kept, the leaderboard names checkpoints by their URI. null: no store.
    storage: Optional[str] = None
    # Dotted name of the class that keeps the app's results in that store (cluster.launcher.sweep_results
    # says what it provides); needed when `storage` is set.
    results: Optional[str] = None
    # Submit the whole sweep from outside the cluster as one Ray job, e.g. http://127.0.0.1:8265 (the head's
    # dashboard, through a tunnel). Also taken from an http:// RAY_ADDRESS or RAY_API_SERVER_ADDRESS.
    submit: Optional[str] = None
    # Where submitted sweeps keep their folders on the head node ("~" is the job's home there).
    cluster_dir: str = "~/raylaunch"
    # Names of environment variables of this machine that a submitted sweep's job gets (credentials never).
    job_env: List[str] = field(default_factory=list)
    # The command that shows TensorBoard over a sweep in a bucket, `{where}` its URI (TensorBoard reads no
    # gs:// by itself); null: `tensorboard --logdir {where}`. Sweeps in a folder always use the latter.
    watch_bucket: Optional[str] = None
    # The app's config group of ready-made searchers and schedulers (e.g. hparams_search), named in messages.
    search_presets: Optional[str] = None
    # The app's command that resumes a sweep from its store on any machine, `{where}` the sweep's URI (the app
    # runs cluster.launcher.resume for it), named in messages; null: only rerunning the same command is named.
    resume_command: Optional[str] = None

    @classmethod
    def of(cls, values: Any) -> "LauncherSettings":
        """From a job's `hydra.launcher` node or the launcher's keyword arguments (keys it does not know, such
        as `_target_`, are left out)."""
        plain = OmegaConf.to_container(values, resolve=True) if OmegaConf.is_config(values) else {
            key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            for key, value in dict(values).items()}
        known = {item.name for item in fields(cls)}
        kept = {key: value for key, value in plain.items() if key in known}
        if "mode" in kept:
            kept["mode"] = _mode(kept["mode"])
        if isinstance(kept.get("resources"), dict):
            kept["resources"] = TrialResourcesConf(**kept["resources"])
        kept["init"] = dict(kept.get("init") or {})
        kept["job_env"] = list(kept.get("job_env") or [])
        return cls(**kept)

    @property
    def mode_name(self) -> str:
        return self.mode.value

    def watch_line(self, where: str) -> str:
        """The line a sweep prints before its first trial: how to watch `where` (its folder or its URI)."""
        in_bucket = "://" in where and not where.startswith("file://")
        command = (self.watch_bucket.format(where=shlex.quote(where)) if in_bucket and self.watch_bucket
                   else f"tensorboard --logdir {shlex.quote(where)}")
        return f"Watch it: {command}   (then open http://localhost:6006, HPARAMS tab)"

    def resume_line(self, where: str) -> Optional[str]:
        """How to resume the sweep at `where` (its URI in the store) from any machine; None if the app says not."""
        return self.resume_command.format(where=shlex.quote(where)) if self.resume_command else None


class Objective(NamedTuple):
    """What every trial of a sweep optimises, agreed from its jobs' settings: metric None compares nothing."""

    metric: Optional[str]
    mode: str


def _mode(value: Any) -> Mode:
    if isinstance(value, Mode):
        return value
    name = str(value).rsplit(".", 1)[-1]  # an enum may arrive as "Mode.min"
    try:
        return Mode(name)
    except ValueError:
        from cluster.launcher.job_configs import SweepRefused

        raise SweepRefused(f"hydra.launcher.mode must be min or max, received {value!r}") from None
