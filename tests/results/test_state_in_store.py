"""`python launch.py` with a bucket (the GCS emulator): the job's resumable state goes to the store after
every epoch, a rerun on a machine with none of the job's files continues from it, and a store that stops
answering mid-job never holds training up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import LAUNCH, run_launch, wait_for

QUICK = ["storage.sync_seconds=1", "trainer.verbose=2",
         "trainer.callbacks.early_stopping.enabled=false"]


def _metrics(job_dir):
    return json.loads((job_dir / "metrics.json").read_text())


def test_a_rerun_on_an_empty_disk_continues_from_the_state_in_the_bucket(gcs, tmp_path):
    server, bucket = gcs
    env = {"STORAGE_EMULATOR_HOST": server.url}
    uri = f"gs://{bucket}/exp"
    job_dir = tmp_path / "run"
    first = run_launch(f"storage.uri={uri}", "trainer.epochs=2", "data.max_train_samples=300", *QUICK,
                       f"hydra.run.dir={job_dir}", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    first_history = _metrics(job_dir)["history"]
    # The other machine has only the run folder's claim on the sweep name (what a resumed sweep's driver
    # keeps): no state, no checkpoint, no event files.
    for name in os.listdir(job_dir):
        if name != "store.json":
            shutil.rmtree(job_dir / name) if (job_dir / name).is_dir() else (job_dir / name).unlink()

    second = run_launch(f"storage.uri={uri}", "trainer.epochs=4", "data.max_train_samples=300", *QUICK,
                        f"hydra.run.dir={job_dir}", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"[raylaunch] resuming after epoch 2 from {uri}/run/trials/0/state/e0002-" in second.stdout
    metrics = _metrics(job_dir)
    assert metrics["resumed_from_epoch"] == 2
    assert metrics["history"][:2] == first_history, "the epochs trained elsewhere come with the state"
    assert [epoch["epoch"] for epoch in metrics["history"]] == [1, 2, 3, 4]
    # The best checkpoint came back too: the job's final evaluation scores the best epoch's weights.
    assert (job_dir / "checkpoints" / "best.keras").is_file()


@pytest.mark.slow  # about 30 s on 2 cores
def test_a_store_that_stops_answering_never_holds_training_up(gcs_disk, tmp_path):
    """The emulator is frozen (SIGSTOP: connections open, no answer) after the first epoch's state is stored
    and stays frozen until the job has ended: a training thread waiting on the store would never finish."""
    server, bucket = gcs_disk
    # Epochs of a fraction of a second: enough of them that the upload thread, blocked 5 s per request,
    # gets to a state upload while training goes on.
    epochs = 50
    env = {**os.environ, "STORAGE_EMULATOR_HOST": server.url}
    job_dir = tmp_path / "run"
    log = open(tmp_path / "console.log", "w")
    job = subprocess.Popen(
        [sys.executable, str(LAUNCH), f"storage.uri=gs://{bucket}/exp", f"trainer.epochs={epochs}", *QUICK,
         "data.max_train_samples=1500",
         "storage.upload_timeout_seconds=5", "storage.close_timeout_seconds=5", f"hydra.run.dir={job_dir}"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    frozen = False
    try:
        state_pointer = server.root / bucket / "exp" / "run" / "trials" / "0" / "state.json"
        wait_for(state_pointer.is_file, 240, "the first state upload", interval=0.2)
        stored_epoch = json.loads(state_pointer.read_text())["epoch"]
        os.kill(server.process.pid, signal.SIGSTOP)
        frozen = True
        assert job.wait(timeout=300) == 0, (tmp_path / "console.log").read_text()[-3000:]
    finally:
        if frozen:
            os.kill(server.process.pid, signal.SIGCONT)
        if job.poll() is None:
            job.kill()
        log.close()
    console = (tmp_path / "console.log").read_text()
    assert [epoch["epoch"] for epoch in _metrics(job_dir)["history"]] == list(range(1, epochs + 1))
    assert stored_epoch < epochs
    # Said in the job's log, whichever transfer the frozen store held the upload thread in: the newest state,
    # the last epoch's, is not in the store (a retry elsewhere would resume from an older one).
    assert any(f"resumable state of epoch {epochs} " in line and ("NOT uploaded" in line or "not in the store" in line)
               for line in console.splitlines()), console[-3000:]
    assert "NOT uploaded" in console or "gave up waiting" in console, console[-2000:]
