"""Hydra's sweep syntax on Ray Tune: comma lists stay a grid; interval(), tag(log, interval()), choice()
and range() become sampled Tune search spaces, with an optional early-stopping scheduler.
Cheap to import: the work happens in cluster.sweep_spec and cluster.sweep_pipeline."""

from __future__ import annotations

from typing import Any, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

from . import config as _config  # noqa: F401  (registers the config schemas)


class RayTuneSweeper(BasicSweeper):
    def __init__(self, num_samples: int = 1, scheduler: Any = None, seed: Optional[int] = None,
                 max_batch_size: Optional[int] = None) -> None:
        super().__init__(max_batch_size=max_batch_size)
        self.num_samples = num_samples
        self.scheduler: Any = None  # its config, taken in setup (see there)
        self.seed = seed

    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        # The scheduler's `_target_` config as written: Hydra instantiates nested `_target_` nodes when it
        # builds the sweeper, and the pipeline builds the scheduler itself (and records its config to resume).
        scheduler = OmegaConf.select(config, "hydra.sweeper.scheduler")
        self.scheduler = OmegaConf.to_container(scheduler, resolve=True) if scheduler is not None else None

    def sweep(self, arguments: List[str]) -> Any:
        from cluster.search_space import needs_tune_search
        from cluster.submit import submission_address

        address = submission_address(getattr(self.launcher, "settings", {}).get("submit"))
        if address is not None:  # from outside the cluster: the whole sweep becomes one Ray job there
            from cluster.submit import submit_sweep

            return submit_sweep(self.launcher, list(arguments), address, self.max_batch_size)

        if self.num_samples == 1 and self.scheduler is None and not needs_tune_search(arguments):
            return super().sweep(arguments)  # a plain grid: Hydra's own expansion, then our launcher

        from cluster.sweep_pipeline import run_sweep
        from cluster.sweep_spec import search_spec

        if getattr(self.launcher, "settings", None) is None or not hasattr(self.launcher, "hydra_context"):
            raise ValueError("Sampled searches (interval(), choice(), range(), a scheduler) need hydra/launcher=ray_tune.")
        return run_sweep(self.launcher, search_spec(list(arguments), self.num_samples, self.scheduler, self.seed))
