"""Fixtures shared by every test tier, and the session's environment: what a developer's shell exports (a
cluster address, an emulator, credentials) never reaches a test or the processes tests start.

Ports for test servers: tests/ports.py. A missing root, browser or npm: tests/capabilities.py (fails under CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.gcs_emulator import FakeGCS

# Read by the code under test (Ray's client and Jobs API, google-cloud-storage, google-auth, Hydra) from the
# environment. Removed when this file is imported (nothing imported above reads them; pytest loads it before
# collecting any test module) and again at each session's start; restored when the session ends. A test that
# wants one sets it itself (monkeypatch.setenv, env=); subprocesses inherit, or are given a copy of, the
# cleaned os.environ. CI is kept: tests/capabilities.py reads it.
DEVELOPER_ENVIRONMENT = (
    "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE",
    "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCE_METADATA_DETECT_RETRIES",
    "HYDRA_FULL_ERROR",
)
_set_aside: dict[str, str] = {}


def _isolate_environment() -> None:
    for name in DEVELOPER_ENVIRONMENT:
        if name in os.environ:
            _set_aside.setdefault(name, os.environ.pop(name))


_isolate_environment()


def pytest_configure(config):
    _isolate_environment()  # again: a second session in the same process (pytest.main) after a restore


def pytest_unconfigure(config):
    for name in DEVELOPER_ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update(_set_aside)
    _set_aside.clear()


PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAUNCH = PROJECT_ROOT / "launch.py"
# Jobs run from a scratch folder, as a user's would: relative outputs (the default `results/` store,
# `outputs/`) land there instead of in the repository.
SCRATCH_CWD = Path(tempfile.mkdtemp(prefix="launch-cwd-"))


def run_launch(
    *args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python launch.py ARGS` as a user would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(LAUNCH), *args],
        cwd=str(cwd or SCRATCH_CWD),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate, timeout: float = 20.0, what: str = "the condition", interval: float = 0.1):
    """Poll until predicate() is truthy and return its value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def tensorflow_unimportable(tmp_path):
    """Environment under which importing tensorflow fails: proves an error came before any TF work."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tensorflow.py").write_text("raise ImportError('tensorflow must not be imported for a bad config')\n")
    return {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def launch():
    return run_launch


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    server = FakeGCS(tmp_path_factory.mktemp("gcs"), backend="memory")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gcs(gcs_server, monkeypatch):
    """The shared server with STORAGE_EMULATOR_HOST pointing at it and a fresh bucket: (server, bucket)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server, gcs_server.create_bucket()


@pytest.fixture
def gcs_disk(tmp_path, monkeypatch):
    """A server of this test's own, on the filesystem backend (restartable, corruptible): (server, bucket)."""
    server = FakeGCS(tmp_path, backend="filesystem")
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    try:
        yield server, server.create_bucket()
    finally:
        server.stop(kill=True)
