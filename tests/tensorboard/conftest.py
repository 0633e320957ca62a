"""A small real sweep (a multirun on the Ray launcher) and a real TensorBoard serving its dir, shared by
the tests in this folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import ports
from tests.conftest import LAUNCH, PROJECT_ROOT

# storage.uri=null: no copies into the project's results/ folder.
QUICK = ["trainer.epochs=2", "data.max_train_samples=300", "storage.uri=null"]
SWEEP = ["model=cnn,mlp", "lr=0.001,0.003"]
# Job folder (hydra.job.num) -> the values that sweep hands that trial.
TRIALS = {
    "0": {"model": "cnn", "lr": 0.001},
    "1": {"model": "cnn", "lr": 0.003},
    "2": {"model": "mlp", "lr": 0.001},
    "3": {"model": "mlp", "lr": 0.003},
}


class TensorBoard:
    """`python launch.py tensorboard DIR` on 127.0.0.1, stopped by its pid.

    Starting takes 15-30 s here (TensorBoard imports TensorFlow), so tests start it first and call
    `wait_ready` once they need it.
    """

    def __init__(self, log_dir: Path | str, log_file: Path, options: list[str] = ()):
        self.port = ports.port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = log_file
        self._log = open(log_file, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCH), "tensorboard", str(log_dir), "--host", "127.0.0.1", "--port", str(self.port),
             *options,
             # Reload every second so a test sees new event data quickly.
             "--", "--reload_interval", "1"],
            cwd=str(PROJECT_ROOT), stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120) -> "TensorBoard":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"TensorBoard exited: {self._log_file.read_text()[-2000:]}"
            try:
                if requests.get(f"{self.url}/data/runs", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"TensorBoard did not answer on {self.url}: {self._log_file.read_text()[-2000:]}")

    def get(self, path: str, **params):
        response = requests.get(f"{self.url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict):
        response = requests.post(f"{self.url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def session_groups(self) -> dict:
        """HParams rows as the dashboard's table asks for them, by name (the trial's run)."""
        answer = self.post("/data/plugin/hparams/session_groups", {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [], "startIndex": 0, "sliceSize": 100,
            "aggregationType": "AGGREGATION_AVG", "includeMetrics": True,
        })
        return {group["name"]: group for group in answer.get("sessionGroups", [])}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def history_of(job_dir: Path) -> list[dict]:
    return json.loads((job_dir / "metrics.json").read_text())["history"]


@pytest.fixture(scope="package")
def sweep(tmp_path_factory):
    """`launch.py -m` over 4 trials on embedded Ray while TensorBoard starts on the sweep dir
    (about 90 s on 2 cores)."""
    root = tmp_path_factory.mktemp("sweep")
    server = TensorBoard(root, tmp_path_factory.mktemp("tensorboard") / "tensorboard.log")
    try:
        result = subprocess.run(
            [sys.executable, str(LAUNCH), "-m", *SWEEP, *QUICK, f"hydra.sweep.dir={root}"],
            cwd=str(PROJECT_ROOT), capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        # The command to watch it comes first, before any trial starts.
        # The sweep says what it runs first (issue 14), then the command to watch it, before any trial starts.
        first, second = result.stdout.splitlines()[:2]
        assert first.startswith("Grid: 4 jobs") and second.startswith(f"Watch it: tensorboard --logdir {root}"), \
            result.stdout[:500]
        yield root, server.wait_ready()
    finally:
        server.stop()


@pytest.fixture(scope="package")
def sweep_dir(sweep) -> Path:
    return sweep[0]


@pytest.fixture(scope="package")
def sweep_tensorboard(sweep) -> TensorBoard:
    return sweep[1]
