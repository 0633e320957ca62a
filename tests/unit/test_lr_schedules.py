"""lr_schedule: each schedule's learning-rate curve over a stage's steps, fed to a real Keras optimizer,
and the configurations a schedule cannot run with refused before TensorFlow trains anything."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from tests.unit.test_config_compose import compose_job, group_options, refusal
from trainers.optimizers import build_optimizer
from trainers.schedules import build_schedule, steps_per_epoch
from trainers.schema import ConfigError, LRScheduleConfig, validate

PEAK = 1e-2
STEPS = 100


def schedule(name: str, **values):
    return build_schedule(OmegaConf.structured(LRScheduleConfig(name=name, **values)), PEAK, STEPS)


def curve(learning_rate, steps=range(0, STEPS + 1)) -> np.ndarray:
    return np.array([float(learning_rate(step)) for step in steps])


def test_constant_is_the_plain_learning_rate():
    assert schedule("constant") == PEAK
    assert build_schedule(None, PEAK, STEPS) == PEAK  # configs composed without the group


def test_cosine_falls_from_lr_to_the_final_fraction_along_half_a_cosine():
    values = curve(schedule("cosine", final_fraction=0.1))
    assert values[0] == pytest.approx(PEAK)
    assert values[50] == pytest.approx(PEAK * (0.1 + 0.9 * 0.5), rel=1e-5)  # cos(pi/2) = 0: halfway down
    assert values[100] == pytest.approx(PEAK * 0.1, rel=1e-5)
    assert np.all(np.diff(values) <= 0)


def test_exponential_reaches_the_final_fraction_at_the_last_step():
    values = curve(schedule("exponential", final_fraction=0.01))
    assert values[0] == pytest.approx(PEAK)
    assert values[50] == pytest.approx(PEAK * 0.1, rel=1e-5)  # 0.01 ** 0.5
    assert values[100] == pytest.approx(PEAK * 0.01, rel=1e-5)


def test_warmup_rises_linearly_then_decays_along_a_cosine():
    values = curve(schedule("warmup", warmup_fraction=0.2, final_fraction=0.0))
    warmup = values[:21]
    np.testing.assert_allclose(warmup, PEAK * np.arange(21) / 20, rtol=1e-5, atol=1e-9)
    assert values.argmax() == 20 and values[20] == pytest.approx(PEAK)
    assert values[60] == pytest.approx(PEAK * 0.5, rel=1e-5)  # halfway through the 80 decay steps
    assert values[100] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(values[20:]) <= 0)


def test_the_optimizer_follows_the_schedule_step_by_step():
    optimizer = build_optimizer(compose_job("optimizer=adamw").optimizer, schedule("warmup", warmup_fraction=0.2))
    weight = keras.Variable(np.ones(3, "float32"))
    seen = []
    for _ in range(30):
        seen.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        optimizer.apply_gradients([(np.ones(3, "float32"), weight)])
    np.testing.assert_allclose(seen[:21], PEAK * np.arange(21) / 20, rtol=1e-5, atol=1e-9)
    assert seen[25] < seen[20]


def test_a_schedule_spans_every_step_of_the_stage():
    assert steps_per_epoch(1000, 64) == 16 and steps_per_epoch(10, 64) == 1


@pytest.mark.parametrize("name", ["cosine", "exponential", "warmup"])
def test_choosing_a_schedule_switches_reduce_lr_on_plateau_off(name):
    cfg = compose_job(f"lr_schedule={name}")
    validate(cfg)
    assert cfg.lr_schedule.name == name and cfg.trainer.callbacks.reduce_lr_on_plateau.enabled is False
    assert compose_job().trainer.callbacks.reduce_lr_on_plateau.enabled is True  # constant keeps it


def test_turning_reduce_lr_on_plateau_back_on_with_a_schedule_is_refused():
    cfg = compose_job("lr_schedule=cosine", "trainer.callbacks.reduce_lr_on_plateau.enabled=true")
    with pytest.raises(ConfigError,
                       match="lr_schedule=cosine drives the learning rate.*reduce_lr_on_plateau.enabled=false"):
        validate(cfg)


def test_unknown_schedule_lists_the_valid_ones():
    with pytest.raises(ConfigCompositionException) as refused:
        compose_job("lr_schedule=step")
    for option in ("constant", "cosine", "exponential", "warmup"):
        assert option in str(refused.value)
    assert group_options("lr_schedule") == ["constant", "cosine", "exponential", "warmup"]
    assert re.search("`lr_schedule.name`: received 'step'.*constant, cosine, exponential, warmup",
                     refusal("lr_schedule.name=step"))


@pytest.mark.parametrize(
    "overrides,field",
    [
        (["lr_schedule=warmup", "lr_schedule.warmup_fraction=1.0"], "lr_schedule.warmup_fraction"),
        (["lr_schedule=exponential", "lr_schedule.final_fraction=0"], "lr_schedule.final_fraction"),
        (["lr_schedule=cosine", "lr_schedule.final_fraction=1.5"], "lr_schedule.final_fraction"),
    ],
)
def test_schedule_fractions_out_of_range_are_refused(overrides, field):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        validate(compose_job(*overrides))
