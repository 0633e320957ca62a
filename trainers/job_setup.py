"""A job's set-up before its model exists: devices, seed, precision policy, distribution strategy, and the
data pipelines batched for the strategy's replicas.

Imports TensorFlow: trainers/job.py imports this module only once the config has passed its cheap checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from omegaconf import DictConfig

from . import devices
from .datasets import load_data
from .export import check_exportable
from .pipeline import Pipelines, build_pipelines
from .schedules import steps_per_epoch
from .schema import resolve_mode


@dataclass(frozen=True)
class JobSetup:
    """What the later steps of a job read: its config, the strategy its model lives in, and its data."""

    cfg: DictConfig
    strategy: tf.distribute.Strategy
    policy: str  # the mixed-precision policy in force (precision=auto resolved)
    replicas: int
    global_batch_size: int  # trainer.batch_size on each replica
    learning_rate: float  # the first stage's: lr, times the replicas with distribution.scale_lr
    mode: str  # "min" or "max": which way `cfg.metric` improves
    data: Pipelines
    steps: int  # training steps per epoch


def set_up(cfg: DictConfig) -> JobSetup:
    """Configure the devices, seed, precision and strategy `cfg` asks for, then load and batch its data."""
    # Device settings are fixed once TensorFlow's runtime starts: nothing may touch it before this.
    devices.configure_devices(cfg.distribution.cpu_replicas)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = devices.apply_precision(cfg.precision)
    strategy = devices.build_strategy(cfg.distribution.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    global_batch_size = cfg.trainer.batch_size * replicas
    learning_rate = cfg.lr * replicas if cfg.distribution.scale_lr else cfg.lr
    mode = resolve_mode(cfg.metric, cfg.mode)

    data = build_pipelines(cfg.data, load_data(cfg.data), global_batch_size, cfg.seed)
    # Categorical columns and the precision (auto) are known only now, still before training.
    check_exportable(data.spec, cfg.get("export"), policy)
    steps = steps_per_epoch(data.spec.num_train_examples, global_batch_size)
    return JobSetup(cfg, strategy, policy, replicas, global_batch_size, learning_rate, mode, data, steps)
