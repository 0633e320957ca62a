"""The distribution and resources blocks' schemas: the devices a job trains on, and what a sweep trial asks
Ray for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .fields import AT_LEAST_1, at_least, positive, rule


@dataclass
class DistributionConfig:
    # Split the CPU into this many logical devices so MirroredStrategy has that many replicas
    # when there is no GPU (null: one CPU device).
    cpu_replicas: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "2")
    # Multiply lr by the number of replicas (the linear scaling rule).
    scale_lr: bool = False


@dataclass
class ResourcesConfig:
    # What one sweep trial asks Ray for (a plain `python launch.py` run ignores it). A model config may
    # raise it for its own trials with `# @package _global_` and a `resources:` block.
    cpus: float = rule(1, positive, "a number greater than 0", "1")
    gpus: float = rule(0, lambda value: value >= 0, "a number of at least 0", "1")
    # CPU-only rehearsal of a GPU sweep: when TensorFlow sees no GPU, a trial that Ray gave N GPU ids
    # trains with distribution.cpu_replicas=N instead, so every multi-replica path runs without a GPU.
    rehearse_gpus_on_cpu: bool = False
