"""Hydra's sweep syntax on Ray Tune. Without a search asked for, `-m` is Hydra's own grid (comma lists, range()
and choice() enumerate every value). A search (hydra.sweeper.num_samples, an interval(), a searcher or a
scheduler) samples interval(), tag(log, interval()), choice() and range() with Tune, comma lists staying grid
dimensions. Cheap to import: the work happens in cluster.launcher (routing.py)."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

from . import config as _config  # noqa: F401  (registers the config schemas)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


class RayTuneSweeper(BasicSweeper):
    def __init__(self, num_samples: Optional[int] = None, search_alg: Any = None, scheduler: Any = None,
                 seed: Optional[int] = None, mutable: Any = (), max_batch_size: Optional[int] = None) -> None:
        super().__init__(max_batch_size=max_batch_size)
        self.num_samples = num_samples
        self.search_alg = _plain(search_alg)
        self.scheduler = _plain(scheduler)
        self.seed = seed
        self.mutable = list(_plain(mutable) or [])

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # Hydra composes every job here (~0.2 s each); the ray_tune launcher checks them all itself, composing
        # once per combination of config-group choices (cluster/launcher/job_catalog.py).
        from cluster.launcher.routing import runs_on_ray_tune

        if not runs_on_ray_tune(self.launcher):
            super().validate_batch_is_legal(batch)

    def sweep(self, arguments: List[str]) -> Any:
        from cluster.launcher.routing import sweep

        return sweep(self, arguments, hydra_grid=super().sweep)
