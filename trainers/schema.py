"""Typed schemas for the job config: each field's type, allowed values and own rule side by side.

OmegaConf refuses a value of the wrong type or outside an enum while Hydra composes the config
(`composition_error_message` words that refusal like every other); a field's own rule (`rule(...)`
beside it) and the rules between fields run in `validate`. Imports neither TensorFlow nor Keras: the
launcher validates every job of a sweep with this module before any compute is spent.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError
from omegaconf.nodes import BooleanNode, EnumNode, FloatNode, IntegerNode


class ConfigError(ValueError):
    """A config value is outside what the job accepts. The message names field, value and fix."""


# ---------------------------------------------------------------- fixed sets of values
class Choice(StrEnum):
    """A value from a fixed set: equal to its string, and shown as one in messages."""

    def __repr__(self) -> str:
        return repr(self.value)


class Precision(Choice):
    auto = "auto"  # mixed_float16 on GPUs of compute capability >= 7.0, float32 otherwise
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class Mode(Choice):
    auto = "auto"  # Keras' rule: max for accuracy-like metrics, min for the rest
    min = "min"
    max = "max"


class Task(Choice):
    binary = "binary"
    multiclass = "multiclass"
    multilabel = "multilabel"
    regression = "regression"


class InputKind(Choice):
    """What a data set's examples look like, which decides the layers a model puts in front of its body.
    "text" is raw strings: the model itself turns them into token ids (TextVectorization), so a saved
    model takes strings as they are. "sequence" is a window of numeric readings (time steps x features)."""

    image = "image"
    tokens = "tokens"
    text = "text"
    tabular = "tabular"
    sequence = "sequence"


class ModelName(Choice):
    mlp = "mlp"
    cnn = "cnn"
    lstm = "lstm"
    gru = "gru"
    text_lstm = "text_lstm"
    transfer = "transfer"


class OptimizerName(Choice):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"
    rmsprop = "rmsprop"


class Backbone(Choice):
    efficientnet_b0 = "efficientnet_b0"
    mobilenet_v2 = "mobilenet_v2"
    resnet50 = "resnet50"


class Pooling(Choice):
    avg = "avg"
    max = "max"


class LRScheduleName(Choice):
    constant = "constant"
    cosine = "cosine"
    exponential = "exponential"
    warmup = "warmup"


class Flip(Choice):
    horizontal = "horizontal"
    vertical = "vertical"
    horizontal_and_vertical = "horizontal_and_vertical"


class UpdateFreq(Choice):
    epoch = "epoch"
    batch = "batch"


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
BACKBONES = tuple(backbone.value for backbone in Backbone)
# The smallest image side keras.applications accepts for these backbones (without their top).
MIN_BACKBONE_INPUT = 32
# What Keras' load_weights reads for a backbone's weights file.
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")


# ---------------------------------------------------------------- rules of single fields
CHECK = "check"
FieldCheck = Callable[[str, Any], None]  # (the field's full key, its value): raises ConfigError


def refuse(field_name: str, value: Any, allowed: str, example: str) -> None:
    raise ConfigError(invalid_value_message(field_name, value, allowed, example))


def invalid_value_message(field_name: str, value: Any, allowed: str, example: str) -> str:
    return (
        f"Invalid value for `{field_name}`: received {value!r}. Allowed: {allowed}. "
        f"Fix it on the command line or in the config, e.g. `{field_name}={example}`."
    )


def rule(default: Any, test: Callable[[Any], bool], allowed: str, example: str) -> Any:
    """A dataclass field whose value must pass `test`; `allowed` and `example` (as typed on the command
    line) make the message. null is never tested: OmegaConf refuses it where the field is not Optional."""

    def check(key: str, value: Any) -> None:
        if not test(value):
            refuse(key, value, allowed, example)

    return checked(default, check)


def checked(default: Any, check: FieldCheck) -> Any:
    """A dataclass field with a check of its own (for messages `rule` cannot word)."""
    return field(default=default, metadata={CHECK: check})


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: _integer(value) and value >= low


def positive(value: Any) -> bool:
    return value > 0


def fraction(value: Any) -> bool:
    return 0.0 < value < 1.0


def in_unit_interval(value: Any) -> bool:
    return 0.0 <= value < 1.0


AT_LEAST_1 = "an integer of at least 1"
IN_UNIT_INTERVAL = "a number in [0, 1)"
FRACTION = "a number strictly between 0 and 1"


# ---------------------------------------------------------------- model schemas (one per model file)
@dataclass
class ModelConfig:
    name: ModelName = MISSING
    dropout: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.2")
    l2: float = rule(0.0, lambda value: value >= 0, "a number of at least 0", "1e-4")
    batch_norm: bool = False
    # Only used when the data are token ids, or categorical CSV columns with more than
    # data.max_one_hot_categories categories.
    embedding_dim: int = rule(64, at_least(1), AT_LEAST_1, "64")


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
    epochs: int = rule(5, at_least(0), "an integer of at least 0 (0: no fine-tuning stage)", "5")
    # How many of the backbone's last layers become trainable; BatchNormalization layers stay frozen.
    unfreeze_layers: int = rule(
        20, at_least(1), "an integer of at least 1 (to skip fine-tuning set model.fine_tune.epochs=0)", "20"
    )
    # A small learning rate, so the pretrained features are adjusted rather than overwritten.
    lr: float = rule(1e-5, positive, "a number greater than 0", "1e-5")


def _check_weights(key: str, weights: str) -> None:
    if weights == "imagenet":
        return
    path = os.path.abspath(os.path.expanduser(weights))
    if not os.path.isfile(path):
        raise ConfigError(
            f"Invalid value for `{key}`: no file at {path!r} (from {weights!r}). Allowed: "
            f"imagenet, null (random initialisation) or the path of a weights file, e.g. `{key}=null`."
        )
    if not path.endswith(WEIGHTS_SUFFIXES):
        refuse(key, weights, "a file ending in " + ", ".join(WEIGHTS_SUFFIXES), "null")


@dataclass
class TransferConfig(ModelConfig):
    backbone: Backbone = Backbone.mobilenet_v2
    # "imagenet" (downloaded once into ~/.keras/models), null (random init), or a local weights file.
    weights: Optional[str] = checked("imagenet", _check_weights)
    # Side the images are resized to inside the model (null: the data's own size, at least 32).
    input_size: Optional[int] = rule(
        None, at_least(MIN_BACKBONE_INPUT), f"null or an integer of at least {MIN_BACKBONE_INPUT}", "96"
    )
    # MobileNetV2's width multiplier (Keras' `alpha`); imagenet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
    alpha: float = rule(1.0, positive, "a number greater than 0", "0.35")
    # Global pooling over the backbone's feature map.
    pooling: Pooling = Pooling.avg
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)


# ---------------------------------------------------------------- data
@dataclass
class DataConfig:
    name: str = MISSING
    task: Task = MISSING
    input_kind: InputKind = MISSING
    # A local file in the format of the named loader; null means the loader's own source.
    path: Optional[str] = None
    # Fraction of the training split held out for validation when the data set has no validation split.
    val_fraction: float = rule(0.1, fraction, FRACTION, "0.1")
    # Fraction held out for testing when the data set has no test split.
    test_fraction: float = rule(0.2, fraction, FRACTION, "0.2")
    # Cap on training examples (null: all), for quick runs.
    max_train_samples: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "1000")
    cache: bool = True
    shuffle_buffer: int = 10_000
    # Token data only.
    num_words: int = 10_000
    sequence_length: int = 200
    # Image folders only: images are resized to image_size x image_size with this many channels.
    image_size: int = rule(64, at_least(1), AT_LEAST_1, "224")
    channels: int = rule(3, lambda value: value in (1, 3, 4), "1 (grey), 3 (RGB) or 4 (RGBA)", "3")
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
    max_one_hot_categories: int = rule(
        20, at_least(0), "an integer of at least 0 (0: embed every categorical column)", "20"
    )
    # Time series only: the column holding each row's time (null: the first column), its strptime format
    # (null: ISO 8601, jena_climate's "01.01.2009 00:10:00", or plain numbers), and the window geometry in
    # rows: a prediction sees the last `window` rows, keeping every `sampling_rate`-th one (ending with the
    # latest), and predicts the target `horizon` rows after the latest.
    time_column: Optional[str] = None
    time_format: Optional[str] = None
    window: int = rule(720, at_least(1), AT_LEAST_1, "720")
    sampling_rate: int = rule(6, at_least(1), AT_LEAST_1, "6")
    horizon: int = rule(144, at_least(1), AT_LEAST_1, "144")
    # Time steps missing from the file are refused; true treats the rows as evenly spaced anyway.
    allow_gaps: bool = False


# ---------------------------------------------------------------- augmentation
@dataclass
class AugmentationConfig:
    """Keras preprocessing layers at the front of an image model: they change images only in training
    (`training=True`); validation, test and a saved model's predictions see the images unchanged."""

    name: str = MISSING
    # null: no flips.
    flip: Optional[Flip] = None
    # Fractions as Keras takes them: rotation of a full turn, zoom and translation of the image size,
    # contrast as the factor's spread around 1.
    rotation: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    zoom: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    contrast: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")
    translation: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.1")


