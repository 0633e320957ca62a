"""model=transfer: every backbone builds offline (weights=null) on small grey images, applies its own
preprocess_input, starts frozen and unfreezes only its last layers (never BatchNormalization); bad
transfer settings are refused with the field, the value and the choices. Construction only: no training."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.unit.test_config_compose import compose_job, refusal
from trainers.models import build_model
from trainers.pipeline import DataSpec
from trainers.schema import BACKBONES, CNNConfig, ConfigError, MLPConfig, RNNConfig, TransferConfig, validate
from trainers.transfer import preprocessing_layer, unfreeze_last_layers

DIGITS = DataSpec((8, 8, 1), "image", "multiclass", 10, vocabulary_size=0, num_train_examples=32)
PREPROCESS_INPUT = {
    "efficientnet_b0": keras.applications.efficientnet.preprocess_input,
    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
    "resnet50": keras.applications.resnet50.preprocess_input,
}


def transfer_cfg(backbone: str, **values):
    values.setdefault("weights", None)
    values.setdefault("input_size", 32)
    return OmegaConf.structured(TransferConfig(name="transfer", backbone=backbone, **values))


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_each_backbone_builds_offline_on_8x8_grey_digits_with_a_frozen_body(backbone):
    model = build_model(transfer_cfg(backbone), DIGITS)
    body = model.get_layer(backbone)
    assert tuple(body.input_shape[1:]) == (32, 32, 3)  # resized and turned RGB inside the model
    assert not body.trainable and len(body.trainable_weights) == 0
    # Only the head trains in the first stage: the dense layer's kernel and bias.
    assert [weight.path for weight in model.trainable_weights] == ["predictions/kernel", "predictions/bias"]
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    assert model.predict(images, verbose=0).shape == (2, 10)


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("channels", [1, 3])
def test_the_model_applies_the_backbones_own_preprocess_input(backbone, channels):
    pixels = np.random.default_rng(1).random((2, 4, 4, channels)).astype("float32")  # 0..1, as the data gives them
    rgb = np.repeat(pixels, 3, axis=-1) if channels == 1 else pixels
    expected = PREPROCESS_INPUT[backbone](255.0 * rgb)  # Keras' function takes 0..255 RGB
    np.testing.assert_allclose(preprocessing_layer(backbone, channels)(pixels), expected, rtol=1e-5, atol=1e-3)


def test_fine_tuning_unfreezes_the_last_layers_but_keeps_batch_norm_frozen():
    model = build_model(transfer_cfg("mobilenet_v2", alpha=0.35), DIGITS)
    frozen_count = len(model.trainable_weights)
    unfrozen = unfreeze_last_layers(model, "mobilenet_v2", 20)
    body = model.get_layer("mobilenet_v2")
    last = body.layers[-20:]
    assert unfrozen == sum(not isinstance(layer, keras.layers.BatchNormalization) for layer in last) > 0
    assert all(not layer.trainable for layer in body.layers[:-20])
    assert all(not layer.trainable for layer in body.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert len(model.trainable_weights) > frozen_count
    # The backbone stays in inference mode even in a training step: BatchNormalization uses its moving
    # statistics, not the batch's (no dropout configured here, so nothing else differs in training).
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model(images, training=True), model(images, training=False), atol=1e-5)


def test_images_below_the_backbones_minimum_ask_for_input_size():
    with pytest.raises(ConfigError, match=r"at least 32x32 but these are 8x8.*model.input_size=32"):
        build_model(transfer_cfg("mobilenet_v2", input_size=None), DIGITS)


@pytest.mark.parametrize(
    "name,config",
    [
        ("mlp", MLPConfig(name="mlp", units=[8])),
        ("cnn", CNNConfig(name="cnn", filters=[4], dense_units=8)),
        ("lstm", RNNConfig(name="lstm", units=[8])),
        ("gru", RNNConfig(name="gru", units=[8])),
        ("transfer", TransferConfig(name="transfer", weights=None, input_size=32, alpha=0.35)),
    ],
)
def test_every_image_model_honours_dropout_l2_and_batch_norm(name, config):
    plain = build_model(OmegaConf.structured(config), DIGITS)
    assert not plain.losses
    regularised = OmegaConf.structured(config)
    regularised.merge_with({"dropout": 0.3, "l2": 1e-3, "batch_norm": True})
    model = build_model(regularised, DIGITS)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Dropout", "BatchNormalization"} <= kinds, kinds
    assert model.losses  # the L2 penalty joins the training loss


@pytest.mark.parametrize(
    "override,expected",
    [
        ("model.backbone=vgg16",
         r"`model.backbone`: received 'vgg16'. Allowed: one of efficientnet_b0, mobilenet_v2, resnet50"),
        ("model.weights=/no/such/dir/weights.h5", r"`model.weights`: no file at '/no/such/dir/weights.h5'"),
        ("model.fine_tune.unfreeze_layers=-5",
         r"`model.fine_tune.unfreeze_layers`: received -5. Allowed: an integer of at least 1"),
        ("model.fine_tune.lr=0", r"`model.fine_tune.lr`"),
        ("model.input_size=16", r"`model.input_size`: received 16. Allowed: null or an integer of at least 32"),
        ("model.alpha=0.5", r"`model.alpha`.*only mobilenet_v2 has a width multiplier; backbone is resnet50"),
    ],
)
def test_bad_transfer_settings_are_refused_before_training(override, expected):
    overrides = ["model=transfer", override] + (["model.backbone=resnet50"] if "alpha" in override else [])
    assert re.search(expected, refusal(*overrides))


def test_a_weights_file_must_be_one_keras_can_load(tmp_path):
    notes = tmp_path / "weights.txt"
    notes.write_text("not weights")
    with pytest.raises(ConfigError, match=r"`model.weights`.*\.weights\.h5, \.h5, \.hdf5, \.keras"):
        validate(compose_job("model=transfer", f"model.weights={notes}"))
