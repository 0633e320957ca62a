"""Runs each Hydra job of a multirun as a Ray Tune trial. Cheap to import: Ray loads only in `launch`."""

from __future__ import annotations

from typing import Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from cluster.launcher.settings import LauncherSettings

from . import config as _config  # noqa: F401  (registers the config schemas)


class RayTuneLauncher(Launcher):
    def __init__(self, **settings) -> None:
        self.settings = LauncherSettings.of(settings)
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from cluster.launcher.routing import launch

        return launch(self, job_overrides, initial_job_idx)
