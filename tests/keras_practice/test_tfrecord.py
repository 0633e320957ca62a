"""data=tfrecord end to end: TFRecord files written here from scikit-learn's digits (PNG-encoded images) and wine
table (13 float measurements) train through launch.py, over two replicas for the digits; each epoch gives every
training example to exactly one replica once; a bad spec, glob or record is refused in one line before training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.tfrecord_data import wine_alcohol_examples, wine_examples, write_digits, write_shards
from trainers.schema import ConfigError, DataConfig

NO_UPLOADS = "storage.uri=null"
ROOT = Path(__file__).resolve().parents[2]
DIGIT_IMAGES = "data.features={image:{kind:image,channels:1,size:[8,8]}}"
DIGIT_LABELS = "data.label={name:label,kind:int,num_classes:10}"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return write_digits(tmp_path_factory.mktemp("records") / "digits")


def metrics_of(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def test_digit_images_train_over_two_replicas(digits, tmp_path):
    result = run_launch(
        "model=cnn", "data=tfrecord", f"data.path={digits}", "data.files=digits-train*", "data.test_files=digits-test*",
        DIGIT_IMAGES, DIGIT_LABELS, "distribution.cpu_replicas=2", "trainer.epochs=4", "trainer.batch_size=32",
        NO_UPLOADS, f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    metrics = metrics_of(tmp_path)
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == 4
    # 4 training shards of 359-360 records: one is held out for validation (val_fraction of 4 files, at least 1).
    assert metrics["num_train_examples"] in (1077, 1078)
    assert metrics["test"]["accuracy"] > 0.6, metrics["test"]  # 10 classes: chance is 0.1
    assert metrics["inputs"]["shape"] == [None, 8, 8, 1] and metrics["inputs"]["range"] == [0.0, 255.0]


def test_wine_measurements_train_with_whole_files_held_out(tmp_path):
    write_shards(tmp_path / "wine", "wine", wine_examples(), num_shards=6)
    job_dir = tmp_path / "job"
    result = run_launch(
        "model=mlp", "data=tfrecord", "data.input_kind=tabular", f"data.path={tmp_path / 'wine'}",
        "data.features={measurements:{kind:float,shape:[13]}}", "data.label={name:cultivar,kind:int,num_classes:3}",
        "trainer.epochs=15", "trainer.batch_size=16", NO_UPLOADS, f"hydra.run.dir={job_dir}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    metrics = metrics_of(job_dir)
    # 6 files of 29-30 wines: test_fraction 0.2 holds out 1 file, val_fraction 0.1 another; 4 train.
    assert 116 <= metrics["num_train_examples"] <= 120
    # The three cultivars are 33-40 % each: always answering the commonest scores at most 0.4 on any file.
    assert metrics["test"]["accuracy"] > 0.8, metrics["test"]


def test_a_float_label_trains_a_regression(tmp_path):
    import numpy as np

    examples = wine_alcohol_examples()
    write_shards(tmp_path / "wine", "wine", examples, num_shards=6)
    job_dir = tmp_path / "job"
    result = run_launch(
        "model=mlp", "data=tfrecord", "data.task=regression", "data.input_kind=tabular",
        f"data.path={tmp_path / 'wine'}", "data.features={measurements:{kind:float,shape:[12]}}",
        "data.label={name:alcohol,kind:float}", "trainer.epochs=20", "trainer.batch_size=16", NO_UPLOADS,
        f"hydra.run.dir={job_dir}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    alcohol = np.array([example["alcohol"][1][0] for example in examples])
    always_the_mean = float(np.mean(np.abs(alcohol - alcohol.mean())))  # about 0.66 % vol
    assert metrics_of(job_dir)["test"]["mae"] < 0.8 * always_the_mean, metrics_of(job_dir)["test"]


SHARDING = r"""
import json, sys
import numpy as np
from omegaconf import OmegaConf
from trainers import devices
devices.configure_devices(2)
strategy = devices.build_strategy(2)
import tensorflow as tf
from trainers.datasets import load_data
from trainers.pipeline import build_pipelines
from trainers.schema import DataConfig

cfg = OmegaConf.structured(DataConfig(
    name="tfrecord", task="regression", input_kind="image", path=sys.argv[1], files="digits-train*",
    test_files="digits-test*", features={"image": {"kind": "image", "channels": 1, "size": [8, 8]}},
    label={"name": "index", "kind": "float"}, shuffle_buffer=200, cache=False))
data = load_data(cfg)
held = [float(y) for part in (data.validation, data.test) for _, y in part.as_numpy_iterator()]
pipelines = build_pipelines(cfg, data, 64, seed=0)
epochs = []
for epoch in (1, 2):
    pipelines.train.set_epoch(epoch)
    per_replica = [[], []]
    for _, labels in strategy.experimental_distribute_dataset(pipelines.train.every_epoch()):
        for replica, part in enumerate(strategy.experimental_local_results(labels)):
            per_replica[replica] += [float(value) for value in part.numpy().reshape(-1)]
    epochs.append(per_replica)