# ---------------------------------------------------------------- optimizer
# One schema per optimizer, holding the defaults; conf/optimizer/<name>.yaml names the Keras class
# (`_target_`) and trainers/optimizers.py instantiates it with the learning rate.
@dataclass
class OptimizerConfig:
    _target_: str = MISSING
    # Also the optimizer's name in Keras.
    name: OptimizerName = MISSING
    # Clip each gradient to this norm (null: no clipping).
    clipnorm: Optional[float] = rule(None, positive, "null or a number greater than 0", "1.0")


@dataclass
class AdamConfig(OptimizerConfig):
    beta_1: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    beta_2: float = rule(0.999, in_unit_interval, IN_UNIT_INTERVAL, "0.999")
    epsilon: float = rule(1e-7, positive, "a number greater than 0", "1e-7")


@dataclass
class AdamWConfig(AdamConfig):
    # Decoupled weight decay.
    weight_decay: float = rule(0.004, lambda value: value >= 0, "a number of at least 0", "0.004")


@dataclass
class SGDConfig(OptimizerConfig):
    momentum: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    nesterov: bool = False


@dataclass
class RMSpropConfig(OptimizerConfig):
    rho: float = rule(0.9, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    momentum: float = rule(0.0, in_unit_interval, IN_UNIT_INTERVAL, "0.9")
    epsilon: float = rule(1e-7, positive, "a number greater than 0", "1e-7")


# ---------------------------------------------------------------- learning-rate schedule
@dataclass
class LRScheduleConfig:
    """Learning rate over each training stage's steps, starting from (warmup: rising to) the stage's lr.
    A schedule drives the rate itself, so ReduceLROnPlateau must be off with any but constant."""

    name: LRScheduleName = LRScheduleName.constant
    # Learning rate at the stage's end as a fraction of its lr (cosine, warmup, exponential).
    final_fraction: float = rule(0.0, lambda value: 0.0 <= value <= 1.0, "a number in [0, 1]", "0.01")
    # warmup only: fraction of the stage's steps spent rising linearly from 0 to lr.
    warmup_fraction: float = rule(0.1, fraction, FRACTION, "0.1")


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
    version: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "1")


