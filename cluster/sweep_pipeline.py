"""Hydra jobs -> Ray Tune trials: the one path every sweep takes, grid or search (sweep_spec.py).

1. Compose and validate every job to check (one bad job stops the sweep before Ray starts).
2. Agree on the metric and mode all trials optimise, and on the sweep's store (its name claimed there).
3. Say how to watch it; connect to Ray; refuse requests no node can grant.
4. Run one Tune experiment in `<sweep dir>/tune` (the same command resumes it).
5. Rank the trials, write the leaderboard (and the store's manifest); fail if a trial failed or the sweep
   was interrupted, after the leaderboard.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, read_write

from . import leaderboard
from .job_configs import SweepError, compose_and_validate, compose_job, launcher_setting, setting_key
from .resources import TrialResources, alive_node_capacities, check_fits, trial_resources
from .sweep_folder import mark_ended
from .sweep_spec import SweepSpec
from .tune_trial import SweepPlan
from .watch import watch_line

log = logging.getLogger(__name__)


def _settings(launcher) -> dict:
    settings = {key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
                for key, value in launcher.settings.items()}
    settings["init"] = settings.get("init") or {}
    return settings


def _prepare(launcher) -> tuple[DictConfig, Path]:
    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    # Absolute: Tune runs each trial in its own folder, and other nodes have another working directory.
    sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().absolute()
    with read_write(config.hydra):
        config.hydra.sweep.dir = str(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return config, sweep_dir


def _objective(composed: Sequence[DictConfig]) -> tuple[Optional[str], str]:
    """The metric and mode every job's `hydra.launcher` names (one for the whole sweep)."""
    pairs = {(launcher_setting(cfg, "metric"), str(launcher_setting(cfg, "mode", "auto"))) for cfg in composed}
    if len(pairs) != 1:
        raise SweepError(f"The jobs of one sweep must optimise the same metric, received {sorted(pairs, key=str)} "
                         f"(metric, mode). Sweep the metric in separate sweeps.")
    metric, mode = pairs.pop()
    mode = mode.rsplit(".", 1)[-1]  # an enum may arrive as "Mode.min"
    if mode == "auto":  # Keras' rule (its callbacks' mode="auto")
        mode = "max" if metric and any(word in metric for word in ("acc", "auc", "precision", "recall", "f1")) else "min"
    return metric, mode


def _check_storage(composed: Sequence[DictConfig], sweep_dir: Path):
    """The store every trial uploads to, proven writable and the sweep's name claimed there before Ray
    starts: a bad URI, a missing bucket, missing credentials or a name another sweep owns stop it here."""
    from .storage import StorageError
    from .storage.sweep import SweepStorage

    uris = {launcher_setting(cfg, "storage") for cfg in composed}
    try:
        return SweepStorage.check(uris, sweep_dir)
    except StorageError as error:
        raise SweepError(f"Storage error, so no job of this sweep was started: {error}") from error


def _print_watch_line(sweep_dir: Path, storage) -> None:
    """First, before any trial starts: one TensorBoard over all trials. With a bucket, trials on any node
    upload their event files there, so that is what to watch."""
    print(watch_line(storage.uri if storage is not None and not storage.is_local_folder else str(sweep_dir)), flush=True)


def _warn_if_results_stay_on_nodes(storage, num_nodes: int, key: str) -> None:
    """`key`: what the user sets the store with (the app's own key when hydra.launcher.storage names it)."""
    if num_nodes > 1 and (storage is None or storage.is_local_folder):
        where = f"{key}=null" if storage is None else f"{key} is the folder {storage.store.uri}"
        print(f"Note: this Ray cluster has {num_nodes} nodes and {where}: trials that run on another node keep "
              f"their checkpoints and logs on that node's disk, and a trial retried elsewhere starts over. Unless "
              f"every node mounts that folder, set {key}=gs://BUCKET/PREFIX to collect them.", flush=True)


class _TrialRequests:
    """Resource requests per override list (a sampled value may change them, e.g. model=choice(...))."""

    def __init__(self, launcher, known: dict):
        self.launcher, self.cache = launcher, dict(known)

    def of(self, overrides: Sequence[str]) -> TrialResources:
        key = tuple(overrides)
        if key not in self.cache:
            self.cache[key] = trial_resources(compose_job(self.launcher, overrides, 0))
        return self.cache[key]


def _connect_and_check(settings: dict, requests: list[tuple[str, TrialResources]]) -> tuple[bool, int]:
    """(whether this call started Ray, the number of alive nodes)."""
    from .ray_session import connect, resolve_address

    address = resolve_address(settings.get("address"))
    started = connect(address, settings["init"], float(settings.get("connect_timeout_s", 10)))
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


def _instantiate_scheduler(config):
    if config is None:
        return None
    from hydra.utils import instantiate

    return instantiate(config)


