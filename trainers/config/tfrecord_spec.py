"""data=tfrecord's declared feature spec and file globs, checked without TensorFlow (the launcher validates every
job of a sweep before any compute is spent; cluster/results/inputs.py matches the same globs against a bucket).

    data.features: {image: {kind: image, channels: 3, size: [64, 64]}}      one encoded image (png, jpeg, gif, bmp)
    data.features: {x: {kind: float, shape: [13]}, n: {kind: int}}          numbers, concatenated in this order
    data.label: {name: label, kind: int, num_classes: 10}                    a class id (kind float: regression)

Globs are relative to data.path and matched one path part at a time: `*`, `?` and `[...]` stay within a folder,
`**` spans any number of folders (as pathlib's glob).
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Optional

from omegaconf import OmegaConf

from .fields import refuse

NAME = "tfrecord"
FEATURE_KINDS = ("image", "float", "int")
LABEL_KINDS = ("int", "float")
GLOB_FIELDS = ("files", "val_files", "test_files")
# data=tfrecord's own settings and their defaults: another data set refuses a value other than the default.
TFRECORD_ONLY = {"files": "*.tfrecord*", "val_files": None, "test_files": None, "features": None, "label": None}
IMAGE_EXAMPLE = "{image:{kind:image,channels:3,size:[64,64]}}"
NUMERIC_EXAMPLE = "{features:{kind:float,shape:[13]}}"
LABEL_EXAMPLE = "{name:label,kind:int,num_classes:10}"


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def image_size(spec: dict) -> tuple[int, int]:
    """(height, width) of an image feature: `size` is one side or [height, width]; 64 when not given."""
    size = spec.get("size", 64)
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def numeric_width(spec: dict) -> int:
    """How many numbers a numeric feature holds (the product of its shape; a scalar is 1)."""
    width = 1
    for side in spec.get("shape", []):
        width *= int(side)
    return width


def feature_specs(data) -> dict[str, dict]:
    """data.features as plain dicts, in declared order (the order numeric features are concatenated in)."""
    return {str(name): dict(_plain(spec)) for name, spec in _plain(data.features).items()}


def check_tfrecord(data) -> None:
    """Refuse a feature spec, label or glob data=tfrecord cannot read, naming the field; refuse data.features,
    data.label and the globs on other data sets, which do not read them."""
    if data.name != NAME:
        for key, default in TFRECORD_ONLY.items():
            value = _plain(data.get(key, default))
            if value != default:
                shown = "null" if default is None else repr(default)
                refuse(f"data.{key}", value, f"{shown} with data={data.name}: only data=tfrecord reads it", str(shown))
        return
    for key in GLOB_FIELDS:
        value = data.get(key)
        if value is None and key != "files":
            continue
        if not isinstance(value, str) or not value.strip() or value.startswith("/") or "\\" in value:
            refuse(f"data.{key}", value, "a glob relative to data.path, e.g. 'train-*.tfrecord' or "
                   "'**/train*.tfrecord'" + ("" if key == "files" else ", or null to hold out whole training files"),
                   "'train-*.tfrecord'" if key == "files" else "null")
    _check_features(data)
    _check_label(data)


def _check_features(data) -> None:
    features = _plain(data.get("features"))
    if not isinstance(features, dict) or not features:
        refuse("data.features", features, "a mapping from each record feature the model reads to its spec: one "
               f"image {IMAGE_EXAMPLE}, or numbers {NUMERIC_EXAMPLE}", IMAGE_EXAMPLE)
    images = []
    for name, spec in features.items():
        key = f"data.features.{name}"
        if not isinstance(spec, dict) or spec.get("kind") not in FEATURE_KINDS:
            refuse(key, spec, "a spec with kind image (an encoded image: channels, size) or float/int (numbers: "
                   "shape, e.g. [13]; a scalar without it)", "{kind:float,shape:[13]}")
        kind = spec["kind"]
        allowed_keys = {"kind", "channels", "size"} if kind == "image" else {"kind", "shape"}
        unknown = sorted(set(spec) - allowed_keys)
        if unknown:
            refuse(f"{key}.{unknown[0]}", spec[unknown[0]], f"only {', '.join(sorted(allowed_keys))} in a "
                   f"kind={kind} spec", IMAGE_EXAMPLE if kind == "image" else "{kind:float,shape:[13]}")
        if kind == "image":
            images.append(name)
            if spec.get("channels", 3) not in (1, 3, 4):
                refuse(f"{key}.channels", spec.get("channels"), "1 (grey), 3 (RGB) or 4 (RGBA)", "3")
            size = spec.get("size", 64)
            if not (_positive_int(size) or (isinstance(size, list) and len(size) == 2
                                            and all(_positive_int(side) for side in size))):
                refuse(f"{key}.size", size, "the side the images are resized to, or [height, width]", "[64,64]")
        else:
            shape = spec.get("shape", [])
            if not isinstance(shape, list) or not all(_positive_int(side) for side in shape):
                refuse(f"{key}.shape", shape, "the feature's shape as a list of positive integers ([] or no shape: "
                       "one number per record)", "[13]")
    if images and len(features) > 1:
        refuse("data.features", features, f"one image feature alone ({images[0]!r}), or numeric features only",
               IMAGE_EXAMPLE)
    wanted = "image" if images else "tabular"
    if data.input_kind != wanted:
        refuse("data.input_kind", str(data.input_kind), f"{wanted}: data.features declares "
               f"{'an image' if images else 'numeric features'}", wanted)


def _check_label(data) -> None:
    label = _plain(data.get("label"))
    if not isinstance(label, dict) or not isinstance(label.get("name"), str) or label.get("kind") not in LABEL_KINDS:
        refuse("data.label", label, "{name: the record's label feature, kind: int (class ids 0..num_classes-1) or "
               "float (regression), num_classes: for int}", LABEL_EXAMPLE)
    unknown = sorted(set(label) - {"name", "kind", "num_classes"})
    if unknown:
        refuse(f"data.label.{unknown[0]}", label[unknown[0]], "only name, kind and num_classes", LABEL_EXAMPLE)
    if label["name"] in _plain(data.features):
        refuse("data.label.name", label["name"], "a record feature not in data.features (the model's inputs)", "label")
    task, kind, classes = str(data.task), label["kind"], label.get("num_classes")
    if kind == "float":
        if task != "regression":
            refuse("data.label.kind", kind, f"int with data.task={task} (class ids), or set data.task=regression",
                   "int")
        if classes is not None:
            refuse("data.label.num_classes", classes, "null with kind=float (regression)", "null")
        return
    if task == "regression":
        refuse("data.label.kind", kind, "float with data.task=regression", "float")
    if task == "multilabel":
        refuse("data.task", task, "multiclass or binary (data=tfrecord reads one label per record)", "multiclass")
    if task == "multiclass" and not (_positive_int(classes) and classes >= 2):
        refuse("data.label.num_classes", classes, "the number of classes (ids 0..num_classes-1), at least 2", "10")
    if task == "binary" and classes not in (None, 2):
        refuse("data.label.num_classes", classes, "2 or null with data.task=binary (labels 0 and 1)", "2")


def num_classes(data) -> Optional[int]:
    label = _plain(data.label)
    return 2 if str(data.task) == "binary" else label.get("num_classes")


# ------------------------------------------------------------------ globs
def _match_parts(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[skip:], pattern[1:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_parts(parts[1:], pattern[1:])


def matches(relative: str, pattern: str) -> bool:
    """Whether a file's path relative to data.path (with /) matches a data.files glob."""
    return _match_parts(relative.split("/"), [part for part in pattern.split("/") if part not in ("", ".")])


def matching(relatives: Iterable[str], pattern: str) -> list[str]:
    """The relative paths a glob matches, sorted (the same order on every machine)."""
    return sorted(relative for relative in relatives if matches(relative, pattern))
