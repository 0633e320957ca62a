"""Which way a multirun goes: submitted to a Ray cluster as one Ray job (hydra.launcher.submit), Hydra's own
grid, or a Tune search. The hydra_plugins shims only delegate here."""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from hydra.core.utils import JobReturn

from cluster.launcher.settings import LauncherSettings


def runs_on_ray_tune(launcher: Any) -> bool:
    """Whether the multirun's launcher is this one (a sweeper may be combined with another)."""
    return isinstance(getattr(launcher, "settings", None), LauncherSettings) and hasattr(launcher, "hydra_context")


def sweep(sweeper: Any, arguments: Sequence[str], hydra_grid: Callable[[list], Any]) -> Any:
    """The sweeper's sweep(): `hydra_grid` is Hydra's basic sweeper, which expands a grid and calls launch()."""
    from cluster.launcher.search_space import asks_for_search
    from cluster.submission.submit import submission_address

    arguments = list(arguments)
    search = asks_for_search(arguments, sweeper.num_samples, sweeper.search_alg, sweeper.scheduler)
    launcher = sweeper.launcher
    if runs_on_ray_tune(launcher):
        address = submission_address(launcher.settings.submit)
        if address is not None:  # from outside the cluster: the whole sweep becomes one Ray job there
            return submit(launcher, arguments, address, sweeper.max_batch_size, search)
    if not search:
        return hydra_grid(arguments)
    if not runs_on_ray_tune(launcher):
        raise ValueError("Searches (num_samples, interval(), a searcher or a scheduler) need hydra/launcher=ray_tune.")
    from cluster.launcher.sweep_pipeline import run_sweep
    from cluster.launcher.sweep_spec import SearchSettings, search_spec

    settings = SearchSettings(num_samples=sweeper.num_samples, search_alg=sweeper.search_alg,
                              scheduler=sweeper.scheduler, seed=sweeper.seed, mutable=sweeper.mutable)
    return run_sweep(launcher, search_spec(arguments, settings, launcher.settings.search_presets))


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """The launcher's launch(): one batch of Hydra's grid."""
    from cluster.launcher.sweep_pipeline import run_sweep
    from cluster.launcher.sweep_spec import grid_spec

    return run_sweep(launcher, grid_spec(job_overrides, initial_job_idx, launcher.settings.search_presets))


def jobs_to_submit(arguments: Sequence[str], max_batch_size: Any, search: bool) -> list[list[str]]:
    """The jobs the sweep will run (a search: one per combination of its comma lists), as the launcher
    composes them, so each is checked here before anything is uploaded."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from cluster.launcher.search_space import build_search_space, representative_overrides
    from cluster.private_apis import grid_batches

    if search:
        return [list(overrides) for overrides in representative_overrides(build_search_space(list(arguments)))]
    parsed = OverridesParser.create().parse_overrides(list(arguments))
    return [list(job) for batch in grid_batches(parsed, max_batch_size) for job in batch]


def submit(launcher: Any, arguments: Sequence[str], address: str, max_batch_size: Any, search: bool) -> None:
    """Check every job here, then ship the sweep to the cluster and follow it (exits with its status)."""
    from cluster.launcher.job_catalog import JobCatalog
    from cluster.launcher.job_configs import setting_key
    from cluster.submission.submit import SweepToShip, checking_before_submission, ship_sweep

    jobs = jobs_to_submit(arguments, max_batch_size, search)
    catalog = JobCatalog(launcher)
    with checking_before_submission():
        catalog.check(jobs)
    settings = launcher.settings
    ship_sweep(SweepToShip(
        address=address, argv=sys.argv[1:], sweep_dir=str(launcher.config.hydra.sweep.dir),
        cluster_dir=settings.cluster_dir, job_env=settings.job_env,
        stores={catalog.settings(job, num).storage for num, job in enumerate(jobs)},
        storage_key=setting_key(catalog.representative(jobs[0]), "storage"), num_jobs=len(jobs),
        watch_line=settings.watch_line,
    ))
