"""data=tfrecord from a bucket (a real GCS emulator): TFRecord files that exist only under a gs:// prefix train (the
prefix downloaded once for the node, the globs applied to the copy), and a prefix or glob that names nothing is
refused in one line naming the field, before TensorFlow or Ray start."""

from __future__ import annotations

import json

from cluster.results.data_cache import DOWNLOADS_LOG
from cluster.results.push import push
from tests.conftest import launch_refused, run_launch
from tests.keras_practice.tfrecord_data import write_digits

NO_UPLOADS = "storage.uri=null"
SPEC = ("data.features={image:{kind:image,channels:1,size:[8,8]}}", "data.label={name:label,kind:int,num_classes:10}")


def test_tfrecord_files_only_in_the_bucket_train_and_bad_globs_are_refused(gcs, tmp_path, tensorflow_unimportable):
    server, bucket = gcs
    env = {"STORAGE_EMULATOR_HOST": server.url, "RAYLAUNCH_DATA_CACHE": str(tmp_path / "cache")}
    records = write_digits(tmp_path / "digits", train_shards=3, test_shards=1)
    (records / "raw").mkdir()  # what a prefix often holds besides the records: never downloaded by the job
    (records / "raw" / "digits.csv").write_bytes(b"0," * 50_000)
    uri = f"gs://{bucket}/data/digits"
    push(records, uri, out=lambda line: None)
    globs = ("data.files=digits-train*", "data.test_files=digits-test*")

    blocked = {**env, **tensorflow_unimportable}
    launch_refused(run_launch("data=tfrecord", f"data.path=gs://{bucket}/data/nothing", *globs, *SPEC, NO_UPLOADS,
                       env=blocked),
            f"data.path=gs://{bucket}/data/nothing", "no objects at or under it", "python launch.py push")
    launch_refused(run_launch("data=tfrecord", f"data.path={uri}", "data.files=digits-train*",
                       "data.test_files=digits-validation*", *SPEC, NO_UPLOADS, env=blocked),
            "Invalid value for `data.test_files`: received 'digits-validation*', which matches no object under "
            f"{uri}", "digits-test.tfrecord-00000-of-00001")
    launch_refused(run_launch("data=tfrecord", "data.path=gs://no-such-bucket-here/digits", *globs, *SPEC, NO_UPLOADS,
                       env=blocked),
            "gs://no-such-bucket-here/digits", "does not exist")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

    job_dir = tmp_path / "job"
    result = run_launch("model=cnn", "data=tfrecord", f"data.path={uri}", *globs, *SPEC, "trainer=quick",
                        "trainer.batch_size=32", NO_UPLOADS, f"hydra.run.dir={job_dir}", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"[raylaunch] data: downloading {uri} (4 file(s)" in result.stdout
    metrics = json.loads((job_dir / "metrics.json").read_text())
    # 3 training shards of 479 records: one held out for validation.
    assert metrics["epochs_run"] == 2 and metrics["num_train_examples"] == 958
    assert metrics["test"]["accuracy"] > 0.3, metrics["test"]  # 10 classes: chance is 0.1
    assert f"path: {uri}\n" in (job_dir / "resolved_config.yaml").read_text()
    log = [json.loads(line) for line in (tmp_path / "cache" / DOWNLOADS_LOG).read_text().splitlines()]
    assert [line["event"] for line in log] == ["download"] and log[0]["files"] == 4
    (copy,) = (tmp_path / "cache" / "entries").iterdir()
    assert sorted(path.name for path in (copy / "files").iterdir()) == sorted(
        path.name for path in records.iterdir() if path.name != "raw")
