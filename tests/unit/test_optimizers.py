"""Optimizers are the Keras classes conf/optimizer/*.yaml name (`_target_`), built with every setting of
their config and the job's learning rate."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tests.unit.test_config_compose import compose_job, group_options
from trainers.optimizers import build_optimizer
from trainers.schema import AdamWConfig

CLASSES = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD,
           "rmsprop": keras.optimizers.RMSprop}


def test_every_optimizer_option_is_tested():
    assert group_options("optimizer") == sorted(CLASSES)


@pytest.mark.parametrize("option", sorted(CLASSES))
def test_each_option_builds_its_keras_class_with_the_configs_settings(option):
    cfg = compose_job(f"optimizer={option}", "lr=3e-4", "optimizer.clipnorm=2.0")
    optimizer = build_optimizer(cfg.optimizer, cfg.lr)
    assert type(optimizer) is CLASSES[option] and optimizer.name == option
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(3e-4)
    settings = {key: value for key, value in cfg.optimizer.items() if key not in ("_target_", "name")}
    assert settings and settings["clipnorm"] == 2.0
    keras_config = optimizer.get_config()
    for key, value in settings.items():
        assert keras_config[key] == pytest.approx(value), key


def test_a_setting_has_one_default_and_an_override_reaches_keras():
    assert compose_job("optimizer=adamw").optimizer.weight_decay == AdamWConfig.weight_decay == 0.004
    assert "weight_decay" not in (compose_job().optimizer)  # adam has none to ignore
    optimizer = build_optimizer(compose_job("optimizer=adamw", "optimizer.weight_decay=0.05").optimizer, 1e-3)
    assert optimizer.weight_decay == pytest.approx(0.05)
    assert {field.name for field in dataclasses.fields(AdamWConfig)} >= {"beta_1", "beta_2", "epsilon", "weight_decay"}


def test_an_optimizer_from_the_typed_config_saves_with_the_model(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=build_optimizer(compose_job("optimizer=sgd").optimizer, 1e-2), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is keras.optimizers.SGD and loaded.optimizer.name == "sgd"
