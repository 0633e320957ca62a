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


def write_seasonal_csv(path: Path, rows: int = 1200, period: int = 24, noise: float = 1.0) -> Path:
    """Hourly readings: `temperature` is a daily cycle (amplitude 10) plus Gaussian noise, `humidity` falls
    as it rises. Six hours ahead the cycle has moved a quarter turn, so repeating the last value (the naive
    forecast) is far off while a model that reads the cycle's phase from the window is not."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(3)
    start = datetime(2024, 1, 1)
    phase = 2 * np.pi * np.arange(rows) / period
    temperature = 12 + 10 * np.sin(phase) + rng.normal(0, noise, rows)
    humidity = 70 - 2 * temperature + rng.normal(0, noise, rows)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["time", "temperature", "humidity"])
        for row in range(rows):
            writer.writerow([(start + timedelta(hours=row)).isoformat(sep=" "), f"{temperature[row]:.3f}",
                             f"{humidity[row]:.3f}"])
    return path


def write_cars_csv(path: Path, rows: int = 400) -> Path:
    """price = 150 * power - 2000 * age + a premium per `brand` (a text column, so a category) + noise; without
    the brand a model cannot get within the premiums' spread. `colour` is a text column that does not matter;
    `dealer` has 40 names, more than the one-hot limit, so it is embedded."""
    rng = np.random.default_rng(4)
    premiums = {"audi": 12_000, "bmw": 15_000, "fiat": -6_000, "kia": -3_000, "volvo": 6_000}
    brands, colours = list(premiums), ["red", "blue", "white", "black"]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["power", "age", "brand", "colour", "dealer", "price"])
        for _ in range(rows):
            power, age, brand = rng.uniform(60, 250), rng.uniform(0, 15), str(rng.choice(brands))
            price = 20_000 + 150 * power - 2000 * age + premiums[brand] + rng.normal(0, 1000)
            writer.writerow([f"{power:.0f}", f"{age:.1f}", brand, str(rng.choice(colours)),
                             f"dealer{rng.integers(40):02d}", f"{price:.0f}"])
    return path


def write_reuters_npz(path: Path, newswires: int = 400, topics=(3, 10, 19, 45)) -> Path:
    """reuters.npz as keras.datasets downloads it: `x` ragged word ranks (1 = most frequent), `y` topic
    ids (46 topics, 0..45). Each newswire has 12 common words and 3 words of its topic's own."""
    rng = np.random.default_rng(5)
    sequences, labels = np.empty(newswires, dtype=object), np.empty(newswires, dtype="int64")
    for index in range(newswires):
        topic = int(rng.choice(topics))
        words = list(rng.integers(4, 300, size=12)) + list(1000 + 10 * topic + rng.integers(0, 10, size=3))
        rng.shuffle(words)
        sequences[index], labels[index] = [int(word) for word in words], topic
    np.savez(path, x=sequences, y=labels)
    return path


def write_boston_npz(path: Path, rows: int = 506) -> Path:
    """boston_housing.npz as keras.datasets downloads it: `x` 13 features, `y` the price in $1000s, here a
    linear function of four features plus noise."""
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.uniform(0, 1, rows), rng.uniform(0, 100, rows), rng.uniform(4, 9, rows)] +
                        [rng.normal(0, 1, rows) for _ in range(10)])
    y = 5 + 10 * x[:, 0] - 0.1 * x[:, 1] + 4 * x[:, 2] + 2 * x[:, 3] + rng.normal(0, 1, rows)
    np.savez(path, x=x, y=y)
    return path
