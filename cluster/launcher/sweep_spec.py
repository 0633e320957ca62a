"""What differs between the two kinds of sweep, and nothing else (sweep_pipeline.py runs either):

- a grid: the jobs Hydra's sweeper expanded (comma lists, range(), choice(), glob), one Tune trial each;
- a search: Tune samples each trial's values from `interval()`, `choice()`, `range()` overrides
  (`hydra.sweeper.num_samples` per grid point), with Tune's random draws or a searcher (e.g. Optuna's TPE),
  optionally with a scheduler that stops trials early (ASHA, HyperBand) or trains a population (PBT).

Which override forms a searcher or scheduler can take is checked here, before anything runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra.core.utils import filter_overrides

from cluster.launcher.job_configs import SweepRefused
from cluster.launcher.search_space import SearchSpace, build_search_space, representative_overrides


@dataclass
class SearchSettings:
    """hydra.sweeper.* of a search (see hydra_plugins/ray_tune_launcher/config.py)."""

    num_samples: Optional[int] = None
    search_alg: Any = None  # a `_target_` config of a Tune Searcher, or None (random draws)
    scheduler: Any = None  # a `_target_` config of a Tune scheduler, or None
    seed: Optional[int] = None
    mutable: list = field(default_factory=list)


@dataclass
class SweepSpec:
    # Composed and validated before anything runs: every job of a grid; one per grid point of a search.
    jobs_to_check: list[list[str]]
    # Labels for them in messages ("#3", or "with lr=0.01 model=cnn").
    labels: list[str]
    param_space: dict
    # Stored in the sweep folder: rerunning the same command resumes, another command is refused.
    record: dict
    # How a trial finds its job (tune_trial.SweepPlan): the grid's jobs, or the search space.
    jobs: Optional[list[list[str]]] = None
    space: Optional[SearchSpace] = None
    first_job_num: int = 0
    num_samples: int = 1
    # `_target_` configs of a Tune searcher and scheduler (e.g. ray.tune.schedulers.ASHAScheduler), or None.
    search_alg: Any = None
    scheduler: Any = None
    seed: Optional[int] = None
    # PBT: the sampled keys it may change between epochs (its hyperparam_mutations).
    mutations: dict = field(default_factory=dict)
    # The sweep's first line: what it does and how many trials that makes.
    summary: str = ""
    details: list[str] = field(default_factory=list)
    # Values checked before launch besides jobs_to_check: (key, value, override as typed) swapped into each
    # representative (the bounds of an interval, every choice).
    extra_values: list[tuple[str, str, str]] = field(default_factory=list)


def _presets(presets: Optional[str], example: str = "...") -> str:
    """The app's ready-made searches in a message (hydra.launcher.search_presets), else the sweeper's settings."""
    return f"{presets}={example}" if presets else "hydra.sweeper.search_alg=... / hydra.sweeper.scheduler=..."


def grid_spec(job_overrides: Sequence[Sequence[str]], first_job_num: int, presets: Optional[str] = None) -> SweepSpec:
    from ray import tune

    jobs = [list(overrides) for overrides in job_overrides]
    return SweepSpec(
        jobs_to_check=jobs,
        labels=[f"#{first_job_num + index}" for index in range(len(jobs))],
        param_space={"job": tune.grid_search(list(range(len(jobs))))},
        record={"initial_job_idx": first_job_num, "jobs": jobs},
        jobs=jobs,
        first_job_num=first_job_num,
        summary=f"Grid: {len(jobs)} job{'s' if len(jobs) != 1 else ''} on Ray Tune, every combination of the sweep's "
                f"values (comma lists, range() and choice() enumerate as in Hydra; to sample instead, ask for a "
                f"search: "
                f"hydra.sweeper.num_samples=N, an interval() or {_presets(presets)})",
        details=[f"#{first_job_num + index} : {' '.join(filter_overrides(overrides))}"
                 for index, overrides in enumerate(jobs)],
    )


def target_class(config: Any, setting: str, presets: Optional[str] = None):
    """The class a `_target_` config names; a SweepRefused naming the setting when it names none."""
    from hydra.utils import get_class

    target = config.get("_target_") if isinstance(config, dict) else None
    if not target:
        raise SweepRefused(f"hydra.sweeper.{setting} must be a `_target_` config (e.g. "
                           f"{{_target_: ray.tune.schedulers.ASHAScheduler}}, or {_presets(presets)}), "
                           f"received {config!r}")
    try:
        cls = get_class(str(target))
        return type(cls.__name__, (), {"_configured_name": str(target).rsplit(".", 1)[-1], "_cls": cls}) \
            if cls.__name__ != str(target).rsplit(".", 1)[-1] else cls
    except Exception as error:  # noqa: BLE001 - Hydra says what could not be imported
        ready = f" The searchers and schedulers ready to use are the options of {presets} (--help)." if presets else ""
        raise SweepRefused(f"hydra.sweeper.{setting}._target_={target} names no class ({error}).{ready}") from None


def _name(cls) -> str:
    # The name the config uses (ASHAScheduler, not the class it aliases, AsyncHyperBandScheduler).
    return getattr(cls, "_configured_name", None) or (cls.__name__ if cls is not None else "random search")


def _is_pbt(cls) -> bool:
    from ray.tune.schedulers import PopulationBasedTraining

    return cls is not None and issubclass(getattr(cls, "_cls", cls), PopulationBasedTraining)


def _grid_as_choices(space: SearchSpace, searcher) -> list[str]:
    """A model-based searcher proposes every value itself and cannot run a grid: under one, a comma list
    (`model=cnn,lstm`) becomes a choice it searches over, as Hydra's Optuna sweeper treats it, and
    hydra.sweeper.num_samples counts trials in all, not per value. Returns what was turned, for the summary."""
    if searcher is None or not space.grid:
        return []
    from ray import tune

    turned = []
    for key, values in list(space.grid.items()):
        space.sampled[key] = tune.choice(list(values))
        space.extremes[key] = list(values)  # every value is checked before launch
        turned.append(space.typed[key])
        del space.grid[key]
    return turned


def _check_pbt(space: SearchSpace, searcher, scheduler, mutable: Sequence[str], num_samples: int,
               presets: Optional[str]) -> dict:
    """PBT copies trials into each other and changes their values between epochs: only keys a job can take on
    mid-training may be swept. Returns the hyperparam_mutations (the sampled domains of those keys)."""
    if searcher is not None:
        raise SweepRefused(f"{_name(scheduler)} chooses its own trials and cannot be combined with {_name(searcher)}: "
                         f"drop hydra.sweeper.search_alg" + (f" (e.g. {presets}=pbt alone)." if presets else "."))
    allowed = ", ".join(mutable) or "none (hydra.sweeper.mutable is empty)"
    for key in [*space.grid, *space.sampled]:
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in mutable):
            raise SweepRefused(
                f"`{space.typed[key]}`: {_name(scheduler)} changes hyperparameters during training, and {key} cannot "
                f"change mid-training (what can: {allowed}). Fix {key} for the whole sweep ({key}=VALUE) and run one "
                f"population per value, or compare values with a search that does not change them "
                f"({_presets(presets, 'asha') if presets else 'e.g. ASHAScheduler'})."
            )
    if not space.sampled:
        raise SweepRefused(f"{_name(scheduler)} needs hyperparameters to explore: give at least one as an interval(), "
                         f"e.g. 'lr=tag(log,interval(1e-4,1e-2))' (what can change: {allowed}).")
    if len(space.grid_combinations()) * num_samples < 2:
        raise SweepRefused(
            f"{_name(scheduler)} needs a population of at least 2 trials: set hydra.sweeper.num_samples.")
    return {key: space.sampled[key] for key in space.sampled}


def search_spec(arguments: Sequence[str], settings: SearchSettings, presets: Optional[str] = None) -> SweepSpec:
    """`presets`: the app's config group of ready-made searches (hydra.launcher.search_presets), for messages."""
    space = build_search_space(list(arguments))
    num_samples = settings.num_samples if settings.num_samples is not None else 1
    if num_samples < 1:
        raise SweepRefused(f"hydra.sweeper.num_samples must be at least 1, received {num_samples}.")
    searcher = target_class(settings.search_alg, "search_alg", presets) if settings.search_alg is not None else None
    scheduler = target_class(settings.scheduler, "scheduler", presets) if settings.scheduler is not None else None
    as_choices = _grid_as_choices(space, searcher)
    mutations = _check_pbt(space, searcher, scheduler, settings.mutable, num_samples, presets) \
        if _is_pbt(scheduler) else {}
    samples = representative_overrides(space)
    num_trials = space.num_trials(num_samples)
    how = _name(searcher) if searcher is not None else "random draws"
    if scheduler is not None:
        how += f" with {_name(scheduler)}"
    grid = f"{num_samples} samples"
    if space.grid:
        grid = f"{len(space.grid_combinations())} grid points ({', '.join(space.grid)}) x {grid}"
    return SweepSpec(
        jobs_to_check=samples,
        labels=[f"with {' '.join(overrides)}" for overrides in samples],
        param_space=space.param_space(),
        # search_alg only when set: a sweep recorded before searchers existed still resumes.
        record={"arguments": list(arguments), "num_samples": num_samples, "scheduler": settings.scheduler,
                "seed": settings.seed, **({"search_alg": settings.search_alg} if settings.search_alg else {})},
        space=space,
        num_samples=num_samples,
        search_alg=settings.search_alg,
        scheduler=settings.scheduler,
        seed=settings.seed,
        mutations=mutations,
        summary=f"Search: {num_trials} trial{'s' if num_trials != 1 else ''} on Ray Tune ({grid}), {how}; sampled: "
                f"{', '.join(space.typed[key] for key in space.sampled) or '-'}"
                + (f" ({', '.join(as_choices)}: searched as a choice, {_name(searcher)} proposes every value itself)"
                   if as_choices else ""),
        extra_values=[(key, value, space.typed[key]) for key, values in space.extremes.items() for value in values],
    )
