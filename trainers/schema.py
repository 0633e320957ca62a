"""Typed schemas for the job config and the value checks Hydra's types cannot express.

Imports neither TensorFlow nor Keras: the launcher validates every job of a sweep with this
module before any compute is spent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

TASKS = ("binary", "multiclass", "multilabel", "regression")
# What a data set's examples look like, which decides the layers a model puts in front of its body.
# "text" is raw strings: the model itself turns them into token ids (TextVectorization), so a saved
# model takes strings as they are. "sequence" is a window of numeric readings (time steps x features).
INPUT_KINDS = ("image", "tokens", "text", "tabular", "sequence")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
MODES = ("auto", "min", "max")
MODEL_INPUTS = {
    "mlp": ("image", "tokens", "text", "tabular", "sequence"),
    "cnn": ("image", "tokens", "text", "sequence"),
    "lstm": ("image", "tokens", "text", "sequence"),
    "gru": ("image", "tokens", "text", "sequence"),
    # A bidirectional LSTM preset for text; the same body as lstm, so it also reads image rows.
    "text_lstm": ("text", "tokens", "image"),
    # A keras.applications backbone (trainers/transfer.py); it resizes and turns grey into RGB itself.
    "transfer": ("image",),
}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
BACKBONES = ("efficientnet_b0", "mobilenet_v2", "resnet50")
# The smallest image side keras.applications accepts for these backbones (without their top).
MIN_BACKBONE_INPUT = 32
# What Keras' load_weights reads for a backbone's weights file.
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")
LR_SCHEDULES = ("constant", "cosine", "exponential", "warmup")


class ConfigError(ValueError):
    """A config value is outside what the job accepts. The message names field, value and fix."""


# ---------------------------------------------------------------- model schemas (one per model file)
@dataclass
class ModelConfig:
    name: str = MISSING
    dropout: float = 0.0
    l2: float = 0.0
    batch_norm: bool = False
    # Only used when the data are token ids, or categorical CSV columns with more than
    # data.max_one_hot_categories categories.
    embedding_dim: int = 64


@dataclass
class MLPConfig(ModelConfig):
    units: list[int] = field(default_factory=lambda: [128, 64])


@dataclass
class CNNConfig(ModelConfig):
    filters: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    dense_units: int = 128


@dataclass
class RNNConfig(ModelConfig):
    units: list[int] = field(default_factory=lambda: [64])
    bidirectional: bool = False


@dataclass
class FineTuneConfig:
    """The second stage of a transfer job: once the head has converged with the backbone frozen."""

    # Epochs of fine-tuning after the first stage (0: no fine-tuning stage).
    epochs: int = 5
    # How many of the backbone's last layers become trainable; BatchNormalization layers stay frozen.
    unfreeze_layers: int = 20
    # A small learning rate, so the pretrained features are adjusted rather than overwritten.
    lr: float = 1e-5


@dataclass
class TransferConfig(ModelConfig):
    backbone: str = "mobilenet_v2"
    # "imagenet" (downloaded once into ~/.keras/models), null (random init), or a local weights file.
    weights: Optional[str] = "imagenet"
    # Side the images are resized to inside the model (null: the data's own size, at least 32).
    input_size: Optional[int] = None
    # MobileNetV2's width multiplier (Keras' `alpha`); imagenet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
    alpha: float = 1.0
    # Global pooling over the backbone's feature map: avg or max.
    pooling: str = "avg"
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)


# ---------------------------------------------------------------- data
@dataclass
class DataConfig:
    name: str = MISSING
    task: str = MISSING
    input_kind: str = MISSING
    # A local file in the format of the named loader; null means the loader's own source.
    path: Optional[str] = None
    # Fraction of the training split held out for validation when the data set has no validation split.
    val_fraction: float = 0.1
    # Fraction held out for testing when the data set has no test split.
    test_fraction: float = 0.2
    # Cap on training examples (null: all), for quick runs.
    max_train_samples: Optional[int] = None
    cache: bool = True
    shuffle_buffer: int = 10_000
    # Token data only.
    num_words: int = 10_000
    sequence_length: int = 200
    # Image folders only: images are resized to image_size x image_size with this many channels.
    image_size: int = 64
    channels: int = 3
    # Folder data sets: the class sub-folders to use, in label order (null: every sub-folder, sorted).
    class_names: Optional[list[str]] = None
    # CSV and time series: the column to predict (time series: a column or a list of columns), and
    # columns that are not features (ids, free text).
    target: Any = None
    exclude_columns: list[str] = field(default_factory=list)
    # CSV only: text columns become categories by themselves; these numeric-looking columns too (zip codes).
    categorical_columns: list[str] = field(default_factory=list)
    # A categorical column with at most this many categories is one-hot encoded, a larger one embedded
    # (model.embedding_dim); both with one out-of-vocabulary slot for categories unseen in training.
    max_one_hot_categories: int = 20
    # Time series only: the column holding each row's time (null: the first column), its strptime format
    # (null: ISO 8601, jena_climate's "01.01.2009 00:10:00", or plain numbers), and the window geometry in
    # rows: a prediction sees the last `window` rows, keeping every `sampling_rate`-th one (ending with the
    # latest), and predicts the target `horizon` rows after the latest.
    time_column: Optional[str] = None
    time_format: Optional[str] = None
    window: int = 720
    sampling_rate: int = 6
    horizon: int = 144
    # Time steps missing from the file are refused; true treats the rows as evenly spaced anyway.
    allow_gaps: bool = False


# ---------------------------------------------------------------- augmentation
@dataclass
class AugmentationConfig:
    """Keras preprocessing layers at the front of an image model: they change images only in training
    (`training=True`); validation, test and a saved model's predictions see the images unchanged."""

    name: str = MISSING
    # horizontal, vertical, horizontal_and_vertical, or null for no flips.
    flip: Optional[str] = None
    # Fractions as Keras takes them: rotation of a full turn, zoom and translation of the image size,
    # contrast as the factor's spread around 1.
    rotation: float = 0.0
    zoom: float = 0.0
    contrast: float = 0.0
    translation: float = 0.0

