"""Learning-rate schedules from the `lr_schedule` config, built over a training stage's total steps.

Only Keras' own schedule classes are used, so a saved model (optimizer included) loads with
`keras.models.load_model` in safe mode and a resumed job continues the curve from the optimizer's
saved step counter.
"""

from __future__ import annotations

import math
from typing import Union

import keras

LearningRate = Union[float, keras.optimizers.schedules.LearningRateSchedule]


def steps_per_epoch(num_train_examples: int, global_batch_size: int) -> int:
    return max(1, math.ceil(num_train_examples / global_batch_size))


def build_schedule(schedule_cfg, peak_lr: float, total_steps: int) -> LearningRate:
    """`peak_lr` is the stage's learning rate (the top-level `lr`, or model.fine_tune.lr); `total_steps`
    the stage's planned optimizer steps. A config of None or `constant` gives the plain float."""
    name = "constant" if schedule_cfg is None else schedule_cfg.name
    total_steps = max(1, int(total_steps))
    if name == "constant":
        return peak_lr
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak_lr, total_steps, alpha=schedule_cfg.final_fraction)
    if name == "exponential":
        # decay_rate is reached after decay_steps: spreading it over the stage ends at final_fraction * lr.
        return keras.optimizers.schedules.ExponentialDecay(peak_lr, total_steps, decay_rate=schedule_cfg.final_fraction)
    if name == "warmup":
        # CosineDecay's own warm-up: linear from 0 to peak_lr over the first steps, then cosine down over
        # the rest (decay_steps counts after the warm-up).
        warmup_steps = max(1, round(schedule_cfg.warmup_fraction * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, total_steps - warmup_steps),
            alpha=schedule_cfg.final_fraction,
            warmup_target=peak_lr,
            warmup_steps=warmup_steps,
        )
    raise ValueError(f"unknown lr_schedule {name!r}")  # schema.validate refuses it earlier
