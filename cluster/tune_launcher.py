"""Hydra jobs -> Ray Tune trials: the driver side of the `ray_tune` launcher and sweeper.

Before any trial starts, every job is composed and validated (a bad override stops the sweep), each job's
resource request is checked against the cluster's nodes, and the metric all jobs optimise is agreed on.
Then one Tune experiment runs in `<sweep dir>/tune`: rerunning the same command with
`hydra.sweep.dir=<that dir>` restores it, so finished trials are not run again and unfinished ones
continue from their last epoch. The leaderboard is written at the end.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from hydra.errors import CompactHydraException
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from . import leaderboard
from .resources import TrialResources, alive_node_capacities, check_fits, trial_resources
from .search_space import build_search_space, representative_overrides, trial_overrides
from .tune_trial import DONE_KEY, SweepPlan, returned_value, run_trial
from .watch import watch_line

log = logging.getLogger(__name__)

EXPERIMENT = "tune"
MANIFEST = "sweep.json"


class SweepError(CompactHydraException):
    """The sweep cannot start (nothing was launched), or some of its trials failed. Hydra prints only
    the message, no traceback."""


def _prepare(launcher) -> tuple[DictConfig, Path]:
    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    # Absolute: Tune runs each trial in its own folder, and remote nodes have another working directory.
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    with read_write(config.hydra):
        config.hydra.sweep.dir = str(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return config, sweep_dir


def _print_watch_line(sweep_dir: Path, storage) -> None:
    """First, before any trial starts: one TensorBoard over all trials (one run each, HParams included).
    With a bucket, trials on any node upload their event files there, so that is what to watch."""
    print(watch_line(storage.uri if storage is not None and not storage.is_local_folder else str(sweep_dir)), flush=True)


def _warn_if_results_stay_on_nodes(storage, num_nodes: int) -> None:
    """Say before launch where results of trials on other nodes end up when no bucket collects them."""
    if num_nodes > 1 and (storage is None or storage.is_local_folder):
        where = "storage.uri=null" if storage is None else f"storage.uri is the folder {storage.store.uri}"
        print(f"Note: this Ray cluster has {num_nodes} nodes and {where}: trials that run on another node keep "
              f"their checkpoints and logs on that node's disk, and a trial retried elsewhere starts over. Unless "
              f"every node mounts that folder, set storage.uri=gs://BUCKET/PREFIX to collect them.", flush=True)


def _task_config(sweep_config: DictConfig) -> DictConfig:
    task = copy.deepcopy(sweep_config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def _compose(launcher, overrides: Sequence[str], num: int) -> DictConfig:
    sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.num = num
        sweep_config.hydra.job.id = str(num)
    return sweep_config


def _compose_and_validate(launcher, jobs: Sequence[Sequence[str]], first_num: int) -> list[DictConfig]:
    """Every job composed and checked before Ray starts: one bad job stops the whole sweep."""
    from trainers.schema import validate

    composed = []
    for index, overrides in enumerate(jobs):
        label = f"#{first_num + index} ({' '.join(filter_overrides(overrides)) or 'no overrides'})"
        try:
            sweep_config = _compose(launcher, overrides, first_num + index)
            validate(_task_config(sweep_config))
        except Exception as error:  # composition errors and ConfigError alike: name the job, start nothing
            raise SweepError(f"Job {label} cannot run, so no job of this sweep was started: {error}") from error
        composed.append(sweep_config)
    return composed


def _objective(composed: Sequence[DictConfig]) -> tuple[str, str]:
    from trainers.schema import resolve_mode

    pairs = {(str(cfg.metric), resolve_mode(str(cfg.metric), str(cfg.mode))) for cfg in composed}
    if len(pairs) != 1:
        raise SweepError(
            f"The jobs of one sweep must optimise the same metric, received {sorted(pairs)} (metric, mode). "
            f"Sweep `metric`/`mode` in separate sweeps."
        )
    return pairs.pop()


def _check_storage(composed: Sequence[DictConfig], sweep_dir: Path):
    """The bucket (or folder) every trial uploads to, proven writable before Ray starts: a bad
    storage.uri, a missing bucket, missing credentials or a sweep name another sweep owns there stop
    the sweep here, not in every trial."""
    from .storage import StorageError
    from .storage.sweep import SweepStorage

    try:
        return SweepStorage.check([_task_config(cfg) for cfg in composed], sweep_dir)
    except StorageError as error:
        raise SweepError(f"Storage error, so no job of this sweep was started: {error}") from error


def _store_fields(storage) -> dict:
    """What a trial needs of the sweep's store: its URI and the id the sweep claimed its name with."""
    if storage is None:
        return {}
    return {"store_uri": str(storage.store.uri), "sweep_id": storage.sweep_id}


