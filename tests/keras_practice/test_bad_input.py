"""Bad user data is refused before any training, with a message naming the path or column to fix."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_houses_csv, write_image_folder, write_text_folder
from trainers.datasets import load_data
from trainers.schema import ConfigError, DataConfig

KINDS = {"image_folder": "image", "text_folder": "text", "csv": "tabular"}


def data_cfg(name: str, **values):
    task = "regression" if name == "csv" else "multiclass"
    return OmegaConf.structured(DataConfig(name=name, task=task, input_kind=KINDS[name], val_fraction=0.15,
                                           test_fraction=0.15, **values))


def refused(cfg) -> str:
    with pytest.raises(ConfigError) as error:
        load_data(cfg)
    return str(error.value)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_data_path_that_does_not_exist(tmp_path, name):
    missing = tmp_path / "nowhere"
    message = refused(data_cfg(name, path=str(missing), target="price"))
    assert f"data.path: {str(missing)!r} does not exist" in message


@pytest.mark.parametrize("name", sorted(KINDS))
def test_no_data_path_says_which_setting_is_needed(name):
    assert f"data={name} needs data.path" in refused(data_cfg(name, target="price"))


def test_an_empty_class_folder(tmp_path):
    photos = write_image_folder(tmp_path / "photos", per_class=4)
    (photos / "zebra").mkdir()
    (photos / "zebra" / "notes.md").write_text("no images here")
    message = refused(data_cfg("image_folder", path=str(photos)))
    assert f"Empty class folder {photos / 'zebra'}" in message and ".png" in message


def test_an_empty_text_class_folder(tmp_path):
    reviews = write_text_folder(tmp_path / "reviews", per_class=4)
    (reviews / "mixed").mkdir()
    assert f"Empty class folder {reviews / 'mixed'}" in refused(data_cfg("text_folder", path=str(reviews)))


@pytest.mark.parametrize("content", [b"not an image at all", None], ids=["garbage", "truncated_png"])
def test_an_unreadable_image(tmp_path, content):
    photos = write_image_folder(tmp_path / "photos", per_class=4)
    bad = photos / "light" / "broken.png"
    if content is None:  # the first half of a real PNG
        whole = (photos / "light" / "000.png").read_bytes()
        content = whole[: len(whole) // 2]
    bad.write_bytes(content)
    message = refused(data_cfg("image_folder", path=str(photos)))
    assert message.startswith(f"Unreadable image {bad}:")


def test_a_folder_without_class_sub_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "1.png").write_bytes(b"")
    assert "0 class sub-folder(s)" in refused(data_cfg("image_folder", path=str(tmp_path / "flat")))


def test_binary_task_needs_exactly_two_class_folders(tmp_path):
    photos = write_image_folder(tmp_path / "photos", per_class=4, classes=("a", "b", "c"))
    cfg = data_cfg("image_folder", path=str(photos))
    cfg.task = "binary"
    assert "data.task=binary needs exactly 2 class folders" in refused(cfg)


def test_a_missing_target_column_lists_the_columns(tmp_path):
    houses = write_houses_csv(tmp_path / "houses.csv", rows=20)
    message = refused(data_cfg("csv", path=str(houses), target="cost"))
    assert message == f"data.target=cost: no such column in {houses}. Columns: area, rooms, age, price, kind."


def test_no_target_lists_the_columns(tmp_path):
    houses = write_houses_csv(tmp_path / "houses.csv", rows=20)
    assert "needs data.target" in refused(data_cfg("csv", path=str(houses)))


def test_a_word_in_a_column_of_numbers_is_named_with_the_fix(tmp_path):
    # A whole text column is a category; a stray word among numbers is more likely a typo.
    table = tmp_path / "typo.csv"
    table.write_text("area,price\n50,100\n60,200\nsixty,300\n70,400\n")
    message = refused(data_cfg("csv", path=str(table), target="price"))
    assert "1 cells are not numbers in columns of numbers: line 4, column 'area': 'sixty'." in message
    assert "add it to data.missing_values" in message
    assert "data.categorical_columns=[area]" in message and "data.exclude_columns=[area]" in message


def test_unknown_categorical_columns_are_named(tmp_path):
    houses = write_houses_csv(tmp_path / "houses.csv", rows=20)
    message = refused(data_cfg("csv", path=str(houses), target="price", categorical_columns=["town"]))
    assert message == f"data.categorical_columns: no column town in {houses}. Columns: area, rooms, age, price, kind."


def test_an_empty_cell_is_named_with_its_column_and_line_when_refused(tmp_path):
    table = tmp_path / "gaps.csv"
    table.write_text("area,price\n50,100\n,200\n70,300\n")
    message = refused(data_cfg("csv", path=str(table), target="price", impute="refuse"))
    assert "1 feature cells are missing: line 3, column 'area': '' (data.impute=refuse" in message


def test_launch_refuses_before_training_with_exit_code_2(tmp_path):
    houses = write_houses_csv(tmp_path / "houses.csv", rows=20)
    job_dir = tmp_path / "job"
    result = run_launch("model=mlp", "data=csv", f"data.path={houses}", "data.target=cost", "storage.uri=null",
                        f"hydra.run.dir={job_dir}")
    assert result.returncode == 2
    assert re.search(r"Config error: data.target=cost: no such column .* Columns: area, rooms, age, price, kind",
                     result.stderr)
    assert "Epoch 1/" not in result.stdout and not (job_dir / "tensorboard").exists()


def test_raw_text_on_several_replicas_is_refused_before_training(tmp_path):
    # Keras 3's MirroredStrategy fails on string inputs mid-fit; say so up front instead.
    reviews = write_text_folder(tmp_path / "reviews", per_class=6)
    result = run_launch("model=mlp", "data=text_folder", f"data.path={reviews}", "distribution.cpu_replicas=2",
                        "storage.uri=null", f"hydra.run.dir={tmp_path / 'job'}")
    assert result.returncode == 2
    assert "Config error: Raw-text data (input_kind 'text') trains on one replica only; this job has 2" in result.stderr
    assert "Epoch 1/" not in result.stdout
