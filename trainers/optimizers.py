"""The optimizer a config's `_target_` names (conf/optimizer/), with the stage's learning rate."""

from __future__ import annotations

import keras
from hydra.utils import instantiate
from omegaconf import OmegaConf


def build_optimizer(cfg, learning_rate) -> keras.optimizers.Optimizer:
    """`learning_rate`: a float or a Keras schedule (trainers/schedules.py), from the job's top-level `lr`."""
    # Plain values: Keras saves the optimizer's settings (its name too) into the model file, where an enum
    # member from the typed config cannot go.
    settings = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return instantiate(settings, learning_rate=learning_rate)