def _settings(launcher) -> dict:
    settings = {key: OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                for key, value in launcher.settings.items()}
    settings.setdefault("init", {})
    return settings


def _connect_and_check(settings: dict, requests: list[tuple[str, TrialResources]]) -> tuple[bool, int]:
    """(whether this call started Ray, the number of alive nodes)."""
    from .ray_session import connect, resolve_address

    address = resolve_address(settings.get("address"))
    started = connect(address, settings["init"] or {}, float(settings.get("connect_timeout_s", 10)))
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


def _check_manifest(sweep_dir: Path, manifest: dict) -> bool:
    """True when sweep_dir holds a Tune experiment of this same sweep, to be continued."""
    from ray import tune

    path = sweep_dir / MANIFEST
    experiment = sweep_dir / EXPERIMENT
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != manifest:
            raise SweepError(
                f"{sweep_dir} holds another sweep ({path}: {previous}); this command asks for {manifest}. "
                f"Rerun the same command to resume that sweep, or choose a new hydra.sweep.dir."
            )
        return tune.Tuner.can_restore(str(experiment))
    path.write_text(json.dumps(manifest, indent=1))
    return False


def _run_tune(
    settings: dict,
    sweep_dir: Path,
    plan: SweepPlan,
    param_space: dict,
    resources_of: Callable[[dict], Any],
    name_of: Callable[[Any], str],
    describe: Callable[[dict], str],
    mode: str,
    manifest: dict,
    num_samples: int = 1,
    scheduler: Any = None,
    seed: Optional[int] = None,
):
    from ray import tune

    # A final report may carry no metric (a job that had already finished reports its return value only).
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Each job writes its own TensorBoard run with HParams; Ray's automatic TensorBoard logger would add a
    # second run per trial under tune/ whose HParams experiment (only `job`) hides the jobs' hyperparameters.
    # Its CSV and JSON loggers, which Tune's results rely on, are passed explicitly below.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from .progress import SweepProgress

    # Tune's classic output honours a custom reporter; its newer output prints a table per trial.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # One state snapshot per epoch report is what resume needs; Tune's warning about it is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan), resources=resources_of)
    restore = _check_manifest(sweep_dir, manifest)
    if restore:
        log.info("Resuming the sweep in %s: finished trials are kept, unfinished ones continue", sweep_dir)
        tuner = tune.Tuner.restore(
            str(sweep_dir / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True,
            param_space=param_space,
        )
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # A generator of its own: with the global numpy RNG, whatever else draws from it between trials
        # (the scheduler, Ray's internals) shifts the samples, so the same seed drew different trials under
        # ASHA and FIFO. Its own RandomState makes a seed name one list of trials, whatever the scheduler.
        search_alg = BasicVariantGenerator(random_state=seed) if seed is not None else None
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=plan.metric,
                mode=mode,
                num_samples=num_samples,
                search_alg=search_alg,
                scheduler=scheduler,
                max_concurrent_trials=settings.get("max_concurrent_trials"),
                # Each trial in a fresh process: TensorFlow's devices are fixed once it starts.
                reuse_actors=False,
                trial_name_creator=name_of,
                trial_dirname_creator=name_of,
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=str(sweep_dir),
                failure_config=tune.FailureConfig(max_failures=int(settings.get("max_failures", 2))),
                verbose=int(settings.get("verbose", 1)),
                progress_reporter=SweepProgress(plan.metric, mode, describe),
                callbacks=[CSVLoggerCallback(), JsonLoggerCallback()],
            ),
        )
    return tuner.fit()


def _job_num(result) -> int:
    """From the trial's folder name, job_<num> (see name_of)."""
    return int(Path(result.path).name.rsplit("_", 1)[-1])


