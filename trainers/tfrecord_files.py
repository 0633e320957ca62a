"""data=tfrecord's files before training: the globs matched and split into whole-file parts, every file's record
framing read (which counts the examples), and the first record of each file parsed against the declared spec,
each problem refused in one line naming the field, the file and what the record holds."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config.tfrecord_spec import GLOB_FIELDS, feature_specs, matching, num_classes, numeric_width
from .schema import ConfigError
from .splits import SPLIT_SEED, resolve_data_path

HEADER_BYTES = 12  # a record: uint64 length, uint32 masked crc of the length, the data, uint32 masked crc of the data
FOOTER_BYTES = 4
MAX_LISTED = 8  # file names listed in one message


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
