"""Augmentation is part of training only: the random layers change images when training=True and leave
them untouched in evaluation and prediction, so validation and test data are never augmented."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from trainers.models import build_model
from trainers.pipeline import DataSpec
from trainers.schema import CNNConfig, ConfigError, register_schemas, validate

CONF = Path(__file__).resolve().parents[2] / "conf"
register_schemas()
AUGMENTATIONS = ("none", "light", "strong")


def compose_job(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("augmentation", AUGMENTATIONS)
def test_each_augmentation_composes_with_the_cnn_sweep_command(augmentation):
    # What `python launch.py -m model=cnn augmentation=none,light,strong` composes for each trial.
    cfg = compose_job("model=cnn", f"augmentation={augmentation}")
    validate(cfg)
    assert cfg.augmentation.name == augmentation


def test_default_is_no_augmentation():
    cfg = compose_job()
    assert cfg.augmentation.name == "none" and not cfg.augmentation.flip and cfg.augmentation.rotation == 0


def test_augmentation_on_data_that_are_not_images_is_refused():
    with pytest.raises(ConfigError, match="augmentation=light transforms images.*data=diabetes.*augmentation=none"):
        validate(compose_job("model=mlp", "data=diabetes", "augmentation=light"))


@pytest.fixture(scope="module")
def strong_model():
    keras.utils.set_random_seed(0)
    augmentation = compose_job("augmentation=strong").augmentation
    spec = DataSpec((16, 16, 3), "image", "multiclass", 3, 0, 32, rescale=1 / 255)
    cfg = OmegaConf.structured(CNNConfig(name="cnn", filters=[8], dense_units=8, dropout=0.0))
    return build_model(cfg, spec, augmentation=augmentation)


def raw_images():
    return np.random.default_rng(0).uniform(0, 255, size=(6, 16, 16, 3)).astype("float32")


def test_augmentation_layers_change_images_in_training_only(strong_model):
    names = [layer.name for layer in strong_model.layers]
    for name in ("random_flip", "random_rotation", "random_zoom", "random_translation", "random_contrast"):
        assert name in names
    augmented = keras.Model(strong_model.input, strong_model.get_layer("random_contrast").output)
    images = raw_images()
    inference = augmented(images, training=False).numpy()
    np.testing.assert_allclose(inference, images / 255, rtol=1e-6, atol=1e-6)  # only rescaled
    training = augmented(images, training=True).numpy()
    assert np.abs(training - images / 255).mean() > 0.01


def test_same_input_gives_the_same_output_in_evaluation_and_prediction(strong_model):
    strong_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images, labels = raw_images(), np.array([0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(strong_model.predict(images, verbose=0), strong_model.predict(images, verbose=0))
    assert strong_model.evaluate(images, labels, verbose=0) == strong_model.evaluate(images, labels, verbose=0)
    # While training, the same batch reaches the body differently each call.
    first, second = strong_model(images, training=True).numpy(), strong_model(images, training=True).numpy()
    assert not np.allclose(first, second)
