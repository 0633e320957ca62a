"""What differs between the two kinds of sweep, and nothing else (sweep_pipeline.py runs either):

- a grid: the jobs Hydra's sweeper expanded (comma lists, glob), one Tune trial each;
- a search: Tune samples each trial's values from `interval()`, `choice()`, `range()` overrides
  (`hydra.sweeper.num_samples` per grid point), optionally with a scheduler that stops trials early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra.core.utils import filter_overrides

from .search_space import SearchSpace, build_search_space, representative_overrides


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
    # A `_target_` config of a Tune scheduler (e.g. ray.tune.schedulers.ASHAScheduler), or None.
    scheduler: Any = None
    seed: Optional[int] = None
    summary: str = ""
    details: list[str] = field(default_factory=list)


def grid_spec(job_overrides: Sequence[Sequence[str]], first_job_num: int) -> SweepSpec:
    from ray import tune

    jobs = [list(overrides) for overrides in job_overrides]
    return SweepSpec(
        jobs_to_check=jobs,
        labels=[f"#{first_job_num + index}" for index in range(len(jobs))],
        param_space={"job": tune.grid_search(list(range(len(jobs))))},
        record={"initial_job_idx": first_job_num, "jobs": jobs},
        jobs=jobs,
        first_job_num=first_job_num,
        summary=f"Launching {len(jobs)} jobs on Ray Tune",
        details=[f"#{first_job_num + index} : {' '.join(filter_overrides(overrides))}" for index, overrides in enumerate(jobs)],
    )


def search_spec(arguments: Sequence[str], num_samples: int, scheduler: Any, seed: Optional[int]) -> SweepSpec:
    space = build_search_space(list(arguments))
    samples = representative_overrides(space)
    return SweepSpec(
        jobs_to_check=samples,
        labels=[f"with {' '.join(overrides)}" for overrides in samples],
        param_space=space.param_space(),
        record={"arguments": list(arguments), "num_samples": num_samples, "scheduler": scheduler, "seed": seed},
        space=space,
        num_samples=num_samples,
        scheduler=scheduler,
        seed=seed,
        summary=f"Sampling {space.num_trials(num_samples)} trials on Ray Tune (grid {space.grid or '-'}, "
                f"sampled {sorted(space.sampled) or '-'})",
    )
