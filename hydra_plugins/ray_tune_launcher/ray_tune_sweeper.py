"""Hydra's sweep syntax on Ray Tune. Without a search asked for, `-m` is Hydra's own grid (comma lists, range()
and choice() enumerate every value). A search (hydra.sweeper.num_samples, an interval(), a searcher or a
scheduler) samples interval(), tag(log, interval()), choice() and range() with Tune, comma lists staying grid
dimensions. Cheap to import: the work happens in cluster.launcher.sweep_spec and cluster.launcher.sweep_pipeline."""

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

    def _runs_on_ray_tune(self) -> bool:
        return getattr(self.launcher, "settings", None) is not None and hasattr(self.launcher, "hydra_context")

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # Hydra composes every job here (~0.2 s each); the ray_tune launcher checks them all itself, composing
        # once per combination of config-group choices (cluster/launcher/job_catalog.py). Other launchers keep Hydra's check.
        if not self._runs_on_ray_tune():
            super().validate_batch_is_legal(batch)

    def sweep(self, arguments: List[str]) -> Any:
        from cluster.launcher.search_space import asks_for_search
        from cluster.submission.submit import submission_address

        search = asks_for_search(arguments, self.num_samples, self.search_alg, self.scheduler)
        address = submission_address(getattr(self.launcher, "settings", {}).get("submit"))
        if address is not None:  # from outside the cluster: the whole sweep becomes one Ray job there
            from cluster.submission.submit import submit_sweep

            return submit_sweep(self.launcher, list(arguments), address, self.max_batch_size, search=search)

        if not search:
            return super().sweep(arguments)  # Hydra's grid expansion, then our launcher

        from cluster.launcher.sweep_pipeline import run_sweep
        from cluster.launcher.sweep_spec import SearchSettings, search_spec

        if not self._runs_on_ray_tune():
            raise ValueError("Searches (num_samples, interval(), a searcher or a scheduler) need hydra/launcher=ray_tune.")
        settings = SearchSettings(num_samples=self.num_samples, search_alg=self.search_alg, scheduler=self.scheduler,
                                  seed=self.seed, mutable=self.mutable)
        return run_sweep(self.launcher, search_spec(list(arguments), settings))
