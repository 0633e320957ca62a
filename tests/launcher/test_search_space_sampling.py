"""choice() and range() in a search: Tune, drawing trials as the launcher has it draw them (its random search
with the sweep's seed, cluster/launcher/tuner.py), draws every value the override names and no other, and each trial's
overrides spell the drawn value as it would be typed (no Ray cluster, no TensorFlow)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from cluster.launcher.search_space import build_search_space, trial_overrides

ARGUMENTS = ["x=choice(a,b,c,d)", "n=range(1,5)", "t=tag(fruit,choice(apple,pear,fig))", "k=range(0,10,3)",
             "trainer.epochs=2"]
# Spelled out, not derived from the code under test: what each sampled override can become in a trial.
EXPECTED = {
    "x": {"x=a", "x=b", "x=c", "x=d"},
    "n": {"n=1", "n=2", "n=3", "n=4"},  # range's end is excluded, as in Hydra's grid and Python
    "t": {"t=apple", "t=pear", "t=fig"},
    "k": {"k=0", "k=3", "k=6", "k=9"},
}


def draw_trials(space, num_samples: int, seed: int) -> list[dict]:
    """The configs Tune's random search gives its trials for the space (cluster/launcher/tuner.py seeds it so)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    searcher = BasicVariantGenerator(random_state=seed)
    searcher.add_configurations({"sweep": {"run": lambda config: None, "config": space.param_space(),
                                           "num_samples": num_samples}})
    configs = []
    while (trial := searcher.next_trial()) is not None:
        configs.append(trial.config)
    return configs


@pytest.mark.parametrize("seed", [0, 1])
def test_every_choice_and_range_value_is_drawn_and_none_other(seed):
    space = build_search_space(ARGUMENTS)
    assert set(space.sampled) == set(EXPECTED) and space.grid == {} and space.fixed == ["trainer.epochs=2"]
    configs = draw_trials(space, num_samples=200, seed=seed)
    assert len(configs) == 200
    drawn: dict[str, set[str]] = defaultdict(set)
    for config in configs:
        overrides = trial_overrides(space, config)
        assert overrides[0] == "trainer.epochs=2" and len(overrides) == 1 + len(EXPECTED)
        for override in overrides[1:]:
            drawn[override.split("=", 1)[0]].add(override)
    assert dict(drawn) == EXPECTED
    # The values checked before launch are the values that can be drawn.
    for key, overrides in EXPECTED.items():
        assert {f"{key}={value}" for value in space.extremes[key]} == overrides


def test_a_drawn_choice_reads_back_as_the_value_the_choice_names():
    """Values Hydra quotes or escapes (a space, a comma) or reads as numbers and booleans survive the trip
    through Tune and back into an override string."""
    typed = "q=choice('a b',\"c,d\",1e-3,true,7)"
    space = build_search_space([typed])
    parser = OverridesParser.create()
    named = parser.parse_override(typed).value().list
    read_back = []
    for config in draw_trials(space, num_samples=60, seed=0):
        (override,) = trial_overrides(space, config)
        read_back.append(parser.parse_override(override).value())
    # repr tells 'a b' from a b, True from 1, 0.001 from '0.001': every value drawn, each read back as named.
    assert ({repr(value) for value in read_back} == {repr(value) for value in named}
            == {"'a b'", "'c,d'", "0.001", "True", "7"})
