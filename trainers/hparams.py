"""TensorBoard HParams for one job: its hyperparameters and metric list, written before the first epoch.

A sweep's log dir holds one job folder per trial, each with `tensorboard/` (Keras writes `train/` and
`validation/` under it). This module makes `tensorboard/` the trial's HParams session, so
`tensorboard --logdir <sweep dir>` lists every trial in the HParams dashboard from its start on, with
the last value of each metric the trial has written so far.

Hydra stays out of trainers/: the job's command-line overrides (Hydra's `overrides.task`) arrive as
plain strings from whoever runs the job.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import keras
from omegaconf import DictConfig, ListConfig, OmegaConf

HParamValue = Union[bool, int, float, str]

# Always recorded, named as the user types them on the command line (so `model=lstm` and the
# standard entry are the same hparam): hparam name -> config key holding its value.
STANDARD_HPARAMS = {
    "model": "model.name",
    "data": "data.name",
    "optimizer": "optimizer.name",
    "lr": "lr",
    "trainer.batch_size": "trainer.batch_size",
    "precision": "precision",
    "seed": "seed",
}

# Overrides that say where and how a job runs, not what it learns: left out of the HParams columns, where
# `storage.uri=null` or `trainer.verbose=2` would only crowd out the hyperparameters being compared.
NOT_HYPERPARAMETERS = ("storage", "resources", "export", "trainer.verbose", "trainer.resume")

# What ThroughputLogger adds to the training logs; Keras writes them in the `train` group.
EXTRA_TRAIN_LOGS = ("learning_rate", "samples_per_second", "input_wait_fraction")


def _plain(value) -> Optional[HParamValue]:
    """An hparam value TensorBoard can store (bool, number, string), or None for a config subtree."""
    if isinstance(value, DictConfig):
        return None
    if isinstance(value, ListConfig):
        return str(OmegaConf.to_container(value, resolve=True))
    if value is None:
        return "null"
    if isinstance(value, Enum):  # a fixed choice (trainers/schema.py): its name, as typed
        return value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def job_hparams(cfg: DictConfig, overrides: Iterable[str] = ()) -> dict[str, HParamValue]:
    """The standard hyperparameters plus every key the user overrode for this job (sweeps are overrides).

    An override's value is read back from the composed config, so `lr=1e-4` is the number 0.0001; a
    config-group choice such as `model=lstm` keeps the chosen name.
    """
    values: dict[str, HParamValue] = {}
    for name, key in STANDARD_HPARAMS.items():
        value = _plain(OmegaConf.select(cfg, key, default=None))
        if value is not None:
            values[name] = value
    for key, raw in _parse_overrides(overrides):
        value = _plain(OmegaConf.select(cfg, key.replace("/", "."), default=None))
        values[key] = raw if value is None else value  # a group choice: its name
    return values


def _parse_overrides(overrides: Iterable[str]) -> list[tuple[str, str]]:
    result = []
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.lstrip("+")
        key = key.split("@", 1)[0]
        if not sep or key.startswith("~") or key.startswith("hydra") or _runs_the_job(key):
            continue  # deletions, Hydra's own settings and run settings are not hyperparameters
        result.append((key, raw))
    return result


def _runs_the_job(key: str) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in NOT_HYPERPARAMETERS)


def metric_names(model: keras.Model, input_wait: bool = True) -> list[tuple[str, str, str]]:
    """(tag, group, display name) for every per-epoch scalar Keras' TensorBoard callback will write
    (`input_wait`: whether the job times its input, trainer.time_input_wait).

    Known before the first epoch from the compile config, so the metric columns exist from the start.
    """
    names = ["loss"]
    for metric in (model.get_compile_config() or {}).get("metrics") or []:
        if isinstance(metric, dict):
            names.append(metric.get("config", {}).get("name") or metric.get("class_name", "metric"))
        elif isinstance(metric, str):
            names.append(metric)
    result = [(f"epoch_{name}", "validation", f"val_{name}") for name in names]
    extra = [name for name in EXTRA_TRAIN_LOGS if input_wait or name != "input_wait_fraction"]
    result += [(f"epoch_{name}", "train", name) for name in [*names, *extra]]
    return result


class HParamsSession(keras.callbacks.Callback):
    """Writes the HParams session into a TensorBoard log dir when created, marks it finished when fit
    ends, and flushes the given TensorBoard callbacks' event files after every epoch.

    The flush matters for watching: TensorFlow's summary writers otherwise hold up to 10 scalars or two
    minutes, so a running trial's first epochs would not be visible.
    """

    def __init__(
        self,
        log_dir: Union[str, Path],
        hparams: dict,
        metrics: Sequence[tuple[str, str, str]],
        tensorboards: Sequence = (),
        chosen: Iterable[str] = (),
    ):
        super().__init__()
        import tensorflow as tf
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        self._tensorboards = list(tensorboards)
        self._writer = tf.summary.create_file_writer(str(log_dir))
        types = {
            bool: api_pb2.DATA_TYPE_BOOL,
            int: api_pb2.DATA_TYPE_FLOAT64,
            float: api_pb2.DATA_TYPE_FLOAT64,
            str: api_pb2.DATA_TYPE_STRING,
        }
        # No domains: each trial knows only its own values, and a one-value domain would make the
        # dashboard's filters hide every other trial. Types let it sort numbers as numbers.
        # `differs` is what TensorBoard sorts by and shows first (5 hparams by default): claim it for the
        # keys the user chose on the command line, which in a sweep are the swept ones.
        chosen = set(chosen)
        hparam_infos = [
            api_pb2.HParamInfo(name=name, type=types[type(value)], differs=name in chosen)
            for name, value in hparams.items()
        ]
        metric_infos = [
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag, group=group), display_name=display)
            for tag, group, display in metrics
        ]
        # Every trial writes the same experiment (same keys across a sweep); TensorBoard uses any one of them.
        # An empty group name makes every trial its own row, even two with equal hyperparameters.
        self._write(hparams_summary.experiment_pb(hparam_infos, metric_infos))
        self._write(hparams_summary.session_start_pb(hparams, start_time_secs=time.time()))

    def _write(self, summary_pb) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.experimental.write_raw_pb(summary_pb.SerializeToString(), step=0)
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        for callback in self._tensorboards:
            # Keras creates its writers lazily and keeps them in `_writers` (train, validation).
            for writer in getattr(callback, "_writers", {}).values():
                writer.flush()

    def on_train_end(self, logs=None):
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        # A job that crashes or is killed keeps no end record: the dashboard shows its status as unknown.
        self._write(hparams_summary.session_end_pb(api_pb2.STATUS_SUCCESS))
        self._writer.close()


def session_callbacks(cfg: DictConfig, overrides: Iterable[str], model: keras.Model, callbacks: Sequence) -> list:
    """[HParamsSession] writing into the log dir of the job's TensorBoard callback, or [] if there is none."""
    tensorboards = [callback for callback in callbacks if isinstance(callback, keras.callbacks.TensorBoard)]
    if not tensorboards:
        return []
    overrides = list(overrides)
    chosen = [key for key, _ in _parse_overrides(overrides)]
    return [
        HParamsSession(tensorboards[0].log_dir, job_hparams(cfg, overrides),
                       metric_names(model, cfg.trainer.time_input_wait), tensorboards, chosen)
    ]
