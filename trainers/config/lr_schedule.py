"""The lr_schedule group's schema: the learning rate over each training stage (trainers/schedules.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import FRACTION, Choice, fraction, rule


class LRScheduleName(Choice):
    constant = "constant"
    cosine = "cosine"
    exponential = "exponential"
    warmup = "warmup"


@dataclass
class LRScheduleConfig:
    """Learning rate over each training stage's steps, starting from (warmup: rising to) the stage's lr.
    A schedule drives the rate itself, so ReduceLROnPlateau must be off with any but constant."""

    name: LRScheduleName = LRScheduleName.constant
    # Learning rate at the stage's end as a fraction of its lr (cosine, warmup, exponential).
    final_fraction: float = rule(0.0, lambda value: 0.0 <= value <= 1.0, "a number in [0, 1]", "0.01")
    # warmup only: fraction of the stage's steps spent rising linearly from 0 to lr.
    warmup_fraction: float = rule(0.1, fraction, FRACTION, "0.1")