def run_sweep(launcher, spec: SweepSpec) -> list[JobReturn]:
    from hydra.core.singleton import Singleton
    from ray import tune

    from .progress import SweepProgress
    from .trial_results import never_started, outcome, trials_with_results
    from .tune_trial import run_trial
    from .tuner import build_tuner

    config, sweep_dir = _prepare(launcher)
    composed = compose_and_validate(launcher, spec.jobs_to_check, spec.first_job_num)
    metric, mode = _objective(composed)
    storage = _check_storage(composed, sweep_dir)
    _print_watch_line(sweep_dir, storage)
    log.info("%s (%s, optimising %s %s)", spec.summary, sweep_dir, metric or "nothing", mode)
    requests = _TrialRequests(launcher, {tuple(job): trial_resources(cfg) for job, cfg in zip(spec.jobs_to_check, composed)})
    for detail, job in zip(spec.details, spec.jobs_to_check):
        log.info("\t%s  [%s]", detail, requests.of(job).describe())
    settings = _settings(launcher)
    started, num_nodes = _connect_and_check(
        settings, [(label, requests.of(job)) for label, job in zip(spec.labels, spec.jobs_to_check)])
    _warn_if_results_stay_on_nodes(storage, num_nodes, setting_key(composed[0], "storage"))
    try:
        plan = SweepPlan(
            hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=config,
            singleton_state=Singleton.get_state(), metric=metric, initial_job_idx=spec.first_job_num,
            jobs=spec.jobs, space=spec.space,
            store_uri=None if storage is None else str(storage.store.uri),
            sweep_id=None if storage is None else storage.sweep_id,
        )
        trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan),
                                        resources=lambda trial_config: requests.of(plan.overrides_of(trial_config)).placement())
        describe = lambda trial_config: " ".join(filter_overrides(plan.overrides_of(trial_config)))  # noqa: E731
        verbose = int(settings.get("verbose", 1))
        progress = SweepProgress(metric, mode, describe, quiet=verbose == 0)
        tuner = build_tuner(
            sweep_dir, trainable, spec.param_space, spec.record, metric=metric, mode=mode,
            num_samples=spec.num_samples, scheduler=_instantiate_scheduler(spec.scheduler), seed=spec.seed,
            max_concurrent_trials=settings.get("max_concurrent_trials"),
            # Tune calls the progress view only when verbose: it must see the end, even when it prints nothing.
            max_failures=int(settings.get("max_failures", 2)), verbose=max(verbose, 1),
            name_of=lambda trial: f"job_{plan.job_of(trial.config, trial.trial_id)[0]}",
            progress_reporter=progress,
        )
        result_grid = tuner.fit()
        outcomes = {}
        for trial, result in trials_with_results(result_grid):
            num, overrides = plan.job_of(result.config or trial.config, trial.trial_id)
            index = num - spec.first_job_num
            sweep_config = composed[index] if spec.jobs is not None else compose_job(launcher, overrides, num)
            outcomes[num] = outcome(trial, result, num, sweep_config, metric, mode, progress.interrupted(trial.trial_id))
        for index, sweep_config in enumerate(composed if spec.jobs is not None else []):
            outcomes.setdefault(spec.first_job_num + index, never_started(spec.first_job_num + index, sweep_config))
    finally:
        _disconnect(started)
    rows = [outcomes[num][0] for num in sorted(outcomes)]
    _finish(rows, metric, mode, sweep_dir, storage)
    if not any(row.status == "INTERRUPTED" for row in rows):
        mark_ended(sweep_dir, {row.job: row.status for row in rows})
    _raise_if_unfinished(rows, sweep_dir)
    return [outcomes[num][1] for num in sorted(outcomes)]


def _finish(rows: list, metric: Optional[str], mode: str, sweep_dir: Path, storage=None) -> None:
    if storage is not None:  # what the trials uploaded, wherever they ran
        in_store = storage.checkpoint_uris()
        for row in rows:
            row.checkpoint = in_store.get(Path(row.job_dir).name, row.checkpoint)
    json_path, csv_path = leaderboard.write(rows, metric, mode, sweep_dir)
    print("\n" + leaderboard.table(rows, metric, mode, in_store=storage is not None), flush=True)
    print(f"Leaderboard: {json_path} and {csv_path}", flush=True)
    if storage is not None:  # the trials uploaded their files; the manifest, then the best pointer, come last
        storage.finish(sweep_dir, rows)


def _raise_if_unfinished(rows: list, sweep_dir: Path) -> None:
    failed = [row for row in rows if row.status == "FAILED"]
    interrupted = [row for row in rows if row.status == "INTERRUPTED"]
    problems = []
    if failed:
        problems.append(f"{len(failed)} of {len(rows)} trials failed: " + "; ".join(
            f"job {row.job} ({row.overrides}), log {row.job_dir}/trial.log" for row in failed))
    if interrupted:
        problems.append(f"the sweep was interrupted before {len(interrupted)} of {len(rows)} trials ended; rerun the "
                        f"same command with hydra.sweep.dir={sweep_dir} to resume them")
    if problems:
        raise SweepError(". ".join(problems))
