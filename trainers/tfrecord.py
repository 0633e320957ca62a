"""data=tfrecord: tf.train.Example records in TFRecord files under data.path, parsed with the declared feature spec
(trainers/config/tfrecord_spec.py) and streamed with tf.data: files read in parallel (interleaved), records parsed
and images decoded in a parallel map.

Splits are whole files: data.files (training), data.val_files and data.test_files are globs relative to data.path,
as TFDS and the TF conversion scripts write them (`train-00000-of-00064`, `mnist-test.tfrecord-00000-of-00001`).
A split left null is held out of the training files: test_fraction, then val_fraction of them (at least one file
each), the same files every run.

Before a model is built (tfrecord_files.py) every file's record framing is read (which counts the examples) and the
first record of each file is parsed against the spec: a missing feature, a feature of another type or size, an image
that does not decode, a label outside 0..num_classes-1 are refused in one line naming the field, the file and what
the record holds.

Sharding: each stream carries the auto-shard policy FILE when it has at least as many files as there are input
workers (TF_CONFIG's workers; one on a single machine), DATA otherwise, so a multi-worker strategy gives each worker
its own files. On one machine MirroredStrategy splits each global batch among its replicas itself.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from .config.tfrecord_spec import feature_specs, image_size, num_classes, numeric_width
from .schema import ConfigError
from .splits import Streams
from .tfrecord_files import check_first_records, split_files

log = logging.getLogger(__name__)

MAX_CYCLE = 16  # files read at once (interleaved) per stream
STATISTICS_BATCH = 1024


# ------------------------------------------------------------------ tf.data
def _workers() -> int:
    """Input workers a multi-worker strategy would shard over: TF_CONFIG's chief and workers (1 without it)."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def shard_policy(num_files: int, num_workers: int):
    """FILE (each worker reads its own files) when there are at least as many files as workers, else DATA."""
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    return policy.FILE if num_files >= num_workers else policy.DATA


def _label_parser(data_cfg):
    import tensorflow as tf

    label = dict(data_cfg.label)
    dtype = tf.int64 if label["kind"] == "int" else tf.float32
    out = "int32" if str(data_cfg.task) == "multiclass" else "float32"
    return label["name"], tf.io.FixedLenFeature([], dtype), lambda value: tf.cast(value, out)


def _parser(data_cfg):
    """A function from one serialized record to (input, label): the decoded image resized to its size (float32,
    0..255), or the numeric features flattened and concatenated in declared order (float32)."""
    import tensorflow as tf

    specs = feature_specs(data_cfg)
    description = {}
    for name, spec in specs.items():
        if spec["kind"] == "image":
            description[name] = tf.io.FixedLenFeature([], tf.string)
        else:
            dtype = tf.float32 if spec["kind"] == "float" else tf.int64
            description[name] = tf.io.FixedLenFeature(list(spec.get("shape", [])), dtype)
    label_name, label_feature, label_cast = _label_parser(data_cfg)
    description[label_name] = label_feature

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, description)
        if len(specs) == 1 and next(iter(specs.values()))["kind"] == "image":
            name, spec = next(iter(specs.items()))
            channels = spec.get("channels", 3)
            image = tf.io.decode_image(parsed[name], channels=channels, expand_animations=False)
            image.set_shape([None, None, channels])
            x = tf.image.resize(image, image_size(spec))  # bilinear, as image_dataset_from_directory
        else:
            x = tf.concat([tf.reshape(tf.cast(parsed[name], tf.float32), [-1]) for name in specs], axis=0)
        return x, label_cast(parsed[label_name])

    return parse


def _records(paths: list[str]):
    import tensorflow as tf

    files = tf.data.Dataset.from_tensor_slices(paths)
    return files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(paths), MAX_CYCLE), block_length=1,
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def record_dataset(data_cfg, paths: list[str], count: int):
    """One split's examples, unbatched, with the auto-shard policy for its number of files."""
    import tensorflow as tf

    dataset = _records(paths).map(_parser(data_cfg), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = shard_policy(len(paths), _workers())
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).with_options(options)


def _statistics(data_cfg, paths: list[str], limit: int) -> dict:
    """DataSpec fields from the training split's first `limit` records: numeric features' mean and variance (the
    model's Normalization layer), a regression target's mean and standard deviation (its output layer). Parsed
    without decoding images."""
    import tensorflow as tf

    specs = feature_specs(data_cfg)
    numeric = [name for name, spec in specs.items() if spec["kind"] != "image"]
    regression = str(data_cfg.task) == "regression"
    if not numeric and not regression:
        return {}
    description = {name: tf.io.FixedLenFeature(list(specs[name].get("shape", [])),
                                               tf.float32 if specs[name]["kind"] == "float" else tf.int64)
                   for name in numeric}
    label_name, label_feature, _ = _label_parser(data_cfg)
    description[label_name] = label_feature
    rows, targets = [], []
    for batch in _records(paths).take(limit).batch(STATISTICS_BATCH).map(
            lambda records: tf.io.parse_example(records, description)).as_numpy_iterator():
        if numeric:
            rows.append(np.concatenate([batch[name].reshape(len(batch[name]), -1).astype("float64")
                                        for name in numeric], axis=1))
        targets.append(batch[label_name].astype("float64"))
    adapted = {}
    if numeric:
        x = np.concatenate(rows)
        adapted["feature_mean"], adapted["feature_variance"] = x.mean(axis=0).astype("float32"), \
            x.var(axis=0).astype("float32")
    if regression:
        y = np.concatenate(targets)
        adapted["target_mean"], adapted["target_std"] = float(y.mean()), float(y.std()) or 1.0
    return adapted


def load_tfrecord(data_cfg) -> Streams:
    files = split_files(data_cfg)
    check_first_records(data_cfg, files)
    sizes = {split: sum(files.counts[path] for path in paths)
             for split, paths in (("train", files.train), ("validation", files.validation), ("test", files.test))}
    keys = {"train": "files", "validation": "val_files", "test": "test_files"}
    for split, size in sizes.items():
        if not size:
            raise ConfigError(f"Invalid value for `data.{keys[split]}`: received {data_cfg.get(keys[split])!r}, whose "
                              f"files hold no records, so the {split} split is empty. Allowed: a glob matching files "
                              "with records.")
    num_train = min(sizes["train"], data_cfg.max_train_samples or sizes["train"])
    train = record_dataset(data_cfg, files.train, sizes["train"])
    if num_train < sizes["train"]:
        train = train.take(num_train)
    specs = feature_specs(data_cfg)
    image = next((spec for spec in specs.values() if spec["kind"] == "image"), None)
    if image:
        element_shape = (*image_size(image), image.get("channels", 3))
    else:
        element_shape = (sum(numeric_width(spec) for spec in specs.values()),)
    task = str(data_cfg.task)
    classes = num_classes(data_cfg)
    log.info("%s: %d training, %d validation, %d test records in %d/%d/%d file(s); inputs %s",
             files.root, num_train, sizes["validation"], sizes["test"], len(files.train), len(files.validation),
             len(files.test), element_shape)
    return Streams(
        train=train,
        validation=record_dataset(data_cfg, files.validation, sizes["validation"]),
        test=record_dataset(data_cfg, files.test, sizes["test"]),
        element_shape=element_shape,
        num_train_examples=num_train,
        num_outputs=classes if task == "multiclass" else 1,
        class_names=[str(index) for index in range(classes)] if classes else [],
        rescale=1.0 / 255.0 if image else None,
        adapted=_statistics(data_cfg, files.train, num_train),
    )
