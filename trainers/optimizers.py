"""Optimizer from config; the learning rate comes from the job's top-level `lr`."""

from __future__ import annotations

import keras


def build_optimizer(cfg, learning_rate: float) -> keras.optimizers.Optimizer:
    common = {"learning_rate": learning_rate, "clipnorm": cfg.clipnorm}
    if cfg.name == "adam":
        return keras.optimizers.Adam(beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon, **common)
    if cfg.name == "adamw":
        decay = 0.004 if cfg.weight_decay is None else cfg.weight_decay
        return keras.optimizers.AdamW(weight_decay=decay, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon, **common)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(rho=cfg.rho, momentum=cfg.momentum, epsilon=cfg.epsilon, **common)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # schema.validate refuses it earlier
