"""Hydra jobs -> Ray Tune trials: the one path every sweep takes, grid or search (sweep_spec.py).

0. Say what the sweep does (a grid or a search, with what) and how many trials that makes: its first line.
1. Check every job (one bad job stops the sweep before Ray starts), composing once per combination of
   config-group choices (job_catalog.py), so a sweep of thousands of jobs starts in seconds.
2. Agree on the metric and mode all trials optimise, and on the sweep's store (its name claimed there). A
   folder without a sweep first gets this sweep's driver state from the store, if it is there (driver_state.py).
3. Say how to watch it; connect to Ray; refuse requests no node can grant.
4. Run one Tune experiment in `<sweep dir>/tune` (the same command resumes it), the driver's state copied to
   the store as it changes (so the same command resumes it on another machine too).
5. Rank the trials, write the leaderboard (and the store's manifest); fail if a trial failed or the sweep
   was interrupted, after the leaderboard.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, read_write

from cluster.launcher import leaderboard
from cluster.launcher.driver_mirror import DriverMirror
from cluster.launcher.driver_state import DriverState, driver_record, restore_driver_state
from cluster.launcher.job_catalog import JobCatalog
from cluster.launcher.job_configs import SweepError, SweepRefused, setting_key
from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.resources import TrialResources, alive_node_capacities, check_fits
from cluster.launcher.settings import LauncherSettings, Objective
from cluster.launcher.sweep_books import audit
from cluster.launcher.sweep_folder import mark_ended, outside_ray_package_cache
from cluster.launcher.sweep_plan import InDriver, SweepPlan
from cluster.launcher.sweep_results import open_results
from cluster.launcher.sweep_spec import SweepSpec
from cluster.launcher.tune_algorithms import build_algorithms, clip_to_space  # noqa: F401 - older PBT states name it here

log = logging.getLogger(__name__)


def _prepare(launcher) -> tuple[DictConfig, Path]:
    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    # Absolute: Tune runs each trial in its own folder, and other nodes have another working directory.
    sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().absolute()
    moved = outside_ray_package_cache(sweep_dir, launcher.settings.cluster_dir)
    if moved != sweep_dir:
        print(f"This sweep runs as a Ray job in Ray's copy of the checkout, which Ray may delete: its folder is "
              f"{moved} (hydra.launcher.cluster_dir)", flush=True)
        sweep_dir = moved
    with read_write(config.hydra):
        config.hydra.sweep.dir = str(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return config, sweep_dir


# Jobs listed one per line before launch; a larger sweep lists this many and counts the rest.
MAX_LISTED = 50


def _objective(settings: Sequence[LauncherSettings]) -> Objective:
    """The metric and mode every job's `hydra.launcher` names (one for the whole sweep)."""
    pairs = {(job.metric, job.mode_name) for job in settings}
    if len(pairs) != 1:
        raise SweepRefused(f"The jobs of one sweep must optimise the same metric, received {sorted(pairs, key=str)} "
                           f"(metric, mode). Sweep the metric in separate sweeps.")
    return Objective(*pairs.pop())


def _warn_if_results_stay_on_nodes(storage, num_nodes: int, key: str) -> None:
    """`key`: what the user sets the store with (the app's own key when hydra.launcher.storage names it)."""
    if num_nodes > 1 and (storage is None or storage.is_local_folder):
        where = f"{key}=null" if storage is None else f"{key} is the folder {storage.store.uri}"
        print(f"Note: this Ray cluster has {num_nodes} nodes and {where}: trials that run on another node keep "
              f"their checkpoints and logs on that node's disk, and a trial retried elsewhere starts over. Unless "
              f"every node mounts that folder, set {key}=gs://BUCKET/PREFIX to collect them.", flush=True)


def _connect_and_check(settings: LauncherSettings, requests: list[tuple[str, TrialResources]]) -> tuple[bool, int]:
    """(whether this call started Ray, the number of alive nodes)."""
    from cluster.launcher.ray_session import connect, resolve_address

    address = resolve_address(settings.address)
    started = connect(address, settings.init, settings.connect_timeout_s)
    try:
        nodes = alive_node_capacities()
        check_fits(requests, nodes)
    except Exception:
        _disconnect(started)
        raise
    return started, len(nodes)


def _disconnect(started: bool) -> None:
    import ray

    if started and ray.is_initialized():
        ray.shutdown()


def _list_jobs(spec: SweepSpec, catalog: JobCatalog) -> None:
    for index, (detail, job) in enumerate(zip(spec.details, spec.jobs_to_check)):
        if index == MAX_LISTED:
            log.info("\t... and %d more", len(spec.jobs_to_check) - MAX_LISTED)
            break
        log.info("\t%s  [%s]", detail, catalog.resources(job, spec.first_job_num + index).describe())


