"""What the sweep's driver ships to every trial (SweepPlan: pickled once) and what it keeps for Tune, which
pickles and copies its trainable, specs and name creator for every trial it creates (InDriver)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from cluster.launcher.search_space import SearchSpace, trial_overrides


@dataclass
class SweepPlan:
    """Everything a trial needs, pickled once and shipped to every trial."""

    hydra_context: Any
    task_function: Any
    config: Any  # the multirun's config (hydra.sweep.dir made absolute)
    singleton_state: Any
    metric: Optional[str] = None
    initial_job_idx: int = 0
    # Grid: each job's overrides, by position. Search: the space a trial's sampled values come from.
    jobs: Optional[list[list[str]]] = None
    space: Optional[SearchSpace] = None
    # The sweep's store (absolute URI) and the id its driver claimed the sweep's name with; None: no store.
    store_uri: Optional[str] = None
    sweep_id: Optional[str] = None
    # Population-based training: snapshot the job's state as a Tune checkpoint every this many epochs.
    checkpoint_interval: Optional[int] = None

    def overrides_of(self, trial_config: dict) -> list[str]:
        if self.jobs is not None:
            return list(self.jobs[int(trial_config["job"])])
        return trial_overrides(self.space, trial_config)

    def job_of(self, trial_config: dict, trial_id: str, trial_name: Optional[str] = None) -> tuple[int, list[str]]:
        """(hydra.job.num, overrides) of the trial."""
        if self.jobs is not None:
            return self.initial_job_idx + int(trial_config["job"]), self.overrides_of(trial_config)
        if trial_name and trial_name.startswith("job_") and trial_name[4:].isdigit():
            return int(trial_name[4:]), self.overrides_of(trial_config)  # numbered by the driver (JobNumbers)
        # Tune's random search numbers the trials it generates in order: <experiment>_<counter>, kept across restores.
        counter = tune_counter(trial_id)
        if counter is None:
            raise ValueError(
                f"trial {trial_id} ({trial_name}) has no job number: it was not named by the sweep's driver")
        return self.initial_job_idx + counter, self.overrides_of(trial_config)


def tune_counter(trial_id: str) -> Optional[int]:
    """The counter of a trial id Tune's random search made (`<experiment>_<00012>`); None for a searcher's
    random id, even one whose 8 hex digits happen to be all decimal ("81030035" was taken for job 81030035)."""
    experiment, _, counter = trial_id.rpartition("_")
    return int(counter) if experiment and counter.isdigit() else None


class InDriver:
    """A function of the driver that Tune keeps in its trainable and specs, which it pickles and unpickles for
    every trial it creates: pickled as a name, so that costs the same however much the function holds (the
    sweep's plan and composed configs made it about 0.5 s per trial). Tune calls it in the driver only, where
    the name was registered (again by a resumed driver before Tune restores)."""

    _functions: dict[str, Callable] = {}

    def __init__(self, name: str, function: Callable) -> None:
        self.name = name
        InDriver._functions[name] = function

    def __call__(self, *arguments):
        return InDriver._functions[self.name](*arguments)

    def __getstate__(self) -> dict:
        return {"name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.name = state["name"]