policy = data.train.options().experimental_distribute.auto_shard_policy
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "epochs": epochs, "held": held,
                            "num_train": data.num_train_examples, "policy": int(policy)}))
"""


def test_each_epoch_gives_every_training_example_to_one_replica_once(digits):
    result = subprocess.run([sys.executable, "-c", SHARDING, str(digits)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert found["replicas"] == 2
    training = set(range(1797)) - {round(index) for index in found["held"]}
    assert len(training) == found["num_train"] and len(found["held"]) == 1797 - found["num_train"]
    orders = []
    for first, second in found["epochs"]:
        assert first and second, "each replica gets examples"
        seen = [round(index) for index in first + second]
        assert len(seen) == len(set(seen)), "an example seen twice in one epoch"
        assert set(seen) == training, "every training example, and none held out, each epoch"
        orders.append(first)
    assert orders[0] != orders[1], "each epoch has its own order"
    assert found["policy"] == 1  # AutoShardPolicy.FILE: 3 training files, 1 input worker


def tfrecord_cfg(path: Path, **values):
    settings = dict(name="tfrecord", task="multiclass", input_kind="image", path=str(path), files="digits-train*",
                    test_files="digits-test*", features={"image": {"kind": "image", "channels": 1, "size": [8, 8]}},
                    label={"name": "label", "kind": "int", "num_classes": 10})
    settings.update(values)
    return OmegaConf.structured(DataConfig(**settings))


def refused(cfg) -> str:
    from trainers.datasets import load_data

    with pytest.raises(ConfigError) as error:
        load_data(cfg)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_the_policy_is_data_with_fewer_files_than_workers(digits, monkeypatch):
    import tensorflow as tf

    from trainers.tfrecord import load_tfrecord

    policy = tf.data.experimental.AutoShardPolicy
    workers = [f"127.0.0.1:{2000 + index}" for index in range(3)]
    task = {"type": "worker", "index": 0}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": workers}, "task": task}))
    streams = load_tfrecord(tfrecord_cfg(digits))
    assert streams.train.options().experimental_distribute.auto_shard_policy == policy.FILE  # 3 files, 3 workers
    assert streams.test.options().experimental_distribute.auto_shard_policy == policy.DATA  # 2 files, 3 workers


def test_a_feature_missing_from_the_records(digits):
    message = refused(tfrecord_cfg(digits, features={"pixels": {"kind": "image", "channels": 1, "size": 8}}))
    assert "`data.features.pixels`: received 'pixels', a feature not in the records" in message
    assert "holds image (bytes_list of 1 value(s)), index (float_list of 1 value(s)), label (int64_list" in message
    message = refused(tfrecord_cfg(digits, label={"name": "digit", "kind": "int", "num_classes": 10}))
    assert "`data.label`: received 'digit'" in message


def test_a_feature_of_another_kind_or_size(digits):
    message = refused(tfrecord_cfg(digits, input_kind="tabular", features={"index": {"kind": "float", "shape": [3]}}))
    assert "`data.features.index`: received kind float of 3 values for 'index'" in message
    assert "holds it as float_list of 1 value(s)" in message
    message = refused(tfrecord_cfg(digits, input_kind="tabular", features={"label": {"kind": "float"}},
                                   label={"name": "index", "kind": "int", "num_classes": 10}))
    assert "`data.features.label`: received kind float for 'label'" in message and "int64_list" in message
    message = refused(tfrecord_cfg(digits, label={"name": "label", "kind": "int", "num_classes": 3}))
    assert "`data.label.num_classes`: received 3" in message


def test_a_glob_that_matches_no_file(digits):
    message = refused(tfrecord_cfg(digits, val_files="digits-validation*"))
    assert f"`data.val_files`: received 'digits-validation*', which matches no file in {digits}" in message
    assert "digits-test.tfrecord-00000-of-00002" in message
    message = refused(tfrecord_cfg(digits, files="*.tfrecord*"))
    assert "`data.test_files`" in message and "also matched by data.files='*.tfrecord*'" in message


def test_records_that_do_not_parse(digits, tmp_path):
    import tensorflow as tf

    shard = digits.joinpath("digits-train.tfrecord-00000-of-00004").read_bytes()  # 360 records
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test-0.tfrecord").write_bytes(digits.joinpath("digits-test.tfrecord-00000-of-00002")
                                                        .read_bytes())
    with tf.io.TFRecordWriter(str(tmp_path / "train-0.tfrecord")) as writer:
        writer.write(b"\xff\x00 not a tf.train.Example")
    cfg = tfrecord_cfg(tmp_path, files="train-*", test_files="test/*")
    message = refused(cfg)
    assert "`data.val_files`: received None, which holds out whole training files" in message  # one file
    (tmp_path / "train-1.tfrecord").write_bytes(shard)
    message = refused(cfg)
    assert f"received {tmp_path / 'train-0.tfrecord'}, whose first record is not a tf.train.Example" in message
    (tmp_path / "train-0.tfrecord").write_bytes(shard[:-7])
    message = refused(cfg)
    assert "train-0.tfrecord, whose record 360 (at byte" in message and "is cut short" in message
    (tmp_path / "train-0.tfrecord").write_bytes(b"\x1f\x8b gzip, say")
    assert "train-0.tfrecord, whose record 1 (at byte 0) does not read as TFRecord framing" in refused(cfg)
    (tmp_path / "train-0.tfrecord").write_bytes(shard)
    assert load_data_quietly(cfg).num_train_examples == 360  # both files sound: one trains, one validates


def load_data_quietly(cfg):
    from trainers.datasets import load_data

    return load_data(cfg)


def test_an_image_that_does_not_decode(tmp_path):
    write_shards(tmp_path, "train", [{"image": ("bytes", [b"not a png"]), "label": ("int", [1])}] * 3, 3)
    message = refused(tfrecord_cfg(tmp_path, files="train*", test_files=None))
    assert "`data.features.image`: received kind image for 'image'" in message
    assert "tf.io.decode_image cannot decode" in message


def test_a_bad_spec_is_refused_by_launch_before_tensorflow(digits, tensorflow_unimportable):
    result = run_launch("data=tfrecord", f"data.path={digits}", "data.features={image:{kind:jpeg}}", DIGIT_LABELS,
                        NO_UPLOADS, env=tensorflow_unimportable)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Config error")]
    assert len(errors) == 1 and "`data.features.image`: received {'kind': 'jpeg'}" in errors[0], result.stderr[-2000:]
    result = run_launch("data=tfrecord", f"data.path={digits}", "data.input_kind=tabular", DIGIT_IMAGES, DIGIT_LABELS,
                        NO_UPLOADS, env=tensorflow_unimportable)
    assert "Invalid value for `data.input_kind`: received 'tabular'. Allowed: image" in result.stderr


@pytest.mark.parametrize("values,expected", [
    (dict(features={}), "`data.features`: received {}"),
    (dict(features={"image": {"kind": "image", "size": [8]}}), "`data.features.image.size`: received [8]"),
    (dict(features={"image": {"kind": "image", "channels": 2}}), "`data.features.image.channels`: received 2"),
    (dict(features={"image": {"kind": "image", "shape": [8]}}), "`data.features.image.shape`: received [8]"),
    (dict(features={"image": {"kind": "image"}, "index": {"kind": "float"}}), "one image feature alone ('image')"),
    (dict(label={"name": "label", "kind": "int"}), "`data.label.num_classes`: received None"),
    (dict(label={"name": "label", "kind": "float"}), "`data.label.kind`: received 'float'. Allowed: int with "
                                                     "data.task=multiclass"),
    (dict(label={"name": "image", "kind": "int", "num_classes": 10}), "`data.label.name`: received 'image'"),
    (dict(task="binary", label={"name": "label", "kind": "int", "num_classes": 10}),
     "`data.label.num_classes`: received 10. Allowed: 2 or null with data.task=binary"),
    (dict(files="/abs/*.tfrecord"), "`data.files`: received '/abs/*.tfrecord'. Allowed: a glob relative to data.path"),
    (dict(name="digits", input_kind="image"), "`data.files`: received 'digits-train*'. Allowed: '*.tfrecord*' with "
                                              "data=digits: only data=tfrecord reads it"),
])
def test_a_spec_tfrecord_cannot_read_is_refused_without_tensorflow(tmp_path, values, expected):
    from trainers.schema import check_tfrecord

    with pytest.raises(ConfigError) as error:
        check_tfrecord(tfrecord_cfg(tmp_path, **values))
    assert expected in str(error.value)


def test_globs_match_one_folder_per_part_and_double_stars_span_folders():
    from trainers.schema import glob_matching

    names = ["train-0.tfrecord", "test-0.tfrecord", "more/train-1.tfrecord", "more/deeper/train-2.tfrecord"]
    assert glob_matching(names, "train-*") == ["train-0.tfrecord"]
    assert glob_matching(names, "*/train-*") == ["more/train-1.tfrecord"]
    assert glob_matching(names, "**/train-*") == ["more/deeper/train-2.tfrecord", "more/train-1.tfrecord",
                                                  "train-0.tfrecord"]
