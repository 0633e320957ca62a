"""TFRecord files written by the tests from real data that ships with scikit-learn: the 8x8 digits as PNG-encoded
images, the wine table as 13 float features, each record with an int64 label (and, for the sharding test, a float
`index` feature naming the example)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _feature(kind: str, values):
    import tensorflow as tf

    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value) for value in values]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value) for value in values]))


def write_shards(folder: Path, prefix: str, examples: list[dict], num_shards: int) -> list[Path]:
    """Write `examples` (feature name -> (kind, values)) round-robin into `num_shards` files named as TFDS names
    them: PREFIX.tfrecord-00000-of-00004."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}.tfrecord-{shard:05d}-of-{num_shards:05d}" for shard in range(num_shards)]
    writers = [tf.io.TFRecordWriter(str(path)) for path in paths]
    for position, example in enumerate(examples):
        features = {name: _feature(kind, values) for name, (kind, values) in example.items()}
        writers[position % num_shards].write(
            tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    for writer in writers:
        writer.close()
    return paths


def digits_examples() -> list[dict]:
    """The 1,797 scikit-learn digits as grey PNGs (0..16 scaled to 0..240) with their digit, shuffled once."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    examples = []
    for index in order:
        pixels = (digits.images[index] * 15).astype("uint8")[..., np.newaxis]
        png = tf.io.encode_png(pixels).numpy()
        examples.append({"image": ("bytes", [png]), "label": ("int", [digits.target[index]]),
                         "index": ("float", [index])})
    return examples


def wine_examples() -> list[dict]:
    """The 178 wines' 13 measurements (float) and cultivar (0..2), shuffled once."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    order = np.random.default_rng(1).permutation(len(wine.target))
    return [{"measurements": ("float", wine.data[index]), "cultivar": ("int", [wine.target[index]])}
            for index in order]


def wine_alcohol_examples() -> list[dict]:
    """The wines' alcohol (a float label, to predict) from their 12 other measurements, shuffled once."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    order = np.random.default_rng(2).permutation(len(wine.target))
    return [{"measurements": ("float", wine.data[index, 1:]), "alcohol": ("float", [wine.data[index, 0]])}
            for index in order]


def write_digits(folder: Path, train_shards: int = 4, test_shards: int = 2) -> Path:
    """digits-train.tfrecord-* (the first 1,437 digits) and digits-test.tfrecord-* (the last 360)."""
    examples = digits_examples()
    write_shards(folder, "digits-train", examples[:1437], train_shards)
    write_shards(folder, "digits-test", examples[1437:], test_shards)
    return folder
