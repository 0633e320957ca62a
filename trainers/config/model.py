"""The model group's schemas: `ModelConfig`, the settings every model shares, and one schema per model file
(trainers/models.py, trainers/transfer.py), with the data each model accepts (`MODEL_INPUTS`) and the
keras.applications backbones a transfer model builds on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from .fields import (
    AT_LEAST_1,
    IN_UNIT_INTERVAL,
    Choice,
    ConfigError,
    at_least,
    checked,
    in_unit_interval,
    positive,
    refuse,
    rule,
)


class ModelName(Choice):
    mlp = "mlp"
    cnn = "cnn"
    lstm = "lstm"
    gru = "gru"
    text_lstm = "text_lstm"
    transfer = "transfer"


class Backbone(Choice):
    efficientnet_b0 = "efficientnet_b0"
    mobilenet_v2 = "mobilenet_v2"
    resnet50 = "resnet50"


class Pooling(Choice):
    avg = "avg"
    max = "max"


MODEL_INPUTS = {
    "mlp": ("image", "tokens", "text", "tabular", "sequence"),
    "cnn": ("image", "tokens", "text", "sequence"),
    "lstm": ("image", "tokens", "text", "sequence"),
    "gru": ("image", "tokens", "text", "sequence"),
    # A bidirectional LSTM preset for text; the same body as lstm, so it also reads image rows.
    "text_lstm": ("text", "tokens", "image"),
    # A keras.applications backbone (trainers/transfer.py); it resizes and turns grey into RGB itself.
    "transfer": ("image",),
}
BACKBONES = tuple(backbone.value for backbone in Backbone)
# The smallest image side keras.applications accepts for these backbones (without their top).
MIN_BACKBONE_INPUT = 32
# What Keras' load_weights reads for a backbone's weights file.
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")


@dataclass
class ModelConfig:
    name: ModelName = MISSING
    dropout: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.2")
    l2: float = rule(0.0, lambda value: value >= 0, "a number of at least 0", "1e-4")
    batch_norm: bool = False
    # Only used when the data are token ids, or categorical CSV columns with more than
    # data.max_one_hot_categories categories.
    embedding_dim: int = rule(64, at_least(1), AT_LEAST_1, "64")


@dataclass
class MLPConfig(ModelConfig):
    units: list[int] = field(default_factory=lambda: [128, 64])


@dataclass
class CNNConfig(ModelConfig):
    filters: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    dense_units: int = 128


@dataclass
class RNNConfig(ModelConfig):
    units: list[int] = field(default_factory=lambda: [64])
    bidirectional: bool = False


@dataclass
class FineTuneConfig:
    """The second stage of a transfer job: once the head has converged with the backbone frozen."""

    # Epochs of fine-tuning after the first stage (0: no fine-tuning stage).
    epochs: int = rule(5, at_least(0), "an integer of at least 0 (0: no fine-tuning stage)", "5")
    # How many of the backbone's last layers become trainable; BatchNormalization layers stay frozen.
    unfreeze_layers: int = rule(
        20, at_least(1), "an integer of at least 1 (to skip fine-tuning set model.fine_tune.epochs=0)", "20"
    )
    # A small learning rate, so the pretrained features are adjusted rather than overwritten.
    lr: float = rule(1e-5, positive, "a number greater than 0", "1e-5")


def _check_weights(key: str, weights: str) -> None:
    if weights == "imagenet":
        return
    path = os.path.abspath(os.path.expanduser(weights))
    if weights.startswith("gs://"):  # a bucket: the app checks that it exists and hands the trainers a local copy
        path = weights
    elif not os.path.isfile(path):
        raise ConfigError(
            f"Invalid value for `{key}`: no file at {path!r} (from {weights!r}). Allowed: "
            f"imagenet, null (random initialisation) or the path of a weights file, e.g. `{key}=null`."
        )
    if not path.endswith(WEIGHTS_SUFFIXES):
        refuse(key, weights, "a file ending in " + ", ".join(WEIGHTS_SUFFIXES), "null")


@dataclass
class TransferConfig(ModelConfig):
    backbone: Backbone = Backbone.mobilenet_v2
    # "imagenet" (downloaded once into ~/.keras/models), null (random init), or a weights file (local or gs://).
    weights: Optional[str] = checked("imagenet", _check_weights)
    # Side the images are resized to inside the model (null: the data's own size, at least 32).
    input_size: Optional[int] = rule(
        None, at_least(MIN_BACKBONE_INPUT), f"null or an integer of at least {MIN_BACKBONE_INPUT}", "96"
    )
    # MobileNetV2's width multiplier (Keras' `alpha`); imagenet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
    alpha: float = rule(1.0, positive, "a number greater than 0", "0.35")
    # Global pooling over the backbone's feature map.
    pooling: Pooling = Pooling.avg
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)
