"""Hyperparameters a resumed job takes on from its config: `lr`, `optimizer.*` and `model.dropout` can change
between epochs, so a job that resumes a saved state (its own, or under population-based training another
trial's, with explored values) trains on with the values its config names now, from the next epoch.

Each training stage's record (progress.json's `stages`, metrics.json) keeps the values it trains with
(`hyperparameters`) and every change (`changes`: the epoch after which it took effect, old and new values).
Nothing changes for a job resumed with the same config: a learning rate lowered by ReduceLROnPlateau stays
lowered, since the comparison is with the values recorded, not with the optimizer's current ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from .job_files import Stage

log = logging.getLogger(__name__)

# Optimizer settings that can change between epochs (the optimizer reads them in each update step).
OPTIMIZER_FIELDS = ("beta_1", "beta_2", "epsilon", "momentum", "rho", "weight_decay", "clipnorm")


def configured_values(cfg, stage_lr: float) -> dict:
    """What the job's config asks for now, for the stage in progress."""
    values = {"lr": float(stage_lr), "model.dropout": float(cfg.model.dropout)}
    optimizer = cfg.optimizer
    for name in OPTIMIZER_FIELDS:
        value = optimizer.get(name)
        if value is not None and not isinstance(value, bool):
            values[f"optimizer.{name}"] = float(value)
    return values


def _dropout_layers(model) -> list:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.Dropout)]


def _values_in_model(model, stage: "Stage") -> dict:
    """For a state saved before values were recorded: what the loaded model and optimizer hold."""
    values = {"lr": float(stage.learning_rate)}
    rates = {float(layer.rate) for layer in _dropout_layers(model)}
    values["model.dropout"] = rates.pop() if len(rates) == 1 else 0.0
    for name in OPTIMIZER_FIELDS:
        value = getattr(model.optimizer, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[f"optimizer.{name}"] = float(value)
    return values


def _apply(model, key: str, old: float, new: float, make_learning_rate: Callable[[float], object]) -> None:
    optimizer = model.optimizer
    if key == "lr":
        optimizer.learning_rate = make_learning_rate(new)  # a float, or the stage's schedule rebuilt from it
    elif key == "model.dropout":
        for layer in _dropout_layers(model):
            if abs(float(layer.rate) - old) < 1e-12:  # the config's dropout layers, not fixed ones of a backbone
                layer.rate = new
    else:
        name = key.split(".", 1)[1]
        if hasattr(optimizer, name):
            setattr(optimizer, name, new)


def apply_changes(model, cfg, stage: "Stage", stage_lr: float, make_learning_rate: Callable[[float], object],
                  epochs_completed: int, resumed: bool) -> Optional[dict]:
    """Record the stage's values; on a resumed job, apply those the config changed since the state was saved.
    Call before `fit` (a traced training step would keep the old values). Returns {key: [old, new]} or None."""
    wanted = configured_values(cfg, stage_lr)
    if not resumed:
        stage.hyperparameters = wanted
        return None
    recorded = stage.hyperparameters or _values_in_model(model, stage)
    changed = {key: [recorded[key], value] for key, value in wanted.items()
               if key in recorded and abs(float(recorded[key]) - value) > 1e-12 * max(1.0, abs(value))}
    for key, (old, new) in changed.items():
        _apply(model, key, old, new, make_learning_rate)
    stage.hyperparameters = {**recorded, **wanted}
    if changed:
        stage.learning_rate = stage_lr
        stage.changes = [*(stage.changes or []), {"after_epoch": epochs_completed, "changed": changed}]
        log.info("Resumed at epoch %d with changed hyperparameters: %s", epochs_completed,
                 ", ".join(f"{key} {old:g} -> {new:g}" for key, (old, new) in changed.items()))
    return changed or None
