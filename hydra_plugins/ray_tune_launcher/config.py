"""Config schemas of the `ray_tune` launcher and sweeper, registered in Hydra's ConfigStore on import. The
launcher's fields are cluster.launcher.settings.LauncherSettings (what they mean is said there).

Hydra imports every module under hydra_plugins/ at start-up, so this imports nothing heavy (and has no
`from __future__ import annotations`: Hydra loads it outside sys.modules, where dataclasses cannot resolve
string annotations).
"""


from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore

from cluster.launcher.settings import LauncherSettings


@dataclass
class RayTuneLauncherConf(LauncherSettings):
    _target_: str = "hydra_plugins.ray_tune_launcher.ray_tune_launcher.RayTuneLauncher"


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
