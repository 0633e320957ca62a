"""The sweep's Tune searcher and scheduler, built from their `_target_` configs (hydra.sweeper.search_alg,
scheduler) with what the sweep adds: the objective and, for population-based training, the values it may
change, kept inside the intervals they were sampled from."""

from __future__ import annotations

import random
from typing import Any

from cluster.launcher.job_configs import SweepRefused
from cluster.launcher.sweep_spec import SweepSpec


def build_algorithms(spec: SweepSpec, metric) -> tuple[Any, Any]:
    """(scheduler, search_alg) of the sweep; None for what it does not use. Tune passes them the metric and mode."""
    if spec.mutations and metric is None:
        raise SweepRefused("Population-based training compares trials on a metric: set hydra.launcher.metric.")
    if spec.mutations and spec.seed is not None:
        random.seed(spec.seed)  # PBT explores with Python's random module, in this process
    scheduler = _instantiate(spec.scheduler, **(_pbt_extras(spec) if spec.mutations else {}))
    return scheduler, _instantiate(spec.search_alg)


def _instantiate(config, **extra):
    if config is None:
        return None
    from hydra.utils import instantiate

    try:
        # Extras (Tune search-space objects, functions) passed to the built partial, not merged into the config.
        return instantiate(config, _partial_=True)(**extra)
    except Exception as error:  # noqa: BLE001 - a wrong argument in a searcher's or scheduler's config
        raise SweepRefused(f"{config.get('_target_')} could not be built from its config ({config}): {error}") from None


def clip_to_space(bounds: dict, config: dict) -> dict:
    """PBT's custom_explore_fn: a perturbed value (x0.8, x1.2) stays inside the interval it was sampled from."""
    chosen = config.get("overrides", {})
    for key, (lower, upper, integer) in bounds.items():
        if key in chosen:
            value = min(max(chosen[key], lower), upper)
            chosen[key] = int(round(value)) if integer else value
    return config


def _pbt_extras(spec: SweepSpec) -> dict:
    """What PopulationBasedTraining needs from the search space: the values it may change, kept in their bounds."""
    from functools import partial

    from ray.tune.search.sample import Float, Integer

    bounds = {}
    for key, domain in spec.mutations.items():
        if isinstance(domain, (Float, Integer)):
            upper = domain.upper - 1 if isinstance(domain, Integer) else domain.upper  # randint's upper is exclusive
            bounds[key] = (domain.lower, upper, isinstance(domain, Integer))
    return {"hyperparam_mutations": {"overrides": dict(spec.mutations)},
            "custom_explore_fn": partial(clip_to_space, bounds)}