def _distinct_requests(spec: SweepSpec, catalog: JobCatalog) -> list[tuple[str, TrialResources]]:
    seen: dict[TrialResources, str] = {}
    for index, (label, job) in enumerate(zip(spec.labels, spec.jobs_to_check)):
        seen.setdefault(catalog.resources(job, spec.first_job_num + index), label)
    return [(label, request) for request, label in seen.items()]


def _check_jobs(launcher, spec: SweepSpec, sweep_dir: Path) -> tuple[JobCatalog, Objective, Any,
                                                                    Optional[DriverState]]:
    """Steps 0-2: every job composed and checked, the objective agreed, the driver's state restored from the store
    when the folder has none, the results' store opened (the sweep's name claimed)."""
    print(spec.summary, flush=True)
    catalog = JobCatalog(launcher, spec.first_job_num)
    catalog.check(spec.jobs_to_check, spec.labels if spec.space is not None else None, spec.extra_values)
    settings_of_jobs = [catalog.settings(job, spec.first_job_num + index)
                        for index, job in enumerate(spec.jobs_to_check)]
    objective = _objective(settings_of_jobs)
    stores = {job.storage for job in settings_of_jobs}
    driver = restore_driver_state(stores, sweep_dir, spec.record)  # before the claim, which it may take over
    storage = open_results(launcher.settings, stores, sweep_dir, _storage_key(spec, catalog))
    where = storage.uri if storage is not None and not storage.is_local_folder else str(sweep_dir)
    print(launcher.settings.watch_line(where), flush=True)
    log.info("Sweep folder %s, optimising %s %s (%d job configs composed for %d jobs)", sweep_dir,
             objective.metric or "nothing", objective.mode, catalog.num_composed, len(spec.jobs_to_check))
    _list_jobs(spec, catalog)
    return catalog, objective, storage, driver if storage is not None else None


def _storage_key(spec: SweepSpec, catalog: JobCatalog) -> str:
    return setting_key(catalog.representative(spec.jobs_to_check[0], spec.first_job_num), "storage")


def _trainable(launcher, spec: SweepSpec, catalog: JobCatalog, objective: Objective, storage, config, sweep_dir):
    """The trial function with the plan it runs (shipped to every trial) and the resources each trial asks for."""
    from hydra.core.singleton import Singleton
    from ray import tune

    from cluster.launcher.tune_trial import run_trial

    plan = SweepPlan(
        hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=config,
        singleton_state=Singleton.get_state(), metric=objective.metric, initial_job_idx=spec.first_job_num,
        jobs=spec.jobs, space=spec.space,
        store_uri=None if storage is None else str(storage.store.uri),
        sweep_id=None if storage is None else storage.sweep_id,
        # Every epoch: PBT may pick a donor at any report, and takes the donor's latest checkpoint.
        checkpoint_interval=1 if spec.mutations else None,
    )
    resources = InDriver(f"resources of {sweep_dir}",
                         lambda trial_config: catalog.resources(plan.overrides_of(trial_config)).placement())
    return plan, tune.with_resources(tune.with_parameters(run_trial, plan=plan), resources=resources)


def _outcomes(result_grid, spec: SweepSpec, plan: SweepPlan, catalog: JobCatalog, objective: Objective,
              progress) -> tuple[dict, list]:
    """Each job's (leaderboard row, JobReturn) by number, jobs that never started included, and the
    (trial id, job number) pairs Tune knows, for the audit."""
    from cluster.launcher.trial_results import never_started, outcome, trials_with_results

    outcomes, trial_jobs = {}, []
    scheduler_name = str(spec.scheduler["_target_"]).rsplit(".", 1)[-1] if spec.scheduler else None
    for trial, result in trials_with_results(result_grid):
        num, overrides = plan.job_of(result.config or trial.config, trial.trial_id, trial.custom_trial_name)
        trial_jobs.append((str(trial.trial_id), num))
        outcomes[num] = outcome(trial, result, num, catalog.job_view(overrides, num), objective.metric,
                                objective.mode, progress.interrupted(trial.trial_id), scheduler_name)
    for index, overrides in enumerate(spec.jobs or []):
        num = spec.first_job_num + index
        if num not in outcomes:
            outcomes[num] = never_started(num, catalog.job_view(overrides, num))
    return outcomes, trial_jobs