# ---------------------------------------------------------------- optimizer
@dataclass
class OptimizerConfig:
    name: str = MISSING
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    weight_decay: Optional[float] = None
    momentum: float = 0.0
    nesterov: bool = False
    rho: float = 0.9
    clipnorm: Optional[float] = None


# ---------------------------------------------------------------- learning-rate schedule
@dataclass
class LRScheduleConfig:
    """Learning rate over each training stage's steps, starting from (warmup: rising to) the stage's lr.
    A schedule drives the rate itself, so ReduceLROnPlateau must be off with any but constant."""

    name: str = "constant"
    # Learning rate at the stage's end as a fraction of its lr (cosine, warmup, exponential).
    final_fraction: float = 0.0
    # warmup only: fraction of the stage's steps spent rising linearly from 0 to lr.
    warmup_fraction: float = 0.1


# ---------------------------------------------------------------- export
@dataclass
class ExportConfig:
    """After training, the best model as a SavedModel in TF Serving's layout (export/serving/<version>/),
    a TFLite file (export/model.tflite), an ONNX file (export/model.onnx; needs the `onnx` extra) and/or a
    TensorFlow.js graph model (export/tfjs/model.json), in any combination."""

    saved_model: bool = False
    tflite: bool = False
    onnx: bool = False
    tfjs: bool = False
    # TF Serving serves the highest version number; null: one more than the highest already exported.
    version: Optional[int] = None


# ---------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    patience: int = 5
    min_delta: float = 0.0


@dataclass
class ReduceLROnPlateauConfig:
    enabled: bool = True
    factor: float = 0.5
    patience: int = 2
    min_lr: float = 1e-6


@dataclass
class CheckpointConfig:
    # Best-only checkpoint in the .keras format.
    enabled: bool = True


@dataclass
class TensorBoardConfig:
    enabled: bool = True
    # Per epoch: per-batch writes slow distributed training.
    update_freq: str = "epoch"
    histogram_freq: int = 0


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    reduce_lr_on_plateau: ReduceLROnPlateauConfig = field(default_factory=ReduceLROnPlateauConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)


