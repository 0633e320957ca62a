"""`python launch.py jobs ...` takes its options where Ray users put them: `--address` before or after the
subcommand (`ray job logs ID --address URL` is how Ray's own CLI is typed)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from cluster.submission.jobs_cli import _parse
from tests.conftest import LAUNCH, PROJECT_ROOT


@pytest.mark.parametrize("argv, expected", [
    (["logs", "ID", "--address", "http://h:1"], "http://h:1"),
    (["--address", "http://h:1", "logs", "ID", "--follow"], "http://h:1"),
    (["stop", "ID", "--address=http://h:2"], "http://h:2"),
    (["list", "--address", "http://h:3"], "http://h:3"),
    (["logs", "ID"], None),
])
def test_address_is_taken_before_or_after_the_subcommand(argv, expected):
    assert _parse(argv).address == expected


def test_jobs_logs_with_the_address_after_reaches_the_address(tmp_path):
    """Not "unrecognized arguments": the command tries the address it was given (nothing listens there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = subprocess.run([sys.executable, str(LAUNCH), "jobs", "logs", "raylaunch-x", "--address",
                             f"http://127.0.0.1:{closed}"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert "unrecognized arguments" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{closed}" in result.stderr, result.stderr
