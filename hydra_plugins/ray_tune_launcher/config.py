"""Config schemas of the `ray_tune` launcher and sweeper, registered in Hydra's ConfigStore on import.

Hydra imports every module under hydra_plugins/ at start-up, so this imports nothing heavy (and has no
`from __future__ import annotations`: Hydra loads it outside sys.modules, where dataclasses cannot resolve
string annotations).

The launcher reads nothing of an app's own config: what it needs of each job (the metric, the resources a
trial asks for, where results go, how to check a job) is set in `hydra.launcher`, which an app fills in by
interpolation so each job's values are its own, e.g. in the app's primary config:

    hydra:
      launcher:
        metric: ${metric}
        resources: {cpus: ${resources.cpus}, gpus: ${resources.gpus}}
        validate: my_app.schema.validate
"""


from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


class Mode(Enum):
    # auto: Keras' rule, max for accuracy-like metrics (acc, auc, precision, recall, f1), min for the rest.
    auto = "auto"
    min = "min"
    max = "max"


@dataclass
class TrialResourcesConf:
    # What one trial asks Ray for: CPUs and GPUs (fractions allowed). MirroredStrategy-style jobs use every
    # GPU Ray grants them (CUDA_VISIBLE_DEVICES).
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass
class RayTuneLauncherConf:
    _target_: str = "hydra_plugins.ray_tune_launcher.ray_tune_launcher.RayTuneLauncher"
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
    # Times a trial whose process or node died is restarted (the task resumes from its own saved state).
    max_failures: int = 2
    # Tune's console progress view: 0 silent, 1 status updates, 2 also every reported epoch.
    verbose: int = 1
    # The metric trials report (cluster.launcher.trial_context.report_epoch) and the leaderboard ranks by; null:
    # trials are not compared (a scheduler needs one).
    metric: Optional[str] = None
    mode: Mode = Mode.auto
    # Dotted name of a callable (e.g. my_app.schema.validate) called with each job's config (no `hydra`
    # node) before anything runs; raising stops the sweep with the job named.
    validate: Optional[str] = None
    resources: TrialResourcesConf = field(default_factory=TrialResourcesConf)
    # Where the sweep's results go (gs://BUCKET/PREFIX or a folder): the sweep's name is claimed there,
    # each trial's record kept, the leaderboard names checkpoints by their URI. null: no store.
    storage: Optional[str] = None
    # Submit the whole sweep from outside the cluster as one Ray job, e.g. http://127.0.0.1:8265 (the head's
    # dashboard, through a tunnel). Also taken from an http:// RAY_ADDRESS or RAY_API_SERVER_ADDRESS.
    submit: Optional[str] = None
    # Where submitted sweeps keep their folders on the head node ("~" is the job's home there).
    cluster_dir: str = "~/raylaunch"
    # Names of environment variables of this machine that a submitted sweep's job gets (credentials never).
    job_env: List[str] = field(default_factory=list)


@dataclass
class RayTuneSweeperConf:
    _target_: str = "hydra_plugins.ray_tune_launcher.ray_tune_sweeper.RayTuneSweeper"
    # search_alg and scheduler arrive as configs: the pipeline builds them (with the metric, mode, PBT's mutations).
    _recursive_: bool = False
    # A search is asked for by any of: num_samples, an interval() override, a search_alg or a scheduler. Without
    # one, -m runs Hydra's grid: comma lists, range() and choice() each enumerate every value, as in Hydra.
    # In a search, interval(), choice() and range() are sampled; comma lists stay grid dimensions.
    # Trials drawn per combination of the comma lists (null: 1 when a search is asked for otherwise).
    num_samples: Optional[int] = None
    # A Tune searcher as a `_target_` config, e.g. ray.tune.search.optuna.OptunaSearch (conf/hparams_search/):
    # it proposes each trial's values from the results so far. null: independent random draws (Tune's
    # BasicVariantGenerator). Tune passes it the launcher's metric and mode, and limits it to
    # hydra.launcher.max_concurrent_trials trials at once.
    search_alg: Optional[Any] = None
    # A Tune scheduler as a `_target_` config (e.g. ray.tune.schedulers.ASHAScheduler with time_attr: epoch);
    # null: every trial runs all its epochs. Tune passes it the launcher's metric and mode.
    scheduler: Optional[Any] = None
    # Seed for the sampled values (null: random); a given seed proposes the same first trials again.
    seed: Optional[int] = None
    # Population-based training only (a PopulationBasedTraining scheduler): the override keys a job can take
    # on between epochs (`*` matches within a key: optimizer.*). PBT copies trials into each other and changes
    # these; a sweep over any other key is refused before launch.
    mutable: List[str] = field(default_factory=list)
    # Grid only: jobs per Tune run (null: all at once), as in Hydra's basic sweeper.
    max_batch_size: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="ray_tune", node=RayTuneLauncherConf, provider="raylaunch")
ConfigStore.instance().store(group="hydra/sweeper", name="ray_tune", node=RayTuneSweeperConf, provider="raylaunch")