def _row_and_return(result, num: int, sweep_config: DictConfig, metric: str, mode: str):
    """One leaderboard row and Hydra's JobReturn for a finished (or failed, or stopped) trial."""
    job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    overrides = list(sweep_config.hydra.overrides.task)
    last = result.metrics or {}
    value, best_epoch, epochs = None, None, None
    history = result.metrics_dataframe
    if history is not None and metric in history and "epoch" in history:
        epochs_reported = history.dropna(subset=[metric, "epoch"])
        if len(epochs_reported):
            pick = epochs_reported[metric].idxmin() if mode == "min" else epochs_reported[metric].idxmax()
            value, best_epoch = float(epochs_reported.loc[pick, metric]), int(epochs_reported.loc[pick, "epoch"])
            epochs = int(epochs_reported["epoch"].max())
    returned = returned_value(last)
    if isinstance(returned, dict) and returned.get("best_value") is not None:
        # The job's own account (metrics.json), which also covers epochs run before a restore.
        value, best_epoch = float(returned["best_value"]), returned.get("best_epoch")
        epochs = returned.get("epochs_run", epochs)
    # Without a store the checkpoint stays on the disk of the node that ran the trial (see `node`);
    # with one, _finish names it by its URI in the store.
    checkpoint = None
    if isinstance(returned, dict) and returned.get("checkpoint"):
        checkpoint = str(job_dir / returned["checkpoint"])

    if result.error is not None:
        status = "FAILED"
    elif last.get(DONE_KEY):
        status = "COMPLETED"
    else:
        status = "STOPPED"
    row = leaderboard.Row(
        job=num, trial_id=str(last.get("trial_id") or ""), status=status, value=value, best_epoch=best_epoch,
        epochs=epochs, wall_time_s=last.get("time_total_s"), overrides=" ".join(filter_overrides(overrides)),
        # Tune adds the address of the node that sent each result.
        job_dir=str(job_dir), checkpoint=checkpoint, node=last.get("node_ip"),
        error=None if result.error is None else str(result.error)[:2000],
    )

    job_return = JobReturn(
        overrides=overrides, cfg=_task_config(sweep_config), hydra_cfg=sweep_config, working_dir=str(job_dir),
        task_name=str(sweep_config.hydra.job.name),
    )
    if result.error is not None:
        job_return.status, job_return._return_value = JobStatus.FAILED, result.error
    else:
        job_return.status, job_return._return_value = JobStatus.COMPLETED, returned
    return row, job_return


def _finish(rows: list, metric: str, mode: str, sweep_dir: Path, storage=None) -> None:
    if storage is not None:  # what the trials uploaded, wherever they ran
        in_store = storage.checkpoint_uris()
        for row in rows:
            row.checkpoint = in_store.get(Path(row.job_dir).name)
    json_path, csv_path = leaderboard.write(rows, metric, mode, sweep_dir)
    print("\n" + leaderboard.table(rows, metric, mode, in_store=storage is not None), flush=True)
    print(f"Leaderboard: {json_path} and {csv_path}", flush=True)
    if storage is not None:  # the trials uploaded their files; the manifest, then the best pointer, come last
        storage.finish(sweep_dir, rows)


def launch_grid(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """The launcher's `launch`: the jobs Hydra's sweeper expanded, one Tune trial each."""
    from hydra.core.singleton import Singleton
    from ray import tune

    config, sweep_dir = _prepare(launcher)
    jobs = [list(overrides) for overrides in job_overrides]
    composed = _compose_and_validate(launcher, jobs, initial_job_idx)
    metric, mode = _objective(composed)
    storage = _check_storage(composed, sweep_dir)
    _print_watch_line(sweep_dir, storage)
    requests = [trial_resources(_task_config(cfg)) for cfg in composed]
    log.info("Launching %d jobs on Ray Tune (%s, optimising %s %s)", len(jobs), sweep_dir, metric, mode)
    for index, overrides in enumerate(jobs):
        log.info("\t#%d : %s  [%s]", initial_job_idx + index, " ".join(filter_overrides(overrides)),
                 requests[index].describe())

    settings = _settings(launcher)
    started, num_nodes = _connect_and_check(settings, [(f"#{initial_job_idx + i}", r) for i, r in enumerate(requests)])
    _warn_if_results_stay_on_nodes(storage, num_nodes)
    try:
        plan = SweepPlan(
            hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=config,
            singleton_state=Singleton.get_state(), metric=metric, initial_job_idx=initial_job_idx, jobs=jobs,
            **_store_fields(storage),
        )
        results = _run_tune(
            settings, sweep_dir, plan,
            param_space={"job": tune.grid_search(list(range(len(jobs))))},
            resources_of=lambda trial_config: requests[int(trial_config["job"])].placement(),
            name_of=lambda trial: f"job_{initial_job_idx + int(trial.config['job'])}",
            describe=lambda trial_config: f"#{initial_job_idx + int(trial_config['job'])} "
            + " ".join(filter_overrides(jobs[int(trial_config["job"])])),
            mode=mode,
            manifest={"initial_job_idx": initial_job_idx, "jobs": jobs},
        )
        by_num = {}
        for result in results:
            index = int(result.config["job"])
            by_num[index] = _row_and_return(result, initial_job_idx + index, composed[index], metric, mode)
    finally:
        _disconnect(started)
    rows = [by_num[index][0] for index in sorted(by_num)]
    _finish(rows, metric, mode, sweep_dir, storage)
    return [by_num[index][1] for index in sorted(by_num)]


def _scheduler(scheduler: Optional[dict], composed: Sequence[DictConfig]):
    if not scheduler or scheduler.get("name") in (None, "fifo"):
        return None
    from ray.tune.schedulers import ASHAScheduler

    if scheduler["name"] != "asha":
        raise SweepError(f"hydra.sweeper.scheduler.name is {scheduler['name']!r}; allowed: asha, fifo.")
    max_t = scheduler.get("max_t") or max(int(cfg.trainer.epochs) for cfg in composed)
    # Rungs counted in epochs (the `epoch` every report carries), not in Tune reports. A trial's last epoch
    # arrives with its result (see tune_trial), so stopping at max_t never cuts its final evaluation.
    return ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=int(scheduler.get("grace_period", 1)),
                         reduction_factor=float(scheduler.get("reduction_factor", 2)))


