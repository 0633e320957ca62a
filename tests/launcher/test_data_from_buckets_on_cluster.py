"""Data that exists only in the bucket, read by sweeps whose trials run on a worker with a disk of its own (the GCS
emulator as the bucket): a 4-trial sweep on an image folder (scikit-learn's digits as class folders of PNGs) and a
4-trial sweep on a CSV table (scikit-learn's wine) both train on the worker, and the worker's data cache downloads
each data set once for the node, however many of its trials read it (issue 22, item 3).

The worker's cache is under its own Ray temp dir (cluster/results/data_cache.py: node_cache_root), on its private
disk: the test reads its `downloads.jsonl` through /proc of one of the worker's processes. The head's CPUs are held,
so every trial runs on the worker; the head's cache must not have downloaded anything.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cluster.results.data_cache import DOWNLOADS_LOG, FOLDER_NAME
from cluster.results.push import push

from .conftest import CloudLikeCluster, sweep

# Two 4-trial sweeps on the cloud-like cluster: about 3 minutes on 2 cores. CI runs it.
pytestmark = pytest.mark.slow

# Four trials at a time on the worker (4 CPUs): they ask for the same data set together.
QUICK = ["trainer.epochs=2", "trainer.verbose=2", "resources.cpus=1", "storage.sync_seconds=1",
         "trainer.callbacks.early_stopping.enabled=false"]


def write_digit_folder(root: Path) -> Path:
    """scikit-learn's 1797 handwritten digits (8x8, 16 grey levels) as one grey PNG per image in class folders 0-9."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).round().astype(np.uint8), mode="L").save(folder / f"{index:04d}.png")
    return root


def write_wine_csv(path: Path) -> Path:
    """scikit-learn's wine table (178 wines, 13 measurements, 3 cultivars) with the cultivar in `cultivar`."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*wine.feature_names, "cultivar"])
        for row, label in zip(wine.data, wine.target):
            writer.writerow([*(f"{value:g}" for value in row), f"cultivar_{label}"])
    return path


def cache_log(folder: Path) -> list[dict]:
    log = folder / FOLDER_NAME / DOWNLOADS_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def worker_cache_log(cloud: CloudLikeCluster) -> list[dict]:
    """The worker's downloads.jsonl, on its own disk: its Ray temp dir is a tmpfs only its processes see."""
    return cache_log(cloud.worker.path_seen_by_node(Path(cloud.cluster.temp_dir)))


def check_books(cloud: CloudLikeCluster, sweep_dir: Path, name: str, uri: str) -> list[dict]:
    """4 trials = 4 leaderboard rows = 4 job folders on the worker = 4 trials in the bucket, every one completed on
    the worker, each having read the data through the node's copy. Returns the trials' metrics.json."""
    from cluster.store import open_store
    from cluster.store.pointers import read_json

    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    rows = board["trials"]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 4, rows
    assert sorted(str(row["job"]) for row in rows) == ["0", "1", "2", "3"]
    worker_id = cloud.node_ids()["worker"]
    on_worker = cloud.worker.path_seen_by_node(sweep_dir)
    assert sorted(path.name for path in on_worker.iterdir() if path.is_dir() and path.name.isdigit()) == \
        ["0", "1", "2", "3"]
    store = open_store(f"gs://{cloud.bucket}/exp")
    found = []
    for row in rows:
        job = str(row["job"])
        assert not (sweep_dir / job / "metrics.json").exists(), "a trial ran on the driver's disk"
        metrics = json.loads((on_worker / job / "metrics.json").read_text())
        assert metrics["epochs_run"] == 2 and metrics["num_train_examples"] > 0
        assert row["value"] == metrics["best_value"]
        record = read_json(store, f"{name}/trials/{job}/trial.json")[0]
        assert [attempt["node_id"] for attempt in record["attempts"]] == [worker_id]
        # The job records the URI the user named; the trainers read the node's copy.
        assert f"path: {uri}\n" in (on_worker / job / "resolved_config.yaml").read_text()
        found.append(metrics)
    return found


def test_sweeps_on_bucket_data_download_each_data_set_once_for_the_node(cloud, tmp_path):
    digits_uri = f"gs://{cloud.bucket}/datasets/digits"
    wine_uri = f"gs://{cloud.bucket}/datasets/wine.csv"
    pushed = push(write_digit_folder(tmp_path / "digits"), digits_uri, out=lambda line: None)
    push(write_wine_csv(tmp_path / "wine.csv"), wine_uri, out=lambda line: None)
    assert pushed["uploaded"] == 1797, pushed
    before = [line["uri"] for line in worker_cache_log(cloud)]
    assert digits_uri not in before and wine_uri not in before
    store = f"storage.uri=gs://{cloud.bucket}/exp"
    env = {"STORAGE_EMULATOR_HOST": cloud.emulator}

    cloud.hold_head()
    try:
        digits_dir = cloud.base / "digits-from-bucket"
        result = sweep(["model=cnn,mlp", "lr=1e-3,3e-3", "data=image_folder", f"data.path={digits_uri}",
                        "data.image_size=8", "data.channels=1", store, *QUICK], digits_dir,
                       address=cloud.cluster.address, extra_env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        wine_dir = cloud.base / "wine-from-bucket"
        result = sweep(["model=mlp", "lr=1e-3,3e-3", "seed=0,1", "data=csv", f"data.path={wine_uri}",
                        "data.target=cultivar", "data.task=multiclass", store, *QUICK], wine_dir,
                       address=cloud.cluster.address, extra_env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    finally:
        cloud.release_head()

    digits = check_books(cloud, digits_dir, digits_dir.name, digits_uri)
    wine = check_books(cloud, wine_dir, wine_dir.name, wine_uri)
    # Real data reached the models: the best trial of each sweep beats chance (10 digits, 3 cultivars) clearly.
    best = {name: max(epoch["val_accuracy"] for job in jobs for epoch in job["history"])
            for name, jobs in (("digits", digits), ("wine", wine))}
    print(f"best validation accuracy: {best}")
    assert best["digits"] > 0.3 and best["wine"] > 0.6, best

    # The worker's cache: one download per data set, the whole data set, for the 4 trials that read it.
    downloads = [line for line in worker_cache_log(cloud) if line["uri"] in (digits_uri, wine_uri)]
    assert sorted((line["event"], line["uri"]) for line in downloads) == \
        [("download", digits_uri), ("download", wine_uri)], downloads
    by_uri = {line["uri"]: line for line in downloads}
    assert by_uri[digits_uri]["files"] == 1797
    assert by_uri[wine_uri]["files"] == 1 and by_uri[wine_uri]["bytes"] == (tmp_path / "wine.csv").stat().st_size
    # Each sweep's 4 trials read that one copy: the trial that downloaded says so, the others waited for it or
    # found it complete.
    for folder, uri in ((digits_dir, digits_uri), (wine_dir, wine_uri)):
        logs = [(cloud.worker.path_seen_by_node(folder) / job / "trial.log").read_text() for job in "0123"]
        assert sum(f"[raylaunch] data: downloading {uri} " in log for log in logs) == 1, uri
    # The head's cache (its own temp dir, on this disk) downloaded nothing: the driver only listed the bucket.
    assert not [line for line in cache_log(Path(cloud.cluster.temp_dir)) if line["uri"] in (digits_uri, wine_uri)]
