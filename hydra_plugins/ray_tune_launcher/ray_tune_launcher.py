"""Runs each Hydra job of a multirun as a Ray Tune trial. Cheap to import: Ray loads only in `launch`."""

from __future__ import annotations

from typing import Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from . import config as _config  # noqa: F401  (registers the config schemas)


class RayTuneLauncher(Launcher):
    def __init__(self, **settings) -> None:
        # The launcher's own settings (hydra.launcher.*), kept as a plain dict so they pickle cheaply.
        self.settings = settings
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from cluster.launcher.sweep_pipeline import run_sweep
        from cluster.launcher.sweep_spec import grid_spec

        return run_sweep(self, grid_spec(job_overrides, initial_job_idx))
