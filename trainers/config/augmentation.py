"""The augmentation group's schema: random changes to training images, made by Keras preprocessing layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from .fields import IN_UNIT_INTERVAL, Choice, in_unit_interval, rule


class Flip(Choice):
    horizontal = "horizontal"
    vertical = "vertical"
    horizontal_and_vertical = "horizontal_and_vertical"


@dataclass
class AugmentationConfig:
    """Keras preprocessing layers at the front of an image model: they change images only in training
    (`training=True`); validation, test and a saved model's predictions see the images unchanged."""

    name: str = MISSING
    # null: no flips.
    flip: Optional[Flip] = None
    # Fractions as Keras takes them: rotation of a full turn, zoom and translation of the image size,
    # contrast as the factor's spread around 1.
    rotation: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    zoom: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    contrast: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    translation: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
