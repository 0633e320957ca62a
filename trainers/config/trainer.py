"""The trainer group's schema: how Keras fits the model (epochs, batch size, fit's options) and its callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .fields import AT_LEAST_1, FRACTION, Choice, at_least, fraction, rule


class UpdateFreq(Choice):
    epoch = "epoch"
    batch = "batch"


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    patience: int = rule(5, at_least(0), "an integer of at least 0", "5")
    min_delta: float = 0.0


@dataclass
class ReduceLROnPlateauConfig:
    enabled: bool = True
    factor: float = rule(0.5, fraction, FRACTION, "0.5")
    patience: int = rule(2, at_least(0), "an integer of at least 0", "2")
    min_lr: float = 1e-6


@dataclass
class CheckpointConfig:
    # Best-only checkpoint in the .keras format.
    enabled: bool = True


@dataclass
class TensorBoardConfig:
    enabled: bool = True
    # Per epoch: per-batch writes slow distributed training.
    update_freq: UpdateFreq = UpdateFreq.epoch
    histogram_freq: int = 0


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    reduce_lr_on_plateau: ReduceLROnPlateauConfig = field(default_factory=ReduceLROnPlateauConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)


@dataclass
class TrainerConfig:
    epochs: int = rule(10, at_least(1), AT_LEAST_1, "10")
    # Per replica; the global batch is this times the number of replicas.
    batch_size: int = rule(64, at_least(1), AT_LEAST_1, "64")
    # Keras fit verbosity: "auto", 0, 1 or 2.
    verbose: Any = rule("auto", lambda value: value in ("auto", 0, 1, 2), '"auto", 0, 1 or 2', "2")
    # Continue from the last state found in the job's folder (an epoch's end, or a step within an epoch).
    resume: bool = True
    # Also save the resumable state every this many training steps within epochs (null: at epochs' ends only):
    # a job killed without warning (a lost node) then redoes at most these steps. A stop asked by SIGTERM
    # (a spot VM's preemption) saves at the next step's end whatever this is.
    save_every_steps: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "500")
    # Bit-identical reruns with the same seed on the same machine.
    deterministic: bool = True
    # XLA measured 3x slower on CPU here; worth trying on GPUs.
    jit_compile: bool = False
    steps_per_execution: int = rule(1, at_least(1), AT_LEAST_1, "1")
    # Time each training batch's wait for input (trainers/input_wait.py): input_wait_fraction per epoch in the
    # logs, TensorBoard and metrics.json. Adds ~0.4 ms to a step on a 2-core CPU (bench/input_wait.py).
    time_input_wait: bool = True
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
