"""`validate` and `validate_job`: the rules between fields, run over a composed config after each field's own.

Cheap (no TensorFlow): the launcher validates every job of a sweep (`hydra.launcher.validate`) before any
compute is spent.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from .data import CSV_ONLY, DELIMITED_FILE_KINDS, DELIMITED_FILE_ONLY, TIMESERIES_ONLY, seasonal_lag
from .fields import ConfigError, check_fields, refuse
from .model import MODEL_INPUTS, Backbone
from .tfrecord_spec import check_tfrecord


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value a job cannot run with: a field's own rule, then the rules
    between fields. Cheap: no TensorFlow."""
    check_fields(cfg)
    data, model = cfg.data, cfg.model
    check_tfrecord(data)  # first: a feature spec decides data=tfrecord's input_kind
    if data.input_kind not in MODEL_INPUTS[model.name]:
        serving = sorted(name for name, kinds in MODEL_INPUTS.items() if data.input_kind in kinds)
        raise ConfigError(
            f"model={model.name} cannot serve data={data.name}: that data set's examples are "
            f"{data.input_kind!r} and {model.name} accepts {', '.join(MODEL_INPUTS[model.name])}. "
            f"Models that accept {data.input_kind!r} data: {', '.join(serving)}."
        )
    _check_target(data)
    _check_csv_only(data)
    _check_timeseries_only(data)
    check_season(data)
    if data.input_kind == "sequence" and data.sampling_rate > data.window:
        refuse(
            "data.sampling_rate", data.sampling_rate,
            f"at most data.window ({data.window}): the window keeps every sampling_rate-th of its rows",
            str(data.window),
        )
    _check_augmentation(cfg.get("augmentation"), data)
    if model.name == "transfer" and model.alpha != 1.0 and model.backbone != Backbone.mobilenet_v2:
        refuse(
            "model.alpha", model.alpha,
            f"1.0 (only mobilenet_v2 has a width multiplier; backbone is {model.backbone})", "1.0",
        )
    _check_lr_schedule(cfg.get("lr_schedule"), cfg.trainer.callbacks)
    _check_exporters(cfg.get("export"), data)


# Data read from a file or folder the user names: what data.path must be, and an example of it.
DATA_FILES = {
    "csv": ("a CSV file with a header row", "data.path=houses.csv"),
    "timeseries": ("a CSV file with a time column and numeric columns in time order",
                   "data.path=jena_climate_2009_2016.csv"),
    "image_folder": ("a folder with one sub-folder of files per class", "data.path=./photos"),
    "text_folder": ("a folder with one sub-folder of files per class", "data.path=./reviews"),
    "tfrecord": ("a folder holding the TFRecord files data.files matches", "data.path=./records"),
}


# A data.path or model.weights naming a bucket: the app (launch.py) checks it and resolves it to a local copy
# before training, so the trainers' checks of local files leave it alone.
BUCKET_SCHEME = "gs://"


def _check_data_path(data) -> None:
    """Before anything is printed or uploaded: a data set read from a file names one that exists (relative to
    the folder launch.py started in)."""
    if data.name not in DATA_FILES:
        return
    expected, example = DATA_FILES[data.name]
    if not data.path:
        raise ConfigError(f"data={data.name} needs data.path: {expected}. Set it, e.g. `{example}`.")
    if str(data.path).startswith(BUCKET_SCHEME):  # the app checks it and hands the trainers a local copy
        return
    from hydra.utils import to_absolute_path  # outside a Hydra run: the current directory

    resolved = to_absolute_path(os.path.expanduser(str(data.path)))
    if not os.path.exists(resolved):
        raise ConfigError(f"data.path: {data.path!r} does not exist (looked for {resolved}). Expected {expected}.")


def validate_job(cfg: DictConfig) -> None:
    """`validate`, then what the job reads: a data set read from a file names one that exists. What launch.py
    and a sweep's driver (hydra.launcher.validate) check before anything is printed, uploaded or started."""
    validate(cfg)
    _check_data_path(cfg.data)


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


def _check_csv_only(data) -> None:
    """data=csv's settings for missing cells and dates, and the delimiter of csv and timeseries, do nothing
    elsewhere: say so."""
    if data.name != "csv":
        _refuse_unless_default(data, CSV_ONLY, "only data=csv reads it")
    if data.name not in DELIMITED_FILE_KINDS:
        _refuse_unless_default(data, DELIMITED_FILE_ONLY, "only data=csv and data=timeseries read it")


def _refuse_unless_default(data, defaults: dict, readers: str) -> None:
    for key, default in defaults.items():
        value = data.get(key, default)
        value = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
        if value != default:
            shown = "null" if default is None else default
            shown = "[" + ",".join(repr(item) for item in default) + "]" if isinstance(default, list) else shown
            refuse(f"data.{key}", value, f"its default ({shown}) with data={data.name}: {readers}", str(shown))


def _check_timeseries_only(data) -> None:
    """data=timeseries's target transform, season and series column do nothing elsewhere: say so."""
    if data.input_kind == "sequence":
        return
    for key, default in TIMESERIES_ONLY.items():
        value = data.get(key, default)
        if value != default:
            shown = "null" if default is None else str(default)
            refuse(f"data.{key}", value, f"{shown} with data={data.name}: only data=timeseries reads it", shown)


def check_season(data) -> None:
    """The seasonal-naive forecast reads the latest value at the target's point of the season: a row of the
    example's own window, so it is scored on the same windows as the model and never reads across series."""
    season = data.get("season")
    if season is None or data.input_kind != "sequence":
        return
    lag = seasonal_lag(season, data.horizon)
    if lag > data.window - 1:
        refuse(
            "data.season", season,
            f"a season whose seasonal-naive value lies inside the window: with data.horizon={data.horizon} a "
            f"season of {season} rows reads the value {lag} rows before the latest reading, but "
            f"data.window={data.window} holds {data.window - 1} rows before it. Use data.window>={lag + 1}, or a "
            f"season of at most {data.window - 1 + data.horizon} rows", str(max(2, data.window - 1 + data.horizon)),
        )


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
    "onnx": (
        ("tf2onnx", "onnx"),
        "pip install -e '.[onnx]' (in a checkout; it brings tf2onnx>=1.17,<1.18 and onnx>=1.23,<1.24)",
    ),
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
        refuse(
            "lr_schedule.final_fraction", schedule.final_fraction,
            "a number in (0, 1] with lr_schedule=exponential", "0.01",
        )
    if callbacks.reduce_lr_on_plateau.enabled:
        # Keras cannot set the learning rate of an optimizer a schedule drives: refuse before training
        # rather than fail at the first plateau. The schedule configs switch the callback off themselves.
        raise ConfigError(
            f"lr_schedule={schedule.name} drives the learning rate, so ReduceLROnPlateau cannot change it, "
            "but trainer.callbacks.reduce_lr_on_plateau.enabled is true. Use one of them: "
            "`trainer.callbacks.reduce_lr_on_plateau.enabled=false` or `lr_schedule=constant`."
        )