# ---------------------------------------------------------------- trainer
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
    # Continue from the last epoch's state found in the job's folder.
    resume: bool = True
    # Bit-identical reruns with the same seed on the same machine.
    deterministic: bool = True
    # XLA measured 3x slower on CPU here; worth trying on GPUs.
    jit_compile: bool = False
    steps_per_execution: int = rule(1, at_least(1), AT_LEAST_1, "1")
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)


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


@dataclass
class StorageConfig:
    # gs://BUCKET/PREFIX or a local folder (relative: to the directory launch.py started in); null: no copies.
    # Checked by cluster.store before training; the trainer never reads this block.
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
    lr: float = rule(1e-3, positive, "a number greater than 0", "1e-3")
    seed: int = 0
    precision: Precision = Precision.auto
    # The metric that picks the best epoch and the best trial; mode auto: min for losses and errors.
    metric: str = "val_loss"
    mode: Mode = Mode.auto


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore, where config files name them in their defaults lists, and
    register the `raylaunch_mode` resolver (`resolve_mode`) the config's `hydra.launcher.mode` calls.

    Call it before composing a config, as often as you like: launch.py and tests call it at import.

    Example:
        >>> register_schemas()
        >>> with initialize_config_dir(config_dir="/path/to/conf", version_base="1.3"):
        ...     cfg = compose("config", overrides=["metric=val_accuracy"], return_hydra_config=True)
        >>> cfg.hydra.launcher.mode
        <Mode.max: 'max'>
    """
    from hydra.core.config_store import ConfigStore

    # replace=True: a second call re-registers the same function instead of raising.
    OmegaConf.register_new_resolver(MODE_RESOLVER, resolve_mode, replace=True)

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
    store.store(group="schema/optimizer", name="adam", node=AdamConfig)
    store.store(group="schema/optimizer", name="adamw", node=AdamWConfig)
    store.store(group="schema/optimizer", name="sgd", node=SGDConfig)
    store.store(group="schema/optimizer", name="rmsprop", node=RMSpropConfig)
    store.store(group="schema/storage", name="storage", node=StorageConfig)


# ---------------------------------------------------------------- checks
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


def check_fields(node: DictConfig, prefix: str = "") -> None:
    """Run the rule each field declares in its schema (see `rule`), over `node` and every node below it."""
    schema = OmegaConf.get_type(node)
    checks = {}
    if dataclasses.is_dataclass(schema):
        checks = {item.name: item.metadata[CHECK] for item in dataclasses.fields(schema) if CHECK in item.metadata}
    for key in node:
        value = node[key]
        if isinstance(value, DictConfig):
            check_fields(value, f"{prefix}{key}.")
        elif key in checks and value is not None:
            checks[key](f"{prefix}{key}", value)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value a job cannot run with: a field's own rule, then the rules
    between fields. Cheap: no TensorFlow."""
    check_fields(cfg)
    data, model = cfg.data, cfg.model
    if data.input_kind not in MODEL_INPUTS[model.name]:
        serving = sorted(name for name, kinds in MODEL_INPUTS.items() if data.input_kind in kinds)
        raise ConfigError(
            f"model={model.name} cannot serve data={data.name}: that data set's examples are "
            f"{data.input_kind!r} and {model.name} accepts {', '.join(MODEL_INPUTS[model.name])}. "
            f"Models that accept {data.input_kind!r} data: {', '.join(serving)}."
        )
    _check_target(data)
    if data.input_kind == "sequence" and data.sampling_rate > data.window:
        refuse(
            "data.sampling_rate", data.sampling_rate,
            f"at most data.window ({data.window}): the window keeps every sampling_rate-th of its rows",
            str(data.window),
        )
    _check_augmentation(cfg.get("augmentation"), data)
    if model.name == "transfer" and model.alpha != 1.0 and model.backbone != Backbone.mobilenet_v2:
        refuse("model.alpha", model.alpha, f"1.0 (only mobilenet_v2 has a width multiplier; backbone is {model.backbone})", "1.0")
    _check_lr_schedule(cfg.get("lr_schedule"), cfg.trainer.callbacks)
    _check_exporters(cfg.get("export"), data)