def run_sweep(launcher, spec: SweepSpec) -> list[JobReturn]:
    from cluster.launcher.progress import SweepProgress
    from cluster.launcher.tuner import build_tuner

    config, sweep_dir = _prepare(launcher)
    settings = launcher.settings
    catalog, objective, storage, driver = _check_jobs(launcher, spec, sweep_dir)
    scheduler, search_alg = build_algorithms(spec, objective.metric)
    started, num_nodes = _connect_and_check(settings, _distinct_requests(spec, catalog))
    _warn_if_results_stay_on_nodes(storage, num_nodes, _storage_key(spec, catalog))
    mirror = None
    try:
        try:
            plan, trainable = _trainable(launcher, spec, catalog, objective, storage, config, sweep_dir)
            describe = lambda trial_config: " ".join(filter_overrides(plan.overrides_of(trial_config)))  # noqa: E731
            progress = SweepProgress(objective.metric, objective.mode, describe, quiet=settings.verbose == 0)
            tuner = build_tuner(sweep_dir, trainable, spec, settings, objective, (scheduler, search_alg),
                                JobNumbers(plan, sweep_dir), progress)
            # The folder holds this run's state now (a rerun of an ended sweep set the previous run aside).
            mirror = _keep_driver_state(driver, storage, settings)
            outcomes, trial_jobs = _outcomes(tuner.fit(), spec, plan, catalog, objective, progress)
        finally:
            _disconnect(started)
        rows = [outcomes[num][0] for num in sorted(outcomes)]
        books = storage.trial_books() if storage is not None else None
        _finish(rows, objective, sweep_dir, storage, books)
        if not any(row.status == "INTERRUPTED" for row in rows):
            mark_ended(sweep_dir, {row.job: row.status for row in rows})
            if spec.mutations:
                _delete_pbt_checkpoints(sweep_dir)
    finally:
        if mirror is not None:
            mirror.close()
    _raise_if_unfinished(rows, sweep_dir, settings.resume_line(driver.sweep_uri) if driver else None)
    _raise_if_books_disagree(trial_jobs, rows, books)
    return [outcomes[num][1] for num in sorted(outcomes)]


def _keep_driver_state(driver: Optional[DriverState], storage, settings: LauncherSettings) -> Optional[DriverMirror]:
    """Start copying the driver's state to the sweep's store (none without a store)."""
    if driver is None:
        return None
    return DriverMirror(driver, driver_record(driver, storage.sweep_id, settings.cluster_dir)).start()


def _delete_pbt_checkpoints(sweep_dir: Path) -> None:
    """Every trial ended: the copies of job states PBT exchanged are no longer needed (each job keeps its own)."""
    import shutil

    from cluster.launcher.sweep_folder import EXPERIMENT

    for folder in (sweep_dir / EXPERIMENT).glob("*/checkpoint_*"):
        shutil.rmtree(folder, ignore_errors=True)


def _finish(rows: list, objective: Objective, sweep_dir: Path, storage=None, books=None) -> None:
    """`books`: the store's view of each trial (sweep_results.py), read once for this and the audit."""
    metric, mode = objective
    for row in rows:  # what the trials uploaded, wherever they ran
        row.checkpoint = ((books or {}).get(Path(row.job_dir).name) or {}).get("checkpoint") or row.checkpoint
    json_path, csv_path = leaderboard.write(rows, metric, mode, sweep_dir)
    print("\n" + leaderboard.table(rows, metric, mode, in_store=storage is not None), flush=True)
    print(f"Leaderboard: {json_path} and {csv_path}", flush=True)
    if storage is not None:  # the trials uploaded their files; the manifest, then the best pointer, come last
        storage.finish(sweep_dir, rows)


def _raise_if_books_disagree(trial_jobs: list, rows: list, books: Optional[dict]) -> None:
    problems = audit(trial_jobs, rows, books)
    if problems:
        raise SweepError("The sweep's books do not agree, so it did not succeed: " + "; ".join(problems) + ".")


def _failure(row) -> str:
    """One failed trial in a line: what it ran, the last line of its error, where its log is (on which node:
    without a shared disk it is on that node's disk only)."""
    last = next((line.strip() for line in reversed((row.error or "").splitlines()) if line.strip()), None)
    where = f" on node {row.node}" if row.node else ""
    error = f": {last[:300]}" if last else ""
    return f"job {row.job} ({row.overrides}){error}; log {row.job_dir}/trial.log{where}"


def _raise_if_unfinished(rows: list, sweep_dir: Path, resume_line: Optional[str] = None) -> None:
    """`resume_line`: the app's command that resumes the sweep from its store on any machine, if there is one."""
    failed = [row for row in rows if row.status == "FAILED"]
    interrupted = [row for row in rows if row.status == "INTERRUPTED"]
    problems = []
    if failed:
        problems.append(f"{len(failed)} of {len(rows)} trials failed: " + "; ".join(map(_failure, failed)))
    if interrupted:
        problems.append(f"the sweep was interrupted before {len(interrupted)} of {len(rows)} trials ended; rerun the "
                        f"same command with hydra.sweep.dir={sweep_dir} to resume them"
                        + (f" (or from any machine: {resume_line})" if resume_line else ""))
    if problems:
        raise SweepError(". ".join(problems))
