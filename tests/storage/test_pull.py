"""`launch.py pull` (in-process: cluster.pull.main) against sweeps in a local folder and in the emulator."""

from __future__ import annotations

import json

import pytest

from cluster.pull import main as pull
from cluster.storage import open_store
from cluster.storage.manifest import write_sweep_manifest
from cluster.storage.pointers import read_json
from cluster.storage.uploader import TrialUploader

from .jobdir import JobFolder

VALUES = {"0": 0.5, "1": 0.2, "2": 0.9}  # val_loss per trial: trial 1 is best, then 0


def model_bytes(tmp_path, seed: int) -> bytes:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / f"model-{seed}.keras"
    model.save(path)
    return path.read_bytes()


def make_sweep(store, tmp_path, checkpoints=None) -> dict:
    """Three finished trials uploaded as the launcher's trials upload them, then the sweep manifest."""
    saved = {}
    for trial, value in VALUES.items():
        job = JobFolder(tmp_path / f"job{trial}")
        uploader = TrialUploader(store, "sw", trial, job.path, "val_loss", "min", sync_seconds=0.2)
        data = (checkpoints or {}).get(trial) or model_bytes(tmp_path, int(trial))
        uploader.on_epoch_end(*job.end_epoch(1, value, checkpoint=data))
        job.finish()
        assert not uploader.close(timeout=30).failures
        saved[trial] = data
    write_sweep_manifest(store, "sw", command=["launch.py", "-m", "lr=1,2,3"])
    return saved


@pytest.fixture
def sweep(store_uri, tmp_path):
    store = open_store(store_uri)
    return store, make_sweep(store, tmp_path)


def test_list_shows_sweeps_trials_and_best_metric(sweep, store_uri, capsys):
    assert pull(["--list", store_uri]) == 0
    out = capsys.readouterr().out
    assert f"{store_uri}/sw  [finished]  best: trial 1, val_loss 0.2000 (min)" in out
    for trial, value in VALUES.items():
        assert f"  {trial}      {value:.4f}" in out


def test_pull_best_verifies_and_loads_the_model(sweep, store_uri, tmp_path, capsys):
    store, saved = sweep
    target = tmp_path / "best"
    assert pull([f"{store_uri}/sw", "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert "#1 trial 1: val_loss 0.2000 at epoch 1" in out and "loads: 15 parameters" in out
    assert (target / "best.keras").read_bytes() == saved["1"]
    assert json.loads((target / "best.json").read_text())["trial"] == "1"
    assert json.loads((target / "metrics.json").read_text())["best_value"] == 0.2
    assert (target / "resolved_config.yaml").is_file()
    assert sorted(p.name for p in target.iterdir()) == ["best.json", "best.keras", "metrics.json", "resolved_config.yaml"]

    manifest = json.loads(store.read_bytes("sw/manifest.json")[0])
    assert manifest["best_trial"] == "1" and manifest["command"] == "launch.py -m lr=1,2,3"
    assert set(manifest["resolved_configs"]) == {"0", "1", "2"} and manifest["versions"]["keras"]


def test_pull_top_k_puts_each_trial_in_its_folder(sweep, store_uri, tmp_path):
    _, saved = sweep
    target = tmp_path / "top"
    assert pull([f"{store_uri}/sw", "--top", "2", "--to", str(target), "--tensorboard"]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["0", "1"]
    assert (target / "0" / "best.keras").read_bytes() == saved["0"]
    assert (target / "1" / "tensorboard" / "train" / "events.out.tfevents.1.host.1.v2").is_file()


def test_pull_never_overwrites_silently(sweep, store_uri, tmp_path, capsys):
    target = tmp_path / "best"
    target.mkdir()
    (target / "best.keras").write_bytes(b"my own work")
    assert pull([f"{store_uri}/sw", "--to", str(target), "--no-load-check"]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "--overwrite" in err
    assert (target / "best.keras").read_bytes() == b"my own work"
    assert not (target / "metrics.json").exists()  # nothing was half-done either
    assert pull([f"{store_uri}/sw", "--to", str(target), "--overwrite", "--no-load-check"]) == 0
    assert (target / "best.keras").read_bytes() != b"my own work"


def test_pull_refuses_a_model_keras_cannot_load(store_uri, tmp_path, capsys):
    store = open_store(store_uri)
    make_sweep(store, tmp_path, checkpoints={t: b"PK not a model " + t.encode() for t in VALUES})
    assert pull([f"{store_uri}/sw", "--to", str(tmp_path / "best")]) == 1
    assert "does not load with keras.models.load_model(safe_mode=True)" in capsys.readouterr().err


def test_corrupted_object_in_the_bucket_is_refused(gcs_disk, tmp_path, capsys):
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp")
    make_sweep(store, tmp_path)
    key = read_json(store, "sw/trials/1/best.json")[0]["checkpoint"]["key"]
    on_disk = server.object_file(bucket, f"exp/{key}")
    data = bytearray(on_disk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size: only a checksum notices
    on_disk.write_bytes(bytes(data))

    target = tmp_path / "best"
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and key in err
    assert list(target.iterdir()) == []  # no model, no staging folder, no half of the files


def test_corrupted_file_in_a_local_store_is_refused(tmp_path, capsys):
    uri = str(tmp_path / "results")
    store = open_store(uri)
    make_sweep(store, tmp_path)
    key = read_json(store, "sw/trials/1/best.json")[0]["checkpoint"]["key"]
    path = tmp_path / "results" / key
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))

    target = tmp_path / "best"
    assert pull([f"{uri}/sw", "--to", str(target)]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert list(target.iterdir()) == []


def test_object_names_that_would_escape_the_target_are_refused(gcs, tmp_path, capsys):
    from google.cloud import storage

    _, bucket = gcs
    store = open_store(f"gs://{bucket}/exp")
    make_sweep(store, tmp_path)
    raw = storage.Client().bucket(bucket)
    escape = "../" * 6 + "escaped.txt"
    raw.blob(f"exp/sw/trials/1/tensorboard/{escape}").upload_from_string(b"evil")

    target = tmp_path / "deep" / "er" / "best"
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target), "--tensorboard", "--no-load-check"]) == 1
    assert "Refusing object name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list(target.iterdir()) == []  # refused while planning, before any download

    # A pointer naming a checkpoint outside the trial's folder is refused too.
    record, _ = read_json(store, "sw/trials/1/best.json")
    record["checkpoint"]["key"] = "sw/trials/1/checkpoints/../../../../outside.keras"
    raw.blob("exp/sw/trials/1/best.json").upload_from_string(json.dumps(record))
    assert pull([f"gs://{bucket}/exp/sw", "--to", str(target), "--no-load-check"]) == 1
    assert "Refusing checkpoint name" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["gs://my-bucket", "--to", "x"], "names no sweep"),
    (["gs://Bad_Bucket/sw", "--to", "x"], "breaks Cloud Storage's rules"),
])
def test_bad_pull_arguments_say_what_to_type(argv, message, capsys):
    assert pull(argv) == 1
    assert message in capsys.readouterr().err


def test_safe_join_refuses_climbing_and_symlinks_out_of_the_target(tmp_path):
    from cluster.pull import safe_join
    from cluster.storage import UnsafePath

    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (target / "link").symlink_to(tmp_path / "elsewhere")
    assert safe_join(target, "a/b.txt") == target / "a" / "b.txt"
    for name in ["../x", "/etc/passwd", "a/../../x", "link/x", "a\\..\\x", ""]:
        with pytest.raises(UnsafePath):
            safe_join(target, name)