@dataclass
class TrainerConfig:
    epochs: int = 10
    # Per replica; the global batch is this times the number of replicas.
    batch_size: int = 64
    # Keras fit verbosity: "auto", 0, 1 or 2.
    verbose: Any = "auto"
    # Continue from the last epoch's state found in the job's folder.
    resume: bool = True
    # Bit-identical reruns with the same seed on the same machine.
    deterministic: bool = True
    jit_compile: bool = False
    steps_per_execution: int = 1
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)


@dataclass
class DistributionConfig:
    # Split the CPU into this many logical devices so MirroredStrategy has that many replicas
    # when there is no GPU (null: one CPU device).
    cpu_replicas: Optional[int] = None
    # Multiply lr by the number of replicas (the linear scaling rule).
    scale_lr: bool = False


@dataclass
class ResourcesConfig:
    # What one sweep trial asks Ray for (a plain `python launch.py` run ignores it). A model config may
    # raise it for its own trials with `# @package _global_` and a `resources:` block.
    cpus: float = 1
    gpus: float = 0
    # CPU-only rehearsal of a GPU sweep: when TensorFlow sees no GPU, a trial that Ray gave N GPU ids
    # trains with distribution.cpu_replicas=N instead, so every multi-replica path runs without a GPU.
    rehearse_gpus_on_cpu: bool = False


@dataclass
class StorageConfig:
    # gs://BUCKET/PREFIX or a local folder (relative: to the directory launch.py started in); null: no copies.
    # Checked by cluster.storage before training; the trainer never reads this block.
    uri: Optional[str] = "results"
    # TensorBoard event files are copied this often while the job trains (and once at the end).
    sync_seconds: float = 5.0
    # Time one transfer may take, retries included, before it counts as failed (retried at the next sync).
    upload_timeout_seconds: float = 300.0
    # At the end of the job, how long to wait for the last uploads before giving up on them.
    close_timeout_seconds: float = 600.0
    # Upload the resumable state (model, optimizer, epoch) after every epoch, so a trial retried on
    # another node, or a rerun on another machine, continues from its last epoch instead of epoch 0.
    upload_state: bool = True


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
    lr: float = 1e-3
    seed: int = 0
    precision: str = "auto"
    # The metric that picks the best epoch and the best trial; mode auto: min for losses and errors.
    metric: str = "val_loss"
    mode: str = "auto"


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore; config files name them in their defaults lists."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="job_schema", node=JobConfig)
    # In their own group, so `model=...` and its error messages list only real models.
    store.store(group="schema/model", name="mlp", node=MLPConfig)
    store.store(group="schema/model", name="cnn", node=CNNConfig)
    store.store(group="schema/model", name="rnn", node=RNNConfig)
    store.store(group="schema/model", name="transfer", node=TransferConfig)
    store.store(group="schema/lr_schedule", name="lr_schedule", node=LRScheduleConfig)
    store.store(group="schema/data", name="data", node=DataConfig)
    store.store(group="schema/augmentation", name="augmentation", node=AugmentationConfig)
    store.store(group="schema/optimizer", name="optimizer", node=OptimizerConfig)
    store.store(group="schema/storage", name="storage", node=StorageConfig)


# ---------------------------------------------------------------- value checks
def _fail(field_name: str, value: Any, allowed: str, example: str) -> None:
    raise ConfigError(
        f"Invalid value for `{field_name}`: received {value!r}. Allowed: {allowed}. "
        f"Fix it on the command line or in the config, e.g. `{example}`."
    )


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(field_name, value, "one of " + ", ".join(choices), f"{field_name}={choices[0]}")


def _check_positive_int(field_name: str, value: Any, example: str) -> None:
    if not isinstance(value, int) or value < 1:
        _fail(field_name, value, "an integer of at least 1", example)


def _check_fraction(field_name: str, value: Any, example: str) -> None:
    if not 0.0 < value < 1.0:
        _fail(field_name, value, "a number strictly between 0 and 1", example)


def planned_epochs(cfg: DictConfig) -> int:
    """Epochs the job trains when nothing stops it early: its stages' epochs added up."""
    fine_tune = OmegaConf.select(cfg, "model.fine_tune.epochs", default=0) if cfg.model.name == "transfer" else 0
    return int(cfg.trainer.epochs) + int(fine_tune or 0)


