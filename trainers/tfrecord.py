"""data=tfrecord: tf.train.Example records in TFRecord files under data.path, parsed with the declared feature spec
(trainers/config/tfrecord_spec.py) and streamed with tf.data: files read in parallel (interleaved), records parsed
and images decoded in a parallel map.

Splits are whole files: data.files (training), data.val_files and data.test_files are globs relative to data.path,
as TFDS and the TF conversion scripts write them (`train-00000-of-00064`, `mnist-test.tfrecord-00000-of-00001`).
A split left null is held out of the training files: test_fraction, then val_fraction of them (at least one file
each), the same files every run.

Before a model is built every file's record framing is read (which counts the examples) and the first record of
each file is parsed against the spec: a missing feature, a feature of another type or size, an image that does not
decode, a label outside 0..num_classes-1 are refused in one line naming the field, the file and what the record
holds.

Sharding: each stream carries the auto-shard policy FILE when it has at least as many files as there are input
workers (TF_CONFIG's workers; one on a single machine), DATA otherwise, so a multi-worker strategy gives each worker
its own files. On one machine MirroredStrategy splits each global batch among its replicas itself.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config.tfrecord_spec import GLOB_FIELDS, feature_specs, image_size, matching, num_classes, numeric_width
from .schema import ConfigError
from .splits import SPLIT_SEED, Streams, resolve_data_path

log = logging.getLogger(__name__)

HEADER_BYTES = 12  # a record: uint64 length, uint32 masked crc of the length, the data, uint32 masked crc of the data
FOOTER_BYTES = 4
MAX_LISTED = 8  # file names listed in one message
MAX_CYCLE = 16  # files read at once (interleaved) per stream
STATISTICS_BATCH = 1024


@dataclass
class RecordFiles:
    root: Path
    train: list[str]
    validation: list[str]
    test: list[str]
    counts: dict  # absolute path -> number of records


# ------------------------------------------------------------------ files and splits
def _listed(names: list[str]) -> str:
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more if names else "none"


def split_files(data_cfg) -> RecordFiles:
    """The TFRecord files of each split (absolute paths, sorted), refusing a glob that matches nothing, a file in
    two splits and too few files to hold out a null split from."""
    root = resolve_data_path(data_cfg.path, data_cfg.name, "a folder holding the TFRecord files data.files matches",
                             "data.path=./records")
    if not root.is_dir():
        raise ConfigError(f"data.path: {root} is a file; data=tfrecord reads a folder and picks its files with "
                          f"data.files (a glob such as '{root.name}').")
    relatives = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    chosen = {}
    for key in GLOB_FIELDS:
        pattern = data_cfg.get(key)
        if pattern is None:
            continue
        found = matching(relatives, pattern)
        if not found:
            raise ConfigError(f"Invalid value for `data.{key}`: received {pattern!r}, which matches no file in {root}. "
                              f"Allowed: a glob relative to data.path that matches TFRecord files; the folder holds "
                              f"{_listed(relatives)}.")
        chosen[key] = found
    for first, second in (("files", "val_files"), ("files", "test_files"), ("val_files", "test_files")):
        both = sorted(set(chosen.get(first, ())) & set(chosen.get(second, ())))
        if both:
            raise ConfigError(f"Invalid value for `data.{second}`: received {data_cfg.get(second)!r}, which matches "
                              f"{_listed(both)}, also matched by data.{first}={data_cfg.get(first)!r}. Allowed: globs "
                              "matching separate files for each split, e.g. data.files='train-*' "
                              "data.test_files='test-*'.")
    train = chosen["files"]
    rng = np.random.default_rng(SPLIT_SEED)
    held = {}
    for key, fraction, split in (("test_files", data_cfg.test_fraction, "test"),
                                 ("val_files", data_cfg.val_fraction, "validation")):
        if key in chosen:
            continue
        if len(train) < 2:
            raise ConfigError(f"Invalid value for `data.{key}`: received None, which holds out whole training files "
                              f"for the {split} split, but data.files={data_cfg.files!r} leaves {len(train)} file "
                              f"({_listed(train)}). Allowed: a glob of the {split} files, e.g. "
                              f"`data.{key}='{split}-*'`, or write the training data in more files (shards).")
        order = rng.permutation(len(train))
        count = min(len(train) - 1, max(1, int(round(len(train) * fraction))))
        held[key] = sorted(train[i] for i in order[:count])
        train = sorted(train[i] for i in order[count:])
    splits = {**chosen, **held, "files": train}
    absolute = {key: [str(root / relative) for relative in splits[key]] for key in GLOB_FIELDS}
    counts = {path: _count_records(path) for paths in absolute.values() for path in paths}
    return RecordFiles(root, absolute["files"], absolute["val_files"], absolute["test_files"], counts)


def _count_records(path: str) -> int:
    """Records in one TFRecord file, from its framing alone (lengths, not data); refuses a file whose framing does
    not hold: not a TFRecord file (or a compressed one), or cut short."""
    size = os.path.getsize(path)
    count, position = 0, 0
    with open(path, "rb") as file:
        while position < size:
            header = file.read(HEADER_BYTES)
            length = struct.unpack("<Q", header[:8])[0] if len(header) == HEADER_BYTES else None
            end = position + HEADER_BYTES + (length or 0) + FOOTER_BYTES
            if length is None or end > size:
                raise ConfigError(
                    f"Invalid value for `data.files`: received {path}, whose record {count + 1} (at byte {position}) "
                    f"{'is cut short' if count else 'does not read as TFRecord framing'}. Allowed: uncompressed "
                    "TFRecord files (tf.io.TFRecordWriter without compression); rewrite or remove the file.")
            file.seek(end)
            position, count = end, count + 1
    return count


# ------------------------------------------------------------------ the spec against the records
def _first_record(path: str) -> bytes:
    with open(path, "rb") as file:
        length = struct.unpack("<Q", file.read(HEADER_BYTES)[:8])[0]
        return file.read(length)


def _held(feature) -> str:
    kind = feature.WhichOneof("kind")
    if kind is None:
        return "no values"
    values = getattr(feature, kind).value
    return f"{kind} of {len(values)} value(s)"


LIST_OF = {"image": "bytes_list", "float": "float_list", "int": "int64_list"}


def check_first_records(data_cfg, files: RecordFiles) -> None:
    """Parse the first record of every file against data.features and data.label, refusing in one line what a
    parse in the middle of training would fail on."""
    import tensorflow as tf

    specs = feature_specs(data_cfg)
    label = dict(data_cfg.label)
    for path in [*files.train, *files.validation, *files.test]:
        if not files.counts[path]:
            continue
        try:
            example = tf.train.Example.FromString(_first_record(path))
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise ConfigError(f"Invalid value for `data.files`: received {path}, whose first record is not a "
                              f"tf.train.Example ({type(error).__name__}: {error}). Allowed: files of serialized "
                              "tf.train.Example records (tf.io.TFRecordWriter(path).write(example.SerializeToString())"
                              ").") from None
        present = example.features.feature
        holds = ", ".join(f"{name} ({_held(present[name])})" for name in sorted(present)) or "no features"
        wanted = {**{f"data.features.{name}": (name, spec) for name, spec in specs.items()},
                  "data.label": (label["name"], {"kind": label["kind"]})}
        for key, (name, spec) in wanted.items():
            if name not in present:
                raise ConfigError(f"Invalid value for `{key}`: received {name!r}, a feature not in the records: the "
                                  f"first record of {path} holds {holds}. Allowed: one of those names.")
            feature, kind = present[name], spec["kind"]
            held = feature.WhichOneof("kind")
            values = getattr(feature, held).value if held else []
            width = 1 if kind == "image" or key == "data.label" else numeric_width(spec)
            if held != LIST_OF[kind] or len(values) != width:
                raise ConfigError(f"Invalid value for `{key}`: received kind {kind}"
                                  f"{'' if width == 1 else f' of {width} values'} for {name!r}, but the first record "
                                  f"of {path} holds it as {_held(feature)}. Allowed: the kind and shape the records "
                                  f"hold (bytes_list: image, float_list: float, int64_list: int).")
            if kind == "image":
                _check_image(key, name, values[0], spec, path)
        classes = num_classes(data_cfg)
        if label["kind"] == "int" and classes and not 0 <= present[label["name"]].int64_list.value[0] < classes:
            value = present[label["name"]].int64_list.value[0]
            raise ConfigError(f"Invalid value for `data.label.num_classes`: received {classes}, but the first record "
                              f"of {path} has {label['name']}={value}. Allowed: more classes than the largest class "
                              f"id (ids run from 0 to num_classes-1).")


def _check_image(key: str, name: str, encoded: bytes, spec: dict, path: str) -> None:
    import tensorflow as tf

    try:
        tf.io.decode_image(encoded, channels=spec.get("channels", 3), expand_animations=False)
    except Exception as error:  # noqa: BLE001 - InvalidArgumentError and friends: not an image TF decodes
        message = str(error).strip().splitlines()[0][:200]
        raise ConfigError(f"Invalid value for `{key}`: received kind image for {name!r}, but the first record of "
                          f"{path} holds {len(encoded)} bytes that tf.io.decode_image cannot decode ({message}). "
                          "Allowed: encoded PNG, JPEG, GIF or BMP bytes (tf.io.encode_png); raw pixel arrays are "
                          "kind float or int with a shape.") from None


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
