"""Data sets kept as one sub-folder per class (photos/cat/*.jpg, reviews/pos/*.txt): listing, checking and
splitting the files, and the image loader that streams them from disk with tf.data.

Every problem a user can fix (missing folder, empty class, unreadable image) is reported here, before a
model is built, naming the folder or file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .schema import ConfigError
from .splits import SPLIT_SEED, Streams, resolve_data_path

log = logging.getLogger(__name__)

# What tf.io.decode_image reads (the same list keras.utils.image_dataset_from_directory accepts).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEXT_EXTENSIONS = (".txt",)


@dataclass
class FileSplits:
    class_names: list[str]
    # (file path, class index) pairs per split.
    train: list[tuple[str, int]]
    validation: list[tuple[str, int]]
    test: list[tuple[str, int]]


def _class_files(
    root: Path, extensions: Sequence[str], class_names: Optional[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    folders = sorted(child.name for child in root.iterdir() if child.is_dir() and not child.name.startswith("."))
    if class_names is None:
        if len(folders) < 2:
            raise ConfigError(
                f"data.path: {root} has {len(folders)} class sub-folder(s) ({', '.join(folders) or 'none'}); "
                f"expected one sub-folder per class, at least two, e.g. {root}/cat/1{extensions[0]} and "
                f"{root}/dog/1{extensions[0]}."
            )
        class_names = folders
    else:
        missing = [name for name in class_names if name not in folders]
        if missing:
            raise ConfigError(
                f"data.class_names: no sub-folder {', '.join(missing)} in {root}; "
                f"it has {', '.join(folders) or 'none'}."
            )
    files_per_class = []
    for name in class_names:
        folder = root / name
        # Nested folders count as the class too; the sort makes the listing the same on every machine.
        files = sorted(str(path) for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in extensions)
        if not files:
            raise ConfigError(
                f"Empty class folder {folder}: no {'/'.join(extensions)} files in it. Add examples of class "
                f"{name!r} or remove the folder (or list the classes to use in data.class_names)."
            )
        files_per_class.append(files)
    return list(class_names), files_per_class


def _cut(
    files: list[str], fraction: float, rng: np.random.Generator, folder: str, split: str
) -> tuple[list[str], list[str]]:
    """Hold out `fraction` of one class's files, at least one, so every class is in every split."""
    if len(files) < 2:
        raise ConfigError(
            f"Class folder {folder} has too few files: {len(files)} left when holding out the {split} split, "
            "and every class needs at least one file each for training, validation and test. Add files."
        )
    order = rng.permutation(len(files))
    held_count = min(len(files) - 1, max(1, int(round(len(files) * fraction))))
    held = sorted(files[i] for i in order[:held_count])
    kept = sorted(files[i] for i in order[held_count:])
    return kept, held


def split_class_folders(data_cfg, extensions: Sequence[str], example_path: str) -> FileSplits:
    """List and split a folder of class sub-folders per class (stratified, the same every run).

    A folder holding train/ and test/ (each with the class sub-folders, as the Stanford IMDB folder does)
    keeps that test split; otherwise test_fraction of each class is held out. Validation is
    val_fraction of each class's training files.
    """
    root = resolve_data_path(
        data_cfg.path, data_cfg.name, "a folder with one sub-folder of files per class", f"data.path={example_path}"
    )
    if not root.is_dir():
        raise ConfigError(
            f"data.path: {root} is a file; data={data_cfg.name} reads a folder with one sub-folder per class."
        )
    rng = np.random.default_rng(SPLIT_SEED)
    given_split = (root / "train").is_dir() and (root / "test").is_dir()
    class_names = data_cfg.class_names
    if given_split:
        class_names, train_files = _class_files(root / "train", extensions, class_names)
        _, test_files = _class_files(root / "test", extensions, class_names)
    else:
        class_names, all_files = _class_files(root, extensions, class_names)
        train_files, test_files = [], []
        for name, files in zip(class_names, all_files):
            kept, held = _cut(files, data_cfg.test_fraction, rng, str(root / name), "test")
            train_files.append(kept)
            test_files.append(held)
    splits = FileSplits(class_names, [], [], [])
    for label, (name, train, test) in enumerate(zip(class_names, train_files, test_files)):
        kept, held = _cut(train, data_cfg.val_fraction, rng, str(root / name), "validation")
        splits.train += [(path, label) for path in kept]
        splits.validation += [(path, label) for path in held]
        splits.test += [(path, label) for path in test]
    # One shuffle of the file list: the pipeline's bounded shuffle buffer then mixes classes from the start.
    splits.train = [splits.train[i] for i in rng.permutation(len(splits.train))]
    if data_cfg.max_train_samples is not None:
        splits.train = splits.train[: data_cfg.max_train_samples]
    log.info(
        "%s: classes %s; %d training, %d validation, %d test files",
        root, class_names, len(splits.train), len(splits.validation), len(splits.test),
    )
    return splits


def check_labels_fit_task(data_cfg, class_names: Sequence[str]) -> tuple[int, str]:
    """Number of model outputs and label dtype for one-class-per-example folder data."""
    if data_cfg.task == "multiclass":
        return len(class_names), "int32"
    if data_cfg.task == "binary":
        if len(class_names) != 2:
            raise ConfigError(
                f"data.task=binary needs exactly 2 class folders; {data_cfg.path} has {len(class_names)} "
                f"({', '.join(class_names)}). Use data.task=multiclass."
            )
        return 1, "float32"
    raise ConfigError(
        f"data.task={data_cfg.task} does not fit data={data_cfg.name}: each file has one class (its folder). "
        "Use data.task=multiclass, or binary for two classes."
    )


# ------------------------------------------------------------------ images
def _check_images_readable(paths: Sequence[str]) -> None:
    """Open every image before training: one bad file would otherwise stop training mid-epoch."""
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()  # reads the whole file's structure (PNG checksums too) without decoding pixels
        except Exception as error:  # noqa: BLE001 - PIL raises many types; all mean "cannot be read"
            raise ConfigError(
                f"Unreadable image {path}: {error}. Remove or replace the file (readable formats: "
                f"{', '.join(IMAGE_EXTENSIONS)})."
            ) from error


def _image_dataset(pairs: list[tuple[str, int]], image_size: int, channels: int, label_dtype: str):
    import tensorflow as tf

    paths = [path for path, _ in pairs]
    labels = np.array([label for _, label in pairs], dtype=label_dtype)

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        # float32 pixels in 0..255 at a fixed size (bilinear, as keras.utils.image_dataset_from_directory).
        image = tf.image.resize(image, (image_size, image_size))
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    return dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_image_folder(data_cfg) -> Streams:
    files = split_class_folders(data_cfg, IMAGE_EXTENSIONS, "./photos")
    num_outputs, label_dtype = check_labels_fit_task(data_cfg, files.class_names)
    _check_images_readable([path for split in (files.train, files.validation, files.test) for path, _ in split])
    size, channels = data_cfg.image_size, data_cfg.channels
    return Streams(
        train=_image_dataset(files.train, size, channels, label_dtype),
        validation=_image_dataset(files.validation, size, channels, label_dtype),
        test=_image_dataset(files.test, size, channels, label_dtype),
        element_shape=(size, size, channels),
        num_train_examples=len(files.train),
        num_outputs=num_outputs,
        class_names=files.class_names,
        rescale=1.0 / 255.0,
    )