def resolve_mode(metric: str, mode: str) -> str:
    """Keras' rule for mode=auto: maximise accuracy-like metrics, minimise everything else."""
    if mode != "auto":
        return mode
    maximised = ("acc", "auc", "precision", "recall", "f1")
    return "max" if any(word in metric for word in maximised) else "min"


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value a job cannot run with. Cheap: no TensorFlow."""
    if not cfg.lr > 0:
        _fail("lr", cfg.lr, "a number greater than 0", "lr=1e-3")
    _check_choice("precision", cfg.precision, PRECISIONS)
    _check_choice("mode", cfg.mode, MODES)

    trainer = cfg.trainer
    _check_positive_int("trainer.epochs", trainer.epochs, "trainer.epochs=10")
    _check_positive_int("trainer.batch_size", trainer.batch_size, "trainer.batch_size=64")
    _check_positive_int(
        "trainer.steps_per_execution", trainer.steps_per_execution, "trainer.steps_per_execution=1"
    )
    if trainer.verbose not in ("auto", 0, 1, 2):
        _fail("trainer.verbose", trainer.verbose, '"auto", 0, 1 or 2', "trainer.verbose=2")
    callbacks = trainer.callbacks
    if callbacks.early_stopping.patience < 0:
        _fail(
            "trainer.callbacks.early_stopping.patience",
            callbacks.early_stopping.patience,
            "an integer of at least 0",
            "trainer.callbacks.early_stopping.patience=5",
        )
    factor = callbacks.reduce_lr_on_plateau.factor
    if not 0.0 < factor < 1.0:
        _fail(
            "trainer.callbacks.reduce_lr_on_plateau.factor",
            factor,
            "a number strictly between 0 and 1",
            "trainer.callbacks.reduce_lr_on_plateau.factor=0.5",
        )
    if callbacks.tensorboard.update_freq not in ("epoch", "batch"):
        _fail(
            "trainer.callbacks.tensorboard.update_freq",
            callbacks.tensorboard.update_freq,
            '"epoch" or "batch"',
            "trainer.callbacks.tensorboard.update_freq=epoch",
        )

    replicas = cfg.distribution.cpu_replicas
    if replicas is not None:
        _check_positive_int("distribution.cpu_replicas", replicas, "distribution.cpu_replicas=2")

    resources = cfg.get("resources")
    if resources is not None:
        if not resources.cpus > 0:
            _fail("resources.cpus", resources.cpus, "a number greater than 0", "resources.cpus=1")
        if not resources.gpus >= 0:
            _fail("resources.gpus", resources.gpus, "a number of at least 0", "resources.gpus=1")

    data = cfg.data
    _check_choice("data.task", data.task, TASKS)
    _check_choice("data.input_kind", data.input_kind, INPUT_KINDS)
    _check_fraction("data.val_fraction", data.val_fraction, "data.val_fraction=0.1")
    _check_fraction("data.test_fraction", data.test_fraction, "data.test_fraction=0.2")
    if data.max_train_samples is not None:
        _check_positive_int(
            "data.max_train_samples", data.max_train_samples, "data.max_train_samples=1000"
        )

    model = cfg.model
    _check_choice("model.name", model.name, tuple(MODEL_INPUTS))
    if not 0.0 <= model.dropout < 1.0:
        _fail("model.dropout", model.dropout, "a number in [0, 1)", "model.dropout=0.2")
    if model.l2 < 0:
        _fail("model.l2", model.l2, "a number of at least 0", "model.l2=1e-4")
    if data.input_kind not in MODEL_INPUTS[model.name]:
        serving = sorted(name for name, kinds in MODEL_INPUTS.items() if data.input_kind in kinds)
        raise ConfigError(
            f"model={model.name} cannot serve data={data.name}: that data set's examples are "
            f"{data.input_kind!r} and {model.name} accepts {', '.join(MODEL_INPUTS[model.name])}. "
            f"Models that accept {data.input_kind!r} data: {', '.join(serving)}."
        )

    _check_choice("optimizer.name", cfg.optimizer.name, OPTIMIZERS)
    _check_data_files(data)
    _check_augmentation(cfg.get("augmentation"), data)
    if model.name == "transfer":
        _check_transfer(model)
    _check_lr_schedule(cfg.get("lr_schedule"), callbacks)
    export_version = cfg.export.version if cfg.get("export") is not None else None
    if export_version is not None:
        _check_positive_int("export.version", export_version, "export.version=1")
    _check_exporters(cfg.get("export"), data)
    if cfg.optimizer.name == "sgd" and not 0.0 <= cfg.optimizer.momentum < 1.0:
        _fail("optimizer.momentum", cfg.optimizer.momentum, "a number in [0, 1)", "optimizer.momentum=0.9")


FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")


def _check_data_files(data) -> None:
    if data.input_kind == "image":
        _check_positive_int("data.image_size", data.image_size, "data.image_size=224")
        if data.channels not in (1, 3, 4):
            _fail("data.channels", data.channels, "1 (grey), 3 (RGB) or 4 (RGBA)", "data.channels=3")
    _check_target(data)
    if data.input_kind == "sequence":
        _check_window(data)
    if not isinstance(data.max_one_hot_categories, int) or data.max_one_hot_categories < 0:
        _fail(
            "data.max_one_hot_categories", data.max_one_hot_categories,
            "an integer of at least 0 (0: embed every categorical column)", "data.max_one_hot_categories=20",
        )


def target_columns(target) -> list[str]:
    """data.target as a list of column names: one name, or several for a time series."""
    if target is None:
        return []
    return [str(name) for name in target] if OmegaConf.is_list(target) or isinstance(target, list) else [str(target)]


def _check_target(data) -> None:
    target = data.target
    if target is None:
        return
    several = OmegaConf.is_list(target) or isinstance(target, list)
    if several and data.input_kind != "sequence":
        _fail("data.target", OmegaConf.to_container(target) if OmegaConf.is_list(target) else target,
              f"one column name (data={data.name} predicts one column; only data=timeseries takes a list)",
              "data.target=price")
    if OmegaConf.is_dict(target) or (several and not len(target)):
        _fail("data.target", target, "a column name, or for data=timeseries a non-empty list of them", "data.target=price")


def _check_window(data) -> None:
    _check_positive_int("data.window", data.window, "data.window=720")
    _check_positive_int("data.sampling_rate", data.sampling_rate, "data.sampling_rate=6")
    _check_positive_int("data.horizon", data.horizon, "data.horizon=144")
    if data.sampling_rate > data.window:
        _fail(
            "data.sampling_rate", data.sampling_rate,
            f"at most data.window ({data.window}): the window keeps every sampling_rate-th of its rows",
            f"data.sampling_rate={data.window}",
        )


def _check_augmentation(augmentation, data) -> None:
    if augmentation is None:
        return
    if augmentation.flip is not None:
        _check_choice("augmentation.flip", augmentation.flip, FLIPS)
    amounts = {key: augmentation[key] for key in ("rotation", "zoom", "contrast", "translation")}
    for key, value in amounts.items():
        if not 0.0 <= value < 1.0:
            _fail(f"augmentation.{key}", value, "a number in [0, 1)", f"augmentation.{key}=0.1")
    if (augmentation.flip or any(amounts.values())) and data.input_kind != "image":
        raise ConfigError(
            f"augmentation={augmentation.name} transforms images, but data={data.name} has "
            f"{data.input_kind!r} examples. Use augmentation=none with this data."
        )


def _check_transfer(model) -> None:
    _check_choice("model.backbone", model.backbone, BACKBONES)
    weights = model.weights
    if weights not in (None, "imagenet"):
        path = os.path.abspath(os.path.expanduser(weights))
        if not os.path.isfile(path):
            raise ConfigError(
                f"Invalid value for `model.weights`: no file at {path!r} (from {weights!r}). Allowed: "
                "imagenet, null (random initialisation) or the path of a weights file, e.g. `model.weights=null`."
            )
        if not path.endswith(WEIGHTS_SUFFIXES):
            _fail("model.weights", weights, "a file ending in " + ", ".join(WEIGHTS_SUFFIXES), "model.weights=null")
    if model.input_size is not None and (not isinstance(model.input_size, int) or model.input_size < MIN_BACKBONE_INPUT):
        _fail("model.input_size", model.input_size, f"null or an integer of at least {MIN_BACKBONE_INPUT}", "model.input_size=96")
    if not model.alpha > 0:
        _fail("model.alpha", model.alpha, "a number greater than 0", "model.alpha=0.35")
    if model.alpha != 1.0 and model.backbone != "mobilenet_v2":
        _fail("model.alpha", model.alpha, f"1.0 (only mobilenet_v2 has a width multiplier; backbone is {model.backbone})", "model.alpha=1.0")
    _check_choice("model.pooling", model.pooling, ("avg", "max"))
    fine_tune = model.fine_tune
    if not isinstance(fine_tune.epochs, int) or fine_tune.epochs < 0:
        _fail("model.fine_tune.epochs", fine_tune.epochs, "an integer of at least 0 (0: no fine-tuning stage)", "model.fine_tune.epochs=5")
    if not isinstance(fine_tune.unfreeze_layers, int) or fine_tune.unfreeze_layers < 1:
        _fail(
            "model.fine_tune.unfreeze_layers",
            fine_tune.unfreeze_layers,
            "an integer of at least 1 (to skip fine-tuning set model.fine_tune.epochs=0)",
            "model.fine_tune.unfreeze_layers=20",
        )
    if not fine_tune.lr > 0:
        _fail("model.fine_tune.lr", fine_tune.lr, "a number greater than 0", "model.fine_tune.lr=1e-5")


# Python modules each exporter needs beyond TensorFlow, and the command that installs them. The TF.js
# writer (trainers/tfjs.py) needs none: the tensorflowjs converter cannot be installed beside TensorFlow 2.21.
EXPORTER_MODULES = {
    "onnx": (("tf2onnx", "onnx"), "pip install -e '.[onnx]' (in a checkout; it brings tf2onnx>=1.17,<1.18 and onnx>=1.23,<1.24)"),
}


def _check_exporters(export, data) -> None:
    """Refuse an export that cannot run, before any training: a missing package, or raw-text inputs."""
    if export is None:
        return
    import importlib.util

    for name, (modules, install) in EXPORTER_MODULES.items():
        missing = [module for module in modules if export.get(name) and importlib.util.find_spec(module) is None]
        if missing:
            raise ConfigError(
                f"export.{name}=true needs the Python package(s) {', '.join(missing)}, not installed here. "
                f"Install them with {install}, or set export.{name}=false."
            )
    for name in ("onnx", "tfjs"):
        if export.get(name) and data.input_kind == "text":
            raise ConfigError(
                f"export.{name}=true cannot export a raw-text model (data={data.name}): its TextVectorization string "
                "ops have no ONNX or TF.js counterpart here. Use export.saved_model=true or export.tflite=true, "
                f"or set export.{name}=false."
            )


def _check_lr_schedule(schedule, callbacks) -> None:
    if schedule is None:
        return
    _check_choice("lr_schedule.name", schedule.name, LR_SCHEDULES)
    if schedule.name == "constant":
        return
    low_inclusive = schedule.name != "exponential"  # exponential decay to 0 is not defined
    if not (0.0 <= schedule.final_fraction <= 1.0 if low_inclusive else 0.0 < schedule.final_fraction <= 1.0):
        allowed = "a number in [0, 1]" if low_inclusive else "a number in (0, 1]"
        _fail("lr_schedule.final_fraction", schedule.final_fraction, allowed, "lr_schedule.final_fraction=0.01")
    if schedule.name == "warmup":
        _check_fraction("lr_schedule.warmup_fraction", schedule.warmup_fraction, "lr_schedule.warmup_fraction=0.1")
    if callbacks.reduce_lr_on_plateau.enabled:
        # Keras cannot set the learning rate of an optimizer a schedule drives: refuse before training
        # rather than fail at the first plateau. The schedule configs switch the callback off themselves.
        raise ConfigError(
            f"lr_schedule={schedule.name} drives the learning rate, so ReduceLROnPlateau cannot change it, "
            "but trainer.callbacks.reduce_lr_on_plateau.enabled is true. Use one of them: "
            "`trainer.callbacks.reduce_lr_on_plateau.enabled=false` or `lr_schedule=constant`."
        )


def to_plain_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