# Data read from a file or folder the user names: what data.path must be, and an example of it.
DATA_FILES = {
    "csv": ("a CSV file with a header row", "data.path=houses.csv"),
    "timeseries": ("a CSV file with a time column and numeric columns in time order",
                   "data.path=jena_climate_2009_2016.csv"),
    "image_folder": ("a folder with one sub-folder of files per class", "data.path=./photos"),
    "text_folder": ("a folder with one sub-folder of files per class", "data.path=./reviews"),
}


def _check_data_path(data) -> None:
    """Before anything is printed or uploaded: a data set read from a file names one that exists (relative to
    the folder launch.py started in)."""
    if data.name not in DATA_FILES:
        return
    expected, example = DATA_FILES[data.name]
    if not data.path:
        raise ConfigError(f"data={data.name} needs data.path: {expected}. Set it, e.g. `{example}`.")
    from hydra.utils import to_absolute_path  # outside a Hydra run: the current directory

    resolved = to_absolute_path(os.path.expanduser(str(data.path)))
    if not os.path.exists(resolved):
        raise ConfigError(f"data.path: {data.path!r} does not exist (looked for {resolved}). Expected {expected}.")


def validate_job(cfg: DictConfig) -> None:
    """`validate`, then what the job reads: a data set read from a file names one that exists. What launch.py
    and a sweep's driver (hydra.launcher.validate) check before anything is printed, uploaded or started."""
    validate(cfg)
    _check_data_path(cfg.data)


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
        refuse("data.target", OmegaConf.to_container(target) if OmegaConf.is_list(target) else target,
               f"one column name (data={data.name} predicts one column; only data=timeseries takes a list)", "price")
    if OmegaConf.is_dict(target) or (several and not len(target)):
        refuse("data.target", target, "a column name, or for data=timeseries a non-empty list of them", "price")


