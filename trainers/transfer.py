"""Transfer learning: a frozen keras.applications backbone under a pooling, dropout, dense head, and the
second stage that unfreezes the backbone's last layers for fine-tuning (Keras' transfer-learning guide).

Every layer here is a built-in Keras layer, so checkpoints load with plain `keras.models.load_model`
(safe mode too) without importing this project.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
from keras import layers

from .pipeline import DataSpec
from .schema import MIN_BACKBONE_INPUT, ConfigError

log = logging.getLogger(__name__)


def _applications(name: str):
    """(constructor, preprocess_input) of a backbone; looked up lazily so importing this module is cheap."""
    apps = keras.applications
    return {
        "efficientnet_b0": (apps.EfficientNetB0, apps.efficientnet.preprocess_input),
        "mobilenet_v2": (apps.MobileNetV2, apps.mobilenet_v2.preprocess_input),
        "resnet50": (apps.ResNet50, apps.resnet50.preprocess_input),
    }[name]


def preprocessing_layer(backbone: str, channels: int) -> layers.Dense:
    """A frozen 1x1 linear layer equal to the backbone's own `preprocess_input` on our 0..1 pixels, with
    grey (1 channel) copied to R, G and B and an alpha channel (4) dropped.

    Every preprocess_input here is affine per pixel (scale to [-1, 1]; RGB->BGR and mean subtraction;
    identity for EfficientNet, which rescales inside itself), so its exact coefficients are read off by
    calling it on probe pixels. A Dense layer instead of a Lambda keeps the model serialisable in safe mode.
    """
    preprocess_input = _applications(backbone)[1]
    basis = np.concatenate([np.zeros((1, 3)), 255.0 * np.eye(3)]).astype("float32").reshape(4, 1, 1, 3)
    mapped = np.asarray(preprocess_input(basis.copy())).reshape(4, 3)
    bias, rgb_kernel = mapped[0], mapped[1:] - mapped[0]  # rgb_kernel[i]: output for pure channel i at 0..1
    probe = np.random.default_rng(0).uniform(0, 1, size=(8, 1, 1, 3)).astype("float32")
    expected = np.asarray(preprocess_input(255.0 * probe)).reshape(8, 3)
    if not np.allclose(probe.reshape(8, 3) @ rgb_kernel + bias, expected, atol=1e-3):
        raise ValueError(f"{backbone}'s preprocess_input is not affine per pixel; it needs its own layer")
    if channels == 1:
        kernel = rgb_kernel.sum(axis=0, keepdims=True)
    elif channels == 3:
        kernel = rgb_kernel
    elif channels == 4:
        kernel = np.concatenate([rgb_kernel, np.zeros((1, 3), "float32")])
    else:
        raise ConfigError(f"model=transfer takes images with 1, 3 or 4 channels, not {channels}.")
    layer = layers.Dense(3, trainable=False, name=f"{backbone}_preprocess_input")
    layer.build((None, channels))
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return layer


def _backbone(cfg, side_shape: tuple[int, int]) -> keras.Model:
    constructor, _ = _applications(cfg.backbone)
    kwargs = {"alpha": cfg.alpha} if cfg.backbone == "mobilenet_v2" else {}
    try:
        return constructor(
            include_top=False, weights=cfg.weights, input_shape=(*side_shape, 3), name=str(cfg.backbone), **kwargs
        )
    except Exception as error:  # noqa: BLE001 - only the download can fail here; say how to work offline
        if cfg.weights != "imagenet":
            raise
        raise ConfigError(
            f"model.weights=imagenet: the {cfg.backbone} weights could not be fetched ({error}). Without "
            "internet use model.weights=null (random initialisation) or the path of a local weights file; "
            "Keras looks in ~/.keras/models first."
        ) from error


def transfer_body(inputs, cfg, spec: DataSpec):
    """Resize, preprocess, frozen backbone in inference mode, global pooling, optional batch norm, dropout.
    `inputs` are 0..1 pixels (after rescaling/augmentation); the task's dense head is added by build_model."""
    height, width, channels = spec.input_shape
    side = (cfg.input_size, cfg.input_size) if cfg.input_size else (height, width)
    if min(side) < MIN_BACKBONE_INPUT:
        raise ConfigError(
            f"model.backbone={cfg.backbone} needs images of at least {MIN_BACKBONE_INPUT}x{MIN_BACKBONE_INPUT} "
            f"but these are {height}x{width} and model.input_size is {cfg.input_size}. Resize them inside "
            f"the model with e.g. model.input_size={MIN_BACKBONE_INPUT}."
        )
    x = inputs
    if side != (height, width):
        x = layers.Resizing(*side, name="resize_for_backbone")(x)
    x = preprocessing_layer(cfg.backbone, channels)(x)
    backbone = _backbone(cfg, side)
    if cfg.weights is None:
        # Measured: a frozen random MobileNetV2 gives features of ~1e-13 on the digits, so the head stays at chance.
        log.warning(
            "model.weights=null: %s is randomly initialised and frozen, so its features carry little; "
            "this checks the pipeline offline. For accuracy use imagenet or a weights file.", cfg.backbone,
        )
    backbone.trainable = False
    # training=False keeps BatchNormalization in inference mode even once layers are unfrozen for
    # fine-tuning, so its statistics are not wrecked by small fine-tuning batches.
    x = backbone(x, training=False)
    x = (layers.GlobalAveragePooling2D if cfg.pooling == "avg" else layers.GlobalMaxPooling2D)(name="pooling")(x)
    if cfg.batch_norm:
        x = layers.BatchNormalization(name="head_batch_norm")(x)
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout, name="head_dropout")(x)
    return x


def fine_tuning_planned(model_cfg) -> bool:
    return model_cfg.name == "transfer" and model_cfg.fine_tune.epochs > 0


def unfreeze_last_layers(model: keras.Model, backbone: str, count: int) -> int:
    """Make the backbone's last `count` layers trainable, except BatchNormalization (kept frozen as the
    Keras guide advises). The caller must compile again for this to take effect. Returns how many
    layers became trainable."""
    backbone_model = model.get_layer(backbone)
    backbone_model.trainable = True
    first = max(0, len(backbone_model.layers) - count)
    unfrozen = 0
    for index, layer in enumerate(backbone_model.layers):
        layer.trainable = index >= first and not isinstance(layer, layers.BatchNormalization)
        unfrozen += layer.trainable
    if count > len(backbone_model.layers):
        log.info(
            "model.fine_tune.unfreeze_layers=%d exceeds %s's %d layers: all are unfrozen",
            count, backbone, len(backbone_model.layers),
        )
    return unfrozen
