"""Make an MNIST-shaped .npz (x_train 60,000x28x28 uint8, y_train, x_test 10,000x28x28, y_test) offline.

keras.datasets.mnist downloads from the internet, which the benchmark machines cannot reach. This builds a
stand-in of exactly MNIST's shapes and dtypes from scikit-learn's real 8x8 handwritten digits (which ship
with the package): each digit is upscaled to 20x20 (bilinear), placed in a 28x28 frame the way MNIST centres
its digits in a 20x20 box, shifted by up to 2 pixels either way, and given a little Gaussian noise. The
training images come from the first 1,500 scikit-learn digits and the test images from the other 297,
so no test image is a shifted copy of a training digit.

    python -m bench.make_data bench/.data/mnist_like.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NUM_TRAIN, NUM_TEST = 60_000, 10_000
FIRST_TEST_DIGIT = 1_500


def _upscaled_digits() -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") / 16.0  # 0..1
    big = zoom(images, (1, 2.5, 2.5), order=1)  # 1797x20x20
    return np.clip(big, 0.0, 1.0), digits.target.astype("uint8")


def _sample(images, labels, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    picks = rng.integers(0, len(images), size=count)
    shifts = rng.integers(-2, 3, size=(count, 2))
    frames = np.zeros((count, 28, 28), dtype="float32")
    for index, (pick, (down, right)) in enumerate(zip(picks, shifts)):
        top, left = 4 + down, 4 + right
        frames[index, top : top + 20, left : left + 20] = images[pick]
    frames += rng.normal(0.0, 0.05, size=frames.shape).astype("float32")
    return (np.clip(frames, 0.0, 1.0) * 255).round().astype("uint8"), labels[picks]


def make(path: str | Path, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0) -> Path:
    """Write the file (once: an existing file with the right shapes is kept) and return its path."""
    path = Path(path)
    if path.is_file():
        with np.load(path) as npz:
            if npz["x_train"].shape == (num_train, 28, 28) and npz["x_test"].shape == (num_test, 28, 28):
                return path
    rng = np.random.default_rng(seed)
    images, labels = _upscaled_digits()
    x_train, y_train = _sample(images[:FIRST_TEST_DIGIT], labels[:FIRST_TEST_DIGIT], num_train, rng)
    x_test, y_test = _sample(images[FIRST_TEST_DIGIT:], labels[FIRST_TEST_DIGIT:], num_test, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    partial.replace(path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.make_data", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(Path(__file__).parent / ".data" / "mnist_like.npz"))
    parser.add_argument("--num-train", type=int, default=NUM_TRAIN)
    parser.add_argument("--num-test", type=int, default=NUM_TEST)
    args = parser.parse_args()
    print(make(args.path, args.num_train, args.num_test))
