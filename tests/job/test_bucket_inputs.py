"""`python launch.py` with data from a bucket (a real GCS emulator): a bad URI is refused in one line naming it and
the fix, before TensorFlow or Ray start, for a job and for a sweep; a job trains on an image folder that exists
only in the bucket and records the URI (not the node's copy) in resolved_config.yaml. A second job on the node
reusing the copy: tests/results/test_data_cache.py."""

from __future__ import annotations

import csv
import json

import pytest

from cluster.results.data_cache import DOWNLOADS_LOG
from cluster.results.push import push
from tests.conftest import launch_refused, run_launch
from tests.gcs_permissions import PermissionDenied
from tests.keras_practice.makers import write_houses_csv, write_image_folder

NO_UPLOADS = "storage.uri=null"


@pytest.fixture
def bucket_env(gcs, tmp_path):
    server, bucket = gcs
    return bucket, {"STORAGE_EMULATOR_HOST": server.url, "RAYLAUNCH_DATA_CACHE": str(tmp_path / "cache")}


def test_bad_bucket_inputs_are_refused_before_anything_starts(bucket_env, tmp_path, tensorflow_unimportable):
    bucket, env = bucket_env
    env = {**env, **tensorflow_unimportable}
    photos = write_image_folder(tmp_path / "photos", per_class=3, size=8)
    (photos / "empty").mkdir()
    (photos / "empty" / "notes.md").write_text("no images here")
    push(photos, f"gs://{bucket}/data/photos", out=lambda line: None)
    push(write_houses_csv(tmp_path / "houses.csv", rows=20), f"gs://{bucket}/data/houses.csv", out=lambda line: None)

    missing_bucket = "gs://no-such-bucket-here/data/photos"
    launch_refused(run_launch("data=image_folder", f"data.path={missing_bucket}", NO_UPLOADS, env=env),
            missing_bucket, "does not exist")
    missing_prefix = f"gs://{bucket}/data/nothing"
    launch_refused(run_launch("data=image_folder", f"data.path={missing_prefix}", NO_UPLOADS, env=env),
            missing_prefix, "python launch.py push")
    launch_refused(run_launch("data=image_folder", f"data.path=gs://{bucket}/data/photos", NO_UPLOADS, env=env),
            f"Empty class folder gs://{bucket}/data/photos/empty", "data.class_names")
    launch_refused(run_launch("model=mlp", "data=csv", f"data.path=gs://{bucket}/data/houses.csv", "data.target=cost",
                       NO_UPLOADS, env=env),
            "data.target=cost", f"gs://{bucket}/data/houses.csv", "Columns: area, rooms, age, price, kind")
    launch_refused(run_launch("model=transfer", "data=image_folder", f"data.path=gs://{bucket}/data/photos",
                       "data.class_names=[dark,light]", f"model.weights=gs://{bucket}/weights/none.weights.h5",
                       NO_UPLOADS, env=env),
            f"model.weights=gs://{bucket}/weights/none.weights.h5", "no such object")
    # A sweep: its driver checks every job before Ray starts.
    result = run_launch("-m", "data=image_folder", f"data.path=gs://{bucket}/data/photos,{missing_prefix}",
                        "data.class_names=[dark,light]", NO_UPLOADS, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert missing_prefix in result.stderr and "no job of this sweep was started" in result.stderr
    assert "Started a local Ray instance" not in result.stdout + result.stderr


def test_a_job_trains_on_an_image_folder_that_is_only_in_the_bucket(bucket_env, tmp_path):
    bucket, env = bucket_env
    photos = write_image_folder(tmp_path / "photos", per_class=10, size=16)
    uri = f"gs://{bucket}/data/photos"
    push(photos, uri, out=lambda line: None)
    job_dir = tmp_path / "job"
    result = run_launch("data=image_folder", f"data.path={uri}", "data.image_size=16", "trainer=quick",
                        "trainer.batch_size=8", NO_UPLOADS, f"hydra.run.dir={job_dir}", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"[raylaunch] data: downloading {uri} (20 file(s)" in result.stdout
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["num_train_examples"] > 0
    # What the user named is recorded, not this node's copy (the trainers read the copy).
    assert f"path: {uri}\n" in (job_dir / "resolved_config.yaml").read_text()
    log = (tmp_path / "cache" / DOWNLOADS_LOG).read_text().splitlines()
    assert [json.loads(line)["event"] for line in log] == ["download"]


def test_a_semicolon_separated_table_in_the_bucket_is_checked_and_trains(bucket_env, tmp_path):
    """The bucket's header check reads the delimiter as the job does (detected, or data.delimiter): a spreadsheet's
    semicolons are not one column named 'area;rooms;age;price;kind'."""
    bucket, env = bucket_env
    with open(write_houses_csv(tmp_path / "houses.csv", rows=120)) as source:
        rows = list(csv.reader(source))
    table = tmp_path / "houses_semicolon.csv"
    with open(table, "w", newline="") as file:
        csv.writer(file, delimiter=";").writerows(rows)
    uri = f"gs://{bucket}/data/houses_semicolon.csv"
    push(table, uri, out=lambda line: None)

    launch_refused(run_launch("model=mlp", "data=csv", f"data.path={uri}", "data.target=cost", NO_UPLOADS, env=env),
                   "data.target=cost", uri, "Columns: area, rooms, age, price, kind")
    job_dir = tmp_path / "job"
    result = run_launch("model=mlp", "data=csv", f"data.path={uri}", "data.target=price", "trainer=quick",
                        NO_UPLOADS, f"hydra.run.dir={job_dir}", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert json.loads((job_dir / "metrics.json").read_text())["features"] == {
        "area": "numeric", "rooms": "numeric", "age": "numeric", "kind": "one_hot (3 categories)"}


def test_a_data_bucket_this_account_may_not_read_is_refused_before_anything_starts(gcs, tmp_path,
                                                                                   tensorflow_unimportable):
    """Cloud Storage answers 403 to an account without read permission (the emulator enforces none: a proxy in
    front of it answers for the bucket as GCS does). One line names the URI and how to get read access."""
    server, bucket = gcs
    uri = f"gs://{bucket}/data/photos"
    push(write_image_folder(tmp_path / "photos", per_class=3, size=8), uri, out=lambda line: None)
    with PermissionDenied(server.url, denied={bucket}) as proxy:
        env = {"STORAGE_EMULATOR_HOST": proxy.url, "RAYLAUNCH_DATA_CACHE": str(tmp_path / "cache"),
               **tensorflow_unimportable}
        result = run_launch("data=image_folder", f"data.path={uri}", NO_UPLOADS, env=env)
    assert proxy.refused, "the job never asked the bucket"
    launch_refused(result, f"data.path={uri}", "permission denied", "roles/storage.objectViewer")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache" / "entries").iterdir())
