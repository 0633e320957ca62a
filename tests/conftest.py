"""Fixtures shared by every test tier, and the session's environment: what a developer's shell exports (a
cluster address, an emulator, credentials) never reaches a test or the processes tests start.

Ports for test servers: tests/ports.py. A missing root, browser or npm: tests/capabilities.py (fails under CI).
"""

from __future__ import annotations

import os
import secrets
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
# cleaned os.environ, which holds the session's own Ray token (RAY_TEST_TOKEN). CI is kept: tests/capabilities.py
# reads it.
DEVELOPER_ENVIRONMENT = (
    "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE",
    "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCE_METADATA_DETECT_RETRIES",
    "HYDRA_FULL_ERROR",
)
_set_aside: dict[str, str] = {}
# The one Ray token of every Ray the tests start or reach, embedded (in pytest's process or a subprocess) or a
# test cluster (tests/launcher/conftest.py), in RAY_AUTH_TOKEN, which Ray reads before RAY_AUTH_TOKEN_PATH and
# ~/.ray/auth_token. Without it a local ray.init() (Ray 2.60 turns token mode on for a new local Ray) writes a
# token to the user's ~/.ray/auth_token, and a process keeps the first token it loads for its whole life: after
# test_hydra_launcher_suites' in-process Ray, pytest's own Jobs client sent that token to the test clusters,
# which refused it (403) whatever RAY_AUTH_TOKEN a later test set.
RAY_TEST_TOKEN = secrets.token_hex(32)


def _isolate_environment() -> None:
    for name in DEVELOPER_ENVIRONMENT:
        if name in os.environ and not (name == "RAY_AUTH_TOKEN" and os.environ[name] == RAY_TEST_TOKEN):
            _set_aside.setdefault(name, os.environ.pop(name))
    os.environ["RAY_AUTH_TOKEN"] = RAY_TEST_TOKEN


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


def launch_refused(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The launch exited 2 with one `Config error` line holding every expected text; returns that line."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Config error")]
    assert len(errors) == 1, result.stderr[-3000:]
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


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
