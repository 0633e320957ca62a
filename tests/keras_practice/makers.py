"""Small data sets written by the tests themselves (no downloads): class folders of PNGs and of .txt
files, and CSV tables. Each is learnable, so a short run shows the data really reached the model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def write_image_folder(root: Path, per_class: int = 12, size: int = 16, classes=("dark", "light")) -> Path:
    """Class folders of RGB PNGs whose brightness gives the class away."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for number in range(per_class):
            base = 40 + 170 * index / max(1, len(classes) - 1)
            pixels = np.clip(base + rng.normal(0, 20, size=(size, size, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{number:03d}.png")
    return root


POSITIVE = ["great", "wonderful", "loved", "excellent", "superb", "delightful"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dreadful", "dull"]
FILLER = ["the", "film", "was", "and", "plot", "acting", "a", "story", "it", "really"]


def review(rng: np.random.Generator, positive: bool) -> str:
    words = list(rng.choice(FILLER, size=8)) + list(rng.choice(POSITIVE if positive else NEGATIVE, size=3))
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def write_text_folder(root: Path, per_class: int = 40) -> Path:
    rng = np.random.default_rng(1)
    for name, positive in (("neg", False), ("pos", True)):
        folder = root / name
        folder.mkdir(parents=True)
        for number in range(per_class):
            (folder / f"{number:03d}.txt").write_text(review(rng, positive), encoding="utf-8")
    return root


def write_houses_csv(path: Path, rows: int = 300) -> Path:
    """price = 3000 * area + 20000 * rooms + noise; `kind` is the price band, `city` a text column."""
    rng = np.random.default_rng(2)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["area", "rooms", "age", "price", "kind"])
        for _ in range(rows):
            area, rooms, age = rng.uniform(40, 200), int(rng.integers(1, 6)), rng.uniform(0, 80)
            price = 3000 * area + 20000 * rooms - 500 * age + rng.normal(0, 5000)
            kind = "cheap" if price < 300_000 else ("mid" if price < 500_000 else "dear")
            writer.writerow([f"{area:.1f}", rooms, f"{age:.1f}", f"{price:.0f}", kind])
    return path
