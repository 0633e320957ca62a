"""Typed schemas for the job config: each field's type, allowed values and own rule side by side.

OmegaConf refuses a value of the wrong type or outside an enum while Hydra composes the config
(`composition_error_message` words that refusal like every other); a field's own rule (`rule(...)`
beside it) and the rules between fields run in `validate`. Imports neither TensorFlow nor Keras: the
launcher validates every job of a sweep with this module before any compute is spent.

This module is the entry point: import every schema, rule and check from here (`from trainers.schema import
DataConfig`; `hydra.launcher.validate: trainers.schema.validate_job`). They live in trainers/config/, one
concept per module:

    fields        ConfigError, Choice (a fixed set of values), `rule`/`checked` and `check_fields`
    model         the model group: ModelConfig, one schema per model file, MODEL_INPUTS, backbones
    data          the data group: DataConfig, Task, InputKind, `target_columns`
    augmentation  the augmentation group: AugmentationConfig, Flip
    optimizer     the optimizer group: one schema per optimizer
    lr_schedule   the lr_schedule group: LRScheduleConfig
    trainer       the trainer group: TrainerConfig and its callbacks
    export        ExportConfig
    resources     DistributionConfig, ResourcesConfig
    storage       the storage group: StorageConfig
    job           JobConfig (the whole job), Precision, Mode, `resolve_mode`, `planned_epochs`
    registration  `register_schemas`: the schemas in Hydra's ConfigStore, and the `raylaunch_mode` resolver
    validation    `validate`, `validate_job`: the rules between fields
    tfrecord_spec data=tfrecord's feature spec and file globs (`check_tfrecord`, `matching` a glob)
    composition   `composition_error_message`: values OmegaConf refused while Hydra composed the config
"""

from .config.augmentation import AugmentationConfig, Flip
from .config.composition import _TYPE_ALLOWED as _TYPE_ALLOWED
from .config.composition import composition_error_message
from .config.data import DataConfig, InputKind, TargetTransform, Task, seasonal_lag, target_columns
from .config.export import ExportConfig
from .config.fields import (
    AT_LEAST_1,
    CHECK,
    FRACTION,
    IN_UNIT_INTERVAL,
    Choice,
    ConfigError,
    FieldCheck,
    at_least,
    check_fields,
    checked,
    fraction,
    in_unit_interval,
    invalid_value_message,
    positive,
    refuse,
    rule,
)
from .config.fields import _integer as _integer
from .config.job import MODE_RESOLVER, JobConfig, Mode, Precision, planned_epochs, resolve_mode
from .config.lr_schedule import LRScheduleConfig, LRScheduleName
from .config.model import (
    BACKBONES,
    MIN_BACKBONE_INPUT,
    MODEL_INPUTS,
    WEIGHTS_SUFFIXES,
    Backbone,
    CNNConfig,
    FineTuneConfig,
    MLPConfig,
    ModelConfig,
    ModelName,
    Pooling,
    RNNConfig,
    TransferConfig,
)
from .config.model import _check_weights as _check_weights
from .config.optimizer import AdamConfig, AdamWConfig, OptimizerConfig, OptimizerName, RMSpropConfig, SGDConfig
from .config.registration import register_schemas
from .config.resources import DistributionConfig, ResourcesConfig
from .config.storage import StorageConfig
from .config.tfrecord_spec import GLOB_FIELDS as TFRECORD_GLOB_FIELDS
from .config.tfrecord_spec import check_tfrecord
from .config.tfrecord_spec import matching as glob_matching
from .config.trainer import (
    CallbacksConfig,
    CheckpointConfig,
    EarlyStoppingConfig,
    ReduceLROnPlateauConfig,
    TensorBoardConfig,
    TrainerConfig,
    UpdateFreq,
)
from .config.validation import DATA_FILES, EXPORTER_MODULES, check_season, validate, validate_job
from .config.validation import _check_augmentation as _check_augmentation
from .config.validation import _check_data_path as _check_data_path
from .config.validation import _check_exporters as _check_exporters
from .config.validation import _check_lr_schedule as _check_lr_schedule
from .config.validation import _check_target as _check_target

# The private helpers above (`_check_exporters`, ...) stay importable from here for the tests that call them.
__all__ = [
    # fields
    "ConfigError", "Choice", "CHECK", "FieldCheck", "rule", "checked", "check_fields", "refuse",
    "invalid_value_message", "at_least", "positive", "fraction", "in_unit_interval",
    "AT_LEAST_1", "IN_UNIT_INTERVAL", "FRACTION",
    # model
    "ModelName", "Backbone", "Pooling", "MODEL_INPUTS", "BACKBONES", "MIN_BACKBONE_INPUT", "WEIGHTS_SUFFIXES",
    "ModelConfig", "MLPConfig", "CNNConfig", "RNNConfig", "FineTuneConfig", "TransferConfig",
    # data and augmentation
    "Task", "InputKind", "TargetTransform", "DataConfig", "target_columns", "seasonal_lag", "Flip",
    "AugmentationConfig",
    # optimizer and lr_schedule
    "OptimizerName", "OptimizerConfig", "AdamConfig", "AdamWConfig", "SGDConfig", "RMSpropConfig",
    "LRScheduleName", "LRScheduleConfig",
    # trainer, export, resources, storage
    "UpdateFreq", "EarlyStoppingConfig", "ReduceLROnPlateauConfig", "CheckpointConfig", "TensorBoardConfig",
    "CallbacksConfig", "TrainerConfig", "ExportConfig", "DistributionConfig", "ResourcesConfig", "StorageConfig",
    # job
    "Precision", "Mode", "JobConfig", "planned_epochs", "MODE_RESOLVER", "resolve_mode",
    # registration, validation, composition
    "register_schemas", "validate", "validate_job", "check_season", "DATA_FILES", "EXPORTER_MODULES",
    "composition_error_message",
    # data=tfrecord
    "check_tfrecord", "glob_matching", "TFRECORD_GLOB_FIELDS",
]
