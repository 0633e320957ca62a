"""Hydra sweep overrides -> a Ray Tune parameter space.

Used only when the user asks for a search (asks_for_search); otherwise `-m` is Hydra's own grid, where
range() and choice() enumerate like comma lists. In a search, comma lists (`model=cnn,lstm`) and glob() stay
a grid (tune.grid_search); `choice()` and `range()` become tune.choice, `interval(a,b)` tune.uniform
(`tag(int, interval(a,b))` tune.randint, both bounds included), and `tag(log, interval(a,b))` the log-uniform
versions. Each trial turns its sampled values back into override
strings, so a trial's job is composed exactly as the app run with those overrides would compose it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override


@dataclass
class SearchSpace:
    # Overrides every trial gets unchanged.
    fixed: list[str] = field(default_factory=list)
    # Override key -> the values of a grid dimension (strings, ready to put after `=`).
    grid: dict[str, list[str]] = field(default_factory=dict)
    # Override key -> a tune domain to sample.
    sampled: dict[str, Any] = field(default_factory=dict)
    # Override key -> the override as typed (for messages).
    typed: dict[str, str] = field(default_factory=dict)
    # Sampled key -> the values checked before launch (an interval's bounds, every choice).
    extremes: dict[str, list[str]] = field(default_factory=dict)

    def param_space(self) -> dict:
        from ray import tune

        space = {key: tune.grid_search(values) for key, values in self.grid.items()}
        space.update(self.sampled)
        return {"overrides": space}

    def grid_combinations(self) -> list[dict[str, str]]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]

    def num_trials(self, num_samples: int) -> int:
        return len(self.grid_combinations()) * num_samples


def _parse(arguments: Sequence[str]) -> list[Override]:
    return OverridesParser.create().parse_overrides(list(arguments))


def _is_grid(override: Override) -> bool:
    value = override.value()
    return override.is_choice_sweep() and (not isinstance(value, ChoiceSweep) or value.simple_form)


def has_interval(arguments: Sequence[str]) -> bool:
    """True when an override is an interval(), which only a search can sample (a grid cannot enumerate it)."""
    return any(isinstance(override.value(), IntervalSweep) for override in _parse(arguments))


def asks_for_search(arguments: Sequence[str], num_samples: Optional[int], search_alg: Any, scheduler: Any) -> bool:
    """A search is run only when asked for: num_samples, an interval(), a searcher or a scheduler. Otherwise
    `-m` keeps Hydra's meaning and range()/choice() enumerate every value like comma lists."""
    return num_samples is not None or search_alg is not None or scheduler is not None or has_interval(arguments)


def _domain(override: Override) -> Any:
    from ray import tune

    value = override.value()
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if "int" in value.tags:  # both bounds included, as in Hydra's Optuna sweeper
            return (tune.lograndint if log else tune.randint)(int(value.start), int(value.end) + 1)
        return (tune.loguniform if log else tune.uniform)(float(value.start), float(value.end))
    # choice(...) and range(...): sample one of the enumerated values.
    return tune.choice(list(override.sweep_string_iterator()))


def build_search_space(arguments: Sequence[str]) -> SearchSpace:
    space = SearchSpace()
    for override in _parse(arguments):
        key = override.get_key_element()
        if not override.is_sweep_override():
            space.fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
            continue
        space.typed[key] = override.input_line or key
        if _is_grid(override):
            space.grid[key] = list(override.sweep_string_iterator())
        else:
            space.sampled[key] = _domain(override)
            space.extremes[key] = _extremes(override)
    return space


def _extremes(override: Override) -> list[str]:
    value = override.value()
    if isinstance(value, IntervalSweep):
        if "int" in value.tags:
            return [str(int(value.start)), str(int(value.end))]
        return [format_value(float(value.start)), format_value(float(value.end))]
    return list(override.sweep_string_iterator())


def format_value(value: Any) -> str:
    """A sampled value as it would be typed after `key=` (repr keeps floats exact)."""
    return repr(value) if isinstance(value, float) else str(value)


def trial_overrides(space: SearchSpace, trial_config: dict) -> list[str]:
    """The override strings for one trial, from the values Tune chose for it."""
    chosen = trial_config["overrides"]
    return space.fixed + [f"{key}={format_value(chosen[key])}" for key in [*space.grid, *space.sampled]]


def representative_overrides(space: SearchSpace) -> list[list[str]]:
    """One job per grid combination with every sampled key at a drawn value: composed and validated
    before the sweep starts, so a bad override fails fast."""
    jobs = []
    for combination in space.grid_combinations():
        sampled = {key: domain.sample() for key, domain in space.sampled.items()}
        jobs.append(trial_overrides(space, {"overrides": {**combination, **sampled}}))
    return jobs
