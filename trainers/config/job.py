"""The whole job's schema (`JobConfig`, stored as `job_schema`): the groups' blocks and the job's own settings,
among them the metric that picks the best epoch and trial and its mode (`resolve_mode` words Keras' rule for
mode=auto, the one place it is written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from .export import ExportConfig
from .fields import Choice, positive, rule
from .resources import DistributionConfig, ResourcesConfig
from .storage import StorageConfig
from .trainer import TrainerConfig


class Precision(Choice):
    auto = "auto"  # mixed_float16 on GPUs of compute capability >= 7.0, float32 otherwise
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class Mode(Choice):
    auto = "auto"  # Keras' rule: max for accuracy-like metrics, min for the rest
    min = "min"
    max = "max"


@dataclass
class JobConfig:
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    augmentation: Any = None
    # None means a constant learning rate (configs composed without the lr_schedule group).
    lr_schedule: Any = None
    export: ExportConfig = field(default_factory=ExportConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    distribution: DistributionConfig = field(default_factory=DistributionConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    lr: float = rule(1e-3, positive, "a number greater than 0", "1e-3")
    seed: int = 0
    precision: Precision = Precision.auto
    # The metric that picks the best epoch and the best trial; mode auto: min for losses and errors.
    metric: str = "val_loss"
    mode: Mode = Mode.auto


def planned_epochs(cfg: DictConfig) -> int:
    """Epochs the job trains when nothing stops it early: its stages' epochs added up."""
    fine_tune = OmegaConf.select(cfg, "model.fine_tune.epochs", default=0) if cfg.model.name == "transfer" else 0
    return int(cfg.trainer.epochs) + int(fine_tune or 0)


# The resolver through which the config hands the launcher a resolved mode:
# `hydra.launcher.mode: ${raylaunch_mode:${metric},${mode}}` (registered by `register_schemas`).
MODE_RESOLVER = "raylaunch_mode"


def resolve_mode(metric: str, mode: str) -> str:
    """Keras' rule for mode=auto: maximise accuracy-like metrics, minimise everything else.

    The one place this rule is written: jobs call it, and the launcher receives its answer through the
    `raylaunch_mode` resolver.

    Args:
        metric: the monitored metric's name, e.g. `val_accuracy`.
        mode: `auto`, `min` or `max`; `min` and `max` pass through.

    Example:
        >>> resolve_mode("val_accuracy", "auto"), resolve_mode("val_loss", "auto"), resolve_mode("val_loss", "max")
        ('max', 'min', 'max')
    """
    if mode != "auto":
        return str(mode)
    maximised = ("acc", "auc", "precision", "recall", "f1")
    return "max" if any(word in metric for word in maximised) else "min"