def _check_augmentation(augmentation, data) -> None:
    if augmentation is None:
        return
    transforms = augmentation.flip or any(augmentation[key] for key in ("rotation", "zoom", "contrast", "translation"))
    if transforms and data.input_kind != "image":
        raise ConfigError(
            f"augmentation={augmentation.name} transforms images, but data={data.name} has "
            f"{data.input_kind!r} examples. Use augmentation=none with this data."
        )


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
    if schedule is None or schedule.name == "constant":
        return
    if schedule.name == "exponential" and not schedule.final_fraction > 0:  # exponential decay to 0 is not defined
        refuse("lr_schedule.final_fraction", schedule.final_fraction, "a number in (0, 1] with lr_schedule=exponential", "0.01")
    if callbacks.reduce_lr_on_plateau.enabled:
        # Keras cannot set the learning rate of an optimizer a schedule drives: refuse before training
        # rather than fail at the first plateau. The schedule configs switch the callback off themselves.
        raise ConfigError(
            f"lr_schedule={schedule.name} drives the learning rate, so ReduceLROnPlateau cannot change it, "
            "but trainer.callbacks.reduce_lr_on_plateau.enabled is true. Use one of them: "
            "`trainer.callbacks.reduce_lr_on_plateau.enabled=false` or `lr_schedule=constant`."
        )


# ---------------------------------------------------------------- values refused while composing
_TYPE_ALLOWED = {BooleanNode: ("true or false", "true"), IntegerNode: ("an integer", "1"), FloatNode: ("a number", "0.5")}


def composition_error_message(error: BaseException) -> Optional[str]:
    """The message for a value OmegaConf refused while Hydra composed the config (outside an enum, of the
    wrong type, or for a key the schema does not have), worded like `validate`'s: the field, what was
    received, what is allowed and a fix. None for any other composition error (e.g. an unknown group
    option: Hydra's own message lists the options)."""
    refusal = error
    while refusal is not None and not isinstance(refusal, (ValidationError, ConfigKeyError, ConfigAttributeError)):
        refusal = refusal.__cause__ or refusal.__context__
    if refusal is None or not refusal.full_key:
        return None
    if isinstance(refusal, (ConfigKeyError, ConfigAttributeError)):
        schema = refusal.object_type
        if not dataclasses.is_dataclass(schema):
            return None
        keys = [item.name for item in dataclasses.fields(schema) if not item.name.startswith("_")]
        parent = refusal.full_key.rpartition(".")[0]
        return (f"Unknown key `{refusal.full_key}`: {parent or 'the job'} ({schema.__name__}) has no `{refusal.key}`. "
                f"Its keys: {', '.join(keys)}. Check the spelling, or choose the group option that has it.")
    node = refusal.child_node
    current = node._value() if node is not None else None  # the value before the refused one
    if isinstance(node, EnumNode):
        choices = [member.name for member in node.enum_type]
        allowed = "one of " + ", ".join(choices) + (", or null" if node._is_optional() else "")
        example = current.name if current is not None else choices[0]
    elif type(node) in _TYPE_ALLOWED:
        allowed, example = _TYPE_ALLOWED[type(node)]
        example = str(current).lower() if isinstance(current, bool) else (example if current is None else str(current))
    else:
        return None
    return invalid_value_message(refusal.full_key, refusal.value, allowed, example)
