"""`python launch.py` with storage, in a subprocess as a user runs it: checks before training, the
uploads of a real training run, and `launch.py pull` bringing back a model that predicts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests import ports
from tests.conftest import PROJECT_ROOT, run_launch
from tests.gcs_permissions import PermissionDenied

QUICK = ["trainer.epochs=2", "data.max_train_samples=200", "storage.sync_seconds=1"]


def no_google_env(tmp_path: Path) -> dict:
    google = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")
    env = {k: v for k, v in os.environ.items() if k not in google}
    # No gcloud configuration either: application-default credentials cannot be found on disk.
    env.update(HOME=str(tmp_path / "home"), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    return env


def assert_refused_before_training(result, message: str):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Storage error: " in result.stderr and message in result.stderr, result.stderr
    assert "Epoch 1/" not in result.stdout + result.stderr


def test_malformed_uri_fails_before_training(tmp_path, tensorflow_unimportable):
    result = run_launch("storage.uri=s3://bucket/x", cwd=tmp_path, env=tensorflow_unimportable)
    assert_refused_before_training(result, "Invalid storage URI 's3://bucket/x'")


def test_missing_bucket_fails_before_training(gcs, tmp_path, tensorflow_unimportable):
    server, _ = gcs
    result = run_launch("storage.uri=gs://no-such-bucket/exp", cwd=tmp_path,
                        env={"STORAGE_EMULATOR_HOST": server.url, **tensorflow_unimportable})
    assert_refused_before_training(result, "bucket 'no-such-bucket' does not exist")


def test_unwritable_local_folder_fails_before_training(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = run_launch(f"storage.uri={tmp_path}/a-file/results", cwd=tmp_path)
    assert result.returncode == 2 and "Storage error: " in result.stderr and "a-file" in result.stderr


def connections_made(hole: socket.socket) -> int:
    """How many connections reached the listening socket since the last call. Nobody accepts them while a
    client waits, so to the client nothing ever answers; they wait in the socket's backlog until counted."""
    hole.setblocking(False)
    count = 0
    while True:
        try:
            connection, _ = hole.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def test_missing_credentials_are_reported_after_one_metadata_server_probe(tmp_path, tensorflow_unimportable):
    """No emulator, no ADC, and a "metadata server" that accepts connections but never answers (what a
    firewalled 169.254.169.254 looks like). google-auth's defaults probe it 3 times, 3 s each (about 13 s);
    the store allows one probe (GCE_METADATA_DETECT_RETRIES=1 in cluster/store/gcs.py), counted here as
    connections. How long the user waits for the message: bench/fail_fast.py."""
    probe = (
        "from cluster.store import preflight, StorageError\n"
        "try:\n    preflight('gs://my-bucket/exp')\nexcept StorageError as e:\n    print(e)\n"
    )
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", ports.port()))
        hole.listen(64)
        address = f"127.0.0.1:{hole.getsockname()[1]}"
        env = {**no_google_env(tmp_path), "GCE_METADATA_IP": address, "GCE_METADATA_HOST": address}
        found = subprocess.run(
            [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert (
            "No Google Cloud credentials found" in found.stdout
            and "gcloud auth application-default login" in found.stdout
        ), found.stdout + found.stderr[-3000:]
        assert connections_made(hole) == 1, "the metadata server was probed more than once (or not at all)"

        result = run_launch("storage.uri=gs://my-bucket/exp", cwd=tmp_path, env={**env, **tensorflow_unimportable})
        assert_refused_before_training(result, "No Google Cloud credentials found")
        assert connections_made(hole) == 1


def test_a_results_bucket_this_account_may_not_write_fails_before_training(gcs, tmp_path, tensorflow_unimportable):
    """Cloud Storage answers 403 to an account without write permission (the emulator enforces none: a proxy in
    front of it answers for the bucket as GCS does): a run and a sweep stop before training, naming the role."""
    server, bucket = gcs
    with PermissionDenied(server.url, denied={bucket}) as proxy:
        env = {"STORAGE_EMULATOR_HOST": proxy.url, **tensorflow_unimportable}
        run = run_launch(f"storage.uri=gs://{bucket}/exp", cwd=tmp_path, env=env)
        sweep = run_launch("-m", f"storage.uri=gs://{bucket}/exp", "lr=1e-3,1e-4", cwd=tmp_path, env=env)
    assert_refused_before_training(run, f"gs://{bucket}/exp")
    for result in (run, sweep):
        assert result.returncode == 2 and "permission denied" in result.stderr, result.stderr[-3000:]
        assert f"needs to read and write gs://{bucket}: grant it roles/storage.objectAdmin" in result.stderr
    assert "no job of this sweep was started" in sweep.stderr and proxy.refused


def test_run_uploads_to_the_bucket_and_pull_brings_back_a_model_that_predicts(gcs, tmp_path):
    server, bucket = gcs
    env = {"STORAGE_EMULATOR_HOST": server.url}
    uri = f"gs://{bucket}/experiments"
    result = run_launch(f"storage.uri={uri}", *QUICK, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"uploaded:    {uri}/" in result.stdout
    sweep = next(line.split()[-3] for line in result.stdout.splitlines() if "pull:" in line).rsplit("/", 1)[-1]

    listing = run_launch("pull", "--list", uri, cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    assert f"{uri}/{sweep}  [finished]  best: trial 0, val_loss" in listing.stdout
    # The trial's row shows what the job is judged on (its test metrics) beside its best value.
    header, row = listing.stdout.splitlines()[1:3]
    assert header.split()[:3] == ["trial", "value", "epoch"] and {"test_loss", "test_accuracy"} <= set(header.split())
    accuracy = header.split().index("test_accuracy") + 1  # the row starts with the best trial's `*`
    assert 0.0 <= float(row.split()[accuracy]) <= 1.0

    target = tmp_path / "pulled"
    pulled = run_launch("pull", f"{uri}/{sweep}", "--to", str(target), cwd=tmp_path, env=env)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert "loads:" in pulled.stdout and "Checksums verified for 4 file(s)" in pulled.stdout

    import keras

    from trainers.datasets import load_splits

    job_dir = Path(next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Outputs:")))
    pulled_model = keras.models.load_model(target / "best.keras", safe_mode=True)
    local_model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    from omegaconf import OmegaConf

    data_cfg = OmegaConf.load(target / "resolved_config.yaml").data
    x_test = load_splits(data_cfg).x_test[:64]
    predictions = pulled_model.predict(x_test, verbose=0)
    assert predictions.shape == (len(x_test), 10)
    np.testing.assert_allclose(predictions, local_model.predict(x_test, verbose=0), rtol=0, atol=0)

    metrics = json.loads((target / "metrics.json").read_text())
    assert metrics == json.loads((job_dir / "metrics.json").read_text())
    from google.cloud import storage

    names = {b.name for b in storage.Client().list_blobs(bucket, prefix=f"experiments/{sweep}/")}
    assert {f"experiments/{sweep}/manifest.json", f"experiments/{sweep}/best.json"} <= names
    assert any("/tensorboard/" in name and "tfevents" in name for name in names)


def test_sweep_trials_upload_and_the_manifest_then_best_pointer_come_last(gcs, tmp_path):
    """A 2-trial Ray sweep into the emulator: every trial's files, the manifest and the best pointer."""
    from google.cloud import storage

    server, bucket = gcs
    env = {"STORAGE_EMULATOR_HOST": server.url}
    result = run_launch("-m", "lr=1e-3,3e-3", f"storage.uri=gs://{bucket}/exp", "trainer.epochs=1",
                        "data.max_train_samples=200", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    blobs = {b.name: b for b in storage.Client().list_blobs(bucket, prefix="exp/")}
    sweeps = {name.split("/")[1] for name in blobs}
    assert len(sweeps) == 1
    sweep = sweeps.pop()
    for trial in ("0", "1"):
        for name in ("best.json", "metrics.json", "resolved_config.yaml"):
            assert f"exp/{sweep}/trials/{trial}/{name}" in blobs
    manifest = json.loads(blobs[f"exp/{sweep}/manifest.json"].download_as_bytes())
    best = json.loads(blobs[f"exp/{sweep}/best.json"].download_as_bytes())
    assert manifest["best_trial"] == best["trial"] and len(manifest["leaderboard"]) == 2
    assert blobs[f"exp/{sweep}/best.json"].generation > blobs[f"exp/{sweep}/manifest.json"].generation
    assert f"python launch.py pull gs://{bucket}/exp/{sweep} --to DIR" in result.stdout
