"""Raw-text data sets (class folders of .txt files, the IMDB reviews as text) and the vocabulary the
model's TextVectorization layer is built with. The vocabulary comes from the training split only, so
validation and test words the model never trained on stay out-of-vocabulary, as they would in use."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .class_folders import TEXT_EXTENSIONS, check_labels_fit_task, split_class_folders
from .schema import ConfigError
from .splits import Splits

log = logging.getLogger(__name__)

IMDB_TEXT_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


def _read_texts(pairs: list[tuple[str, int]], label_dtype: str) -> tuple[np.ndarray, np.ndarray]:
    texts = []
    for path, _ in pairs:
        try:
            texts.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"Unreadable text file {path}: {error}. Save it as UTF-8 or remove it.") from error
    # dtype=object: a fixed-width unicode array would pad every review to the longest one.
    return np.array(texts, dtype=object), np.array([label for _, label in pairs], dtype=label_dtype)


def _load_folder(data_cfg, example_path: str) -> Splits:
    files = split_class_folders(data_cfg, TEXT_EXTENSIONS, example_path)
    _, label_dtype = check_labels_fit_task(data_cfg, files.class_names)
    x_train, y_train = _read_texts(files.train, label_dtype)
    x_val, y_val = _read_texts(files.validation, label_dtype)
    x_test, y_test = _read_texts(files.test, label_dtype)
    return Splits(x_train, y_train, x_test, y_test, x_val, y_val)


def load_text_folder(data_cfg) -> Splits:
    return _load_folder(data_cfg, "./reviews")


def load_imdb_text(data_cfg) -> Splits:
    """The Stanford aclImdb folder: data.path when given, else downloaded once to ~/.keras/datasets."""
    if not data_cfg.path:
        import keras

        try:
            archive = keras.utils.get_file("aclImdb_v1.tar.gz", IMDB_TEXT_URL, extract=True)
        except Exception as error:  # no network, proxy, partial file...
            raise ConfigError(
                f"data=imdb_text: downloading {IMDB_TEXT_URL} failed ({error}). Without internet access, "
                "unpack that archive elsewhere and set data.path to its aclImdb folder."
            ) from error
        found = sorted(Path(archive).parent.rglob("aclImdb"))
        if not found:
            raise ConfigError(f"data=imdb_text: no aclImdb folder next to {archive}; set data.path to one.")
        data_cfg = data_cfg.copy()
        data_cfg.path = str(found[0])
    return _load_folder(data_cfg, "./aclImdb")


def build_vocabulary(train_texts: np.ndarray, max_tokens: int) -> list[str]:
    """The `max_tokens` most frequent training words (with the padding and out-of-vocabulary entries
    first), as a list a TextVectorization layer inside the model is built with."""
    import keras
    import tensorflow as tf

    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(1024))
    vocabulary = [str(word) for word in vectorizer.get_vocabulary()]
    log.info("Vocabulary: %d words from %d training texts", len(vocabulary), len(train_texts))
    return vocabulary
