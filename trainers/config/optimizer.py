"""The optimizer group's schemas: one per optimizer, holding its defaults. conf/optimizer/<name>.yaml names the
Keras class (`_target_`) and trainers/optimizers.py instantiates it with the learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from .fields import IN_UNIT_INTERVAL, Choice, in_unit_interval, positive, rule


class OptimizerName(Choice):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"
    rmsprop = "rmsprop"


@dataclass
class OptimizerConfig:
    _target_: str = MISSING
    # Also the optimizer's name in Keras.
    name: OptimizerName = MISSING
    # Clip each gradient to this norm (null: no clipping).
    clipnorm: Optional[float] = rule(None, positive, "null or a number greater than 0", "1.0")


@dataclass
class AdamConfig(OptimizerConfig):
    beta_1: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    beta_2: float = rule(0.999, in_unit_interval, IN_UNIT_INTERVAL, "0.999")
    epsilon: float = rule(1e-7, positive, "a number greater than 0", "1e-7")


@dataclass
class AdamWConfig(AdamConfig):
    # Decoupled weight decay.
    weight_decay: float = rule(0.004, lambda value: value >= 0, "a number of at least 0", "0.004")


@dataclass
class SGDConfig(OptimizerConfig):
    momentum: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    nesterov: bool = False


@dataclass
class RMSpropConfig(OptimizerConfig):
    rho: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    momentum: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    epsilon: float = rule(1e-7, positive, "a number greater than 0", "1e-7")
