"""Every private API of Hydra and Ray the launcher uses, in one place, each for a reason no public one covers.
`tests/launcher/test_private_apis.py` calls each of them, so an upgrade that moves or changes one fails there,
by name, not somewhere in a sweep. Imports are deferred: importing this module costs nothing.

    hydra  ConfigLoaderImpl             a loader on another search path (a node's own copy of the app)
    hydra  apply_overrides              value overrides applied as Hydra applies them, without composing again
    hydra  overrides_dirname            hydra.job.override_dirname as Hydra computes it
    hydra  failed_job_error             the exception a failed JobReturn holds (its getter raises it and logs)
    hydra  grid_batches                 Hydra's own expansion of a grid into jobs (BasicSweeper, which the
                                        sweeper shim in hydra_plugins/ also subclasses)
    ray    experiment_trials            a ResultGrid's trials, in the order of its results
    ray    move_trial_to                a trial pointed at the experiment's folder (as Tune's restore does)
    ray    leave_uncounted              failures Tune leaves out of max_failures as it does a preempted node's
                                        (Trial.handle_error, RayActorError's preempted flag)
    ray    actor_death_cause            why an actor died, from the words Ray's ActorDiedError carries (a node's
                                        death, a SIGTERM); the exception has no field for either
    ray    package_files / MAX_PACKAGE  what `ray job submit --working-dir` would upload, and Ray's size limit
    ray    prepare_and_validate_cluster what `ray up` checks in a cluster-launcher file before calling the cloud
    gcs    storage_http_session         a storage client's HTTP session (google-cloud-core's `_http`), to widen
                                        its connection pool for parallel transfers
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional


def config_loader(search_path):
    """A Hydra config loader for `search_path` (Hydra has no public constructor for one)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    return ConfigLoaderImpl(config_search_path=search_path)


def apply_overrides(overrides: list, config) -> None:
    """Parsed value overrides applied to `config` in place, as Hydra applies them when it composes."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(overrides, config)


def overrides_dirname(overrides: list, kv_sep: str, item_sep: str, exclude_keys: list) -> str:
    from hydra._internal.config_loader_impl import get_overrides_dirname

    return get_overrides_dirname(overrides=overrides, kv_sep=kv_sep, item_sep=item_sep, exclude_keys=exclude_keys)


def grid_batches(parsed_overrides: list, max_batch_size) -> list:
    """The jobs of a grid, in batches, exactly as Hydra's basic sweeper expands them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(parsed_overrides, max_batch_size)


def failed_job_error(job_return) -> Any:
    """What a JobReturn holds as its return value, also for a failed job (`return_value` raises it)."""
    return job_return._return_value


def experiment_trials(result_grid) -> list:
    """The Tune trials behind a ResultGrid, in the order of its results (Result objects carry no trial)."""
    return list(result_grid._experiment_analysis.trials)


def move_trial_to(trial, experiment_dir: str) -> bool:
    """Point a Tune trial at the experiment folder `experiment_dir` (<storage path>/<name>) when it names another,
    as Tune's restore does for the trials it restores (TuneController._restore_trials, trial.set_storage): the
    trials the restored searcher of an experiment moved to another folder creates name the folder the experiment
    started in (its spec's storage context). Returns whether the trial was moved."""
    import copy

    storage = trial.storage
    target = Path(experiment_dir)
    if storage is None or Path(storage.experiment_fs_path) == target:
        return False
    moved = copy.copy(storage)
    moved.storage_fs_path, moved.experiment_dir_name = str(target.parent), target.name
    trial.set_storage(moved)
    return True


def leave_uncounted(is_uncounted: Callable[[BaseException], bool]) -> None:
    """Tune counts every failure of a trial toward max_failures except a RayActorError whose `preempted` flag is
    set (Trial.handle_error -> _handle_ray_actor_error; Ray sets the flag only for a node its autoscaler drained for
    preemption, and RAY_TRAIN_COUNT_PREEMPTION_AS_FAILURE=1 counts those too). Every trial of this process hands
    Tune the failures `is_uncounted` recognises as such an error (same words), so Tune's own rule leaves them out.
    Installed on the class once; a later call replaces the test."""
    from ray.exceptions import RayActorError
    from ray.tune.experiment.trial import Trial

    original = getattr(Trial.handle_error, "counted_by_tune", Trial.handle_error)

    def handle_error(self, exc=None):
        if exc is not None and is_uncounted(exc):
            exc = RayActorError(error_msg=str(exc), preempted=True)
        return original(self, exc)

    handle_error.counted_by_tune = original
    Trial.handle_error = handle_error


# Ray's ActorDiedError words (its GCS and its worker's SIGTERM handler write them) -> why the actor died.
_ACTOR_DEATH_WORDS = {"because its node has died": "node died", "The process receives a SIGTERM": "SIGTERM"}


def actor_death_cause(error: BaseException) -> Optional[str]:
    """"node died" (its node's death was noticed: a lost VM, a killed raylet), "SIGTERM" (the actor's process was
    told to stop: a preempted VM's shutdown, a drained node) or None (a crash, an OOM kill, anything else)."""
    text = str(error)
    return next((cause for words, cause in _ACTOR_DEATH_WORDS.items() if words in text), None)


def package_files(directory: Path, visit: Callable[[Path], None]) -> None:
    """Call `visit` on every path Ray would upload from `directory` as a job's working dir (its default
    excludes, and .gitignore / .rayignore files in every folder)."""
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    _dir_travel(directory, [_get_excludes(directory, ray_constants.get_runtime_env_default_excludes())], visit,
                include_gitignore=True)


def max_package_bytes() -> int:
    """Ray's limit on a job's working dir."""
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    return int(GCS_STORAGE_MAX_SIZE)


def prepare_and_validate_cluster(config: dict) -> dict:
    """Ray's defaults merged into a cluster-launcher config (a new dict), then Ray's schema and rules; raises
    Ray's own errors (jsonschema.ValidationError, ValueError) naming the field."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def storage_http_session(client) -> Any:
    """The google.cloud.storage client's authorized requests session (built on first use), or None."""
    return getattr(client, "_http", None)
