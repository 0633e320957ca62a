"""data=image_folder end to end: class folders of PNGs written here train through launch.py, and the saved
model takes images as they are read from disk (raw 0..255 pixels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_image_folder
from trainers.schema import DataConfig

NO_UPLOADS = "storage.uri=null"


@pytest.fixture(scope="module")
def photo_job(tmp_path_factory):
    photos = write_image_folder(tmp_path_factory.mktemp("data") / "photos", per_class=14, size=16)
    job_dir = tmp_path_factory.mktemp("image_job")
    result = run_launch(
        "model=cnn", "data=image_folder", f"data.path={photos}", "data.image_size=16", "augmentation=light",
        "trainer.epochs=4", "trainer.batch_size=8", NO_UPLOADS, f"hydra.run.dir={job_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return photos, job_dir


def test_image_folder_trains_with_every_split_from_the_folder(photo_job):
    photos, job_dir = photo_job
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4
    # 14 per class: 2 held out for test (15%), 2 of the remaining 12 for validation: 10 per class trains.
    assert metrics["num_train_examples"] == 20
    assert all("val_accuracy" in epoch for epoch in metrics["history"])
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0


def test_saved_model_takes_raw_pixels_and_reproduces_the_test_score(photo_job):
    import keras
    from PIL import Image

    from trainers.class_folders import split_class_folders

    photos, job_dir = photo_job
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    data_cfg = OmegaConf.structured(DataConfig(name="image_folder", task="multiclass", input_kind="image",
                                               path=str(photos), val_fraction=0.15, test_fraction=0.15))
    test_files = split_class_folders(data_cfg, (".png",), "./photos").test
    assert len(test_files) == 4
    images = np.stack([np.asarray(Image.open(path), dtype="float32") for path, _ in test_files])  # 0..255
    labels = np.array([label for _, label in test_files])
    predictions = model.predict(images, verbose=0)
    assert predictions.shape == (4, 2)
    accuracy = float(np.mean(predictions.argmax(axis=1) == labels))
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