def launch_search(launcher, arguments: list[str], num_samples: int, scheduler: Optional[dict],
                  seed: Optional[int]) -> list[JobReturn]:
    """The sweeper's path for sampled searches: Tune samples the trials from the override space."""
    from hydra.core.singleton import Singleton

    if getattr(launcher, "settings", None) is None or not hasattr(launcher, "hydra_context"):
        raise SweepError("Sampled searches (interval(), choice(), range(), a scheduler) need hydra/launcher=ray_tune.")
    config, sweep_dir = _prepare(launcher)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    space = build_search_space(arguments)
    samples = representative_overrides(space)
    composed = _compose_and_validate(launcher, samples, 0)
    metric, mode = _objective(composed)
    storage = _check_storage(composed, sweep_dir)
    _print_watch_line(sweep_dir, storage)
    total = space.num_trials(num_samples)
    log.info("Sampling %d trials on Ray Tune (%s, optimising %s %s): grid %s, sampled %s", total, sweep_dir,
             metric, mode, space.grid or "-", sorted(space.sampled) or "-")

    settings = _settings(launcher)
    # Sampled values may change the request (e.g. model=choice(...)): cache per override list.
    cache: dict[tuple, TrialResources] = {}

    def request_for(overrides: list[str]) -> TrialResources:
        key = tuple(overrides)
        if key not in cache:
            cache[key] = trial_resources(_task_config(_compose(launcher, overrides, 0)))
        return cache[key]

    started, num_nodes = _connect_and_check(settings, [(f"with {' '.join(o)}", request_for(o)) for o in samples])
    _warn_if_results_stay_on_nodes(storage, num_nodes)
    try:
        plan = SweepPlan(
            hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=config,
            singleton_state=Singleton.get_state(), metric=metric, space=space, **_store_fields(storage),
        )
        results = _run_tune(
            settings, sweep_dir, plan,
            param_space=space.param_space(),
            resources_of=lambda trial_config: request_for(trial_overrides(space, trial_config)).placement(),
            name_of=lambda trial: f"job_{int(trial.trial_id.rsplit('_', 1)[-1])}",
            describe=lambda trial_config: " ".join(trial_overrides(space, trial_config)),
            mode=mode,
            manifest={"arguments": arguments, "num_samples": num_samples, "scheduler": scheduler, "seed": seed},
            num_samples=num_samples,
            scheduler=_scheduler(scheduler, composed),
            seed=seed,
        )
        by_num = {}
        for result in results:
            num = _job_num(result)
            overrides = trial_overrides(space, result.config)
            by_num[num] = _row_and_return(result, num, _compose(launcher, overrides, num), metric, mode)
    finally:
        _disconnect(started)
    rows = [by_num[num][0] for num in sorted(by_num)]
    _finish(rows, metric, mode, sweep_dir, storage)
    returns = [by_num[num][1] for num in sorted(by_num)]
    failed = [row for row in rows if row.status == "FAILED"]
    if failed:
        raise SweepError(f"{len(failed)} of {len(rows)} trials failed: " + "; ".join(
            f"job {row.job} ({row.overrides}), log {row.job_dir}/trial.log" for row in failed))
    return returns
