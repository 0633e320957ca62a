"""The test session itself: a developer's environment never reaches a test or its subprocesses (tests/conftest.py),
a missing capability fails under any non-empty CI and is skipped elsewhere (tests/capabilities.py), and test
ports are never handed out twice (tests/ports.py).

The first two run a tiny pytest session in a subprocess, with tests/conftest.py loaded as a plugin, bogus values
in every variable the session must set aside, and PATH pointing at an empty folder (no browser there)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from tests import ports
from tests.conftest import DEVELOPER_ENVIRONMENT, PROJECT_ROOT

INNER_TESTS = '''
import json, os, subprocess, sys

from tests.capabilities import require_programs
from tests.conftest import DEVELOPER_ENVIRONMENT, RAY_TEST_TOKEN

# All the session sets: its own Ray token, which every Ray of the session uses.
SESSION_OWN = {"RAY_AUTH_TOKEN": RAY_TEST_TOKEN}


def test_the_developer_environment_is_set_aside():
    assert {name: os.environ[name] for name in DEVELOPER_ENVIRONMENT if name in os.environ} == SESSION_OWN


def test_a_subprocess_gets_the_cleaned_environment():
    code = ("import json, os, sys; print(json.dumps({name: os.environ[name] for name in sys.argv[1:] "
            "if name in os.environ}))")
    seen = subprocess.run([sys.executable, "-c", code, *DEVELOPER_ENVIRONMENT], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(seen.stdout) == SESSION_OWN


def test_needs_a_browser():
    require_programs("chromium", "chromedriver", install="apt-get install -y chromium chromium-driver")
'''
# pytest.main in a process of its own, then what the environment holds once the session has ended.
RUNNER = '''
import json, os, sys
import pytest
code = pytest.main(sys.argv[2:])
print(json.dumps({"exit": int(code), "after": {name: os.environ.get(name) for name in sys.argv[1].split(",")}}))
'''


def run_inner_session(tmp_path, ci: str | None) -> tuple[dict, dict, dict, str]:
    """(outcome and message of each inner test, the bogus variables, what they were after the session, output)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's settings (addopts, testpaths)
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    bogus = {name: f"bogus-{name.lower()}" for name in DEVELOPER_ENVIRONMENT}
    env = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": str(empty), "HOME": str(tmp_path), **bogus}
    if ci is not None:
        env["CI"] = ci
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(DEVELOPER_ENVIRONMENT), "-p", "tests.conftest",
         "-p", "no:cacheprovider", f"--junitxml={report}", "-rA", str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        found = [(child.tag, child.get("message", "")) for child in case
                 if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = found[0] if found else ("passed", "")
    return outcomes, bogus, summary["after"], output


@pytest.mark.parametrize("ci, browser_test", [("yes", "failure"), ("1", "failure"), ("", "skipped"), (None, "skipped")])
def test_a_developer_environment_never_reaches_a_test_and_ci_never_skips(tmp_path, ci, browser_test):
    outcomes, bogus, after, output = run_inner_session(tmp_path, ci)
    assert outcomes["test_the_developer_environment_is_set_aside"] == ("passed", ""), output[-3000:]
    assert outcomes["test_a_subprocess_gets_the_cleaned_environment"] == ("passed", ""), output[-3000:]
    # Under any non-empty CI the missing browser fails the run; elsewhere it is a skip. Either way it says
    # what is missing and how to install it.
    kind, message = outcomes["test_needs_a_browser"]
    assert kind == browser_test, output[-3000:]
    assert "`chromium`, `chromedriver` on PATH" in message and "apt-get install -y chromium chromium-driver" in message
    # Set aside for the session, not lost: the process that ran it has them back.
    assert after == bogus, output[-3000:]


def test_ports_are_never_handed_out_twice():
    handed = [ports.port() for _ in range(100)]
    low, high = ports.port_range(40)
    ranged = list(range(low, high + 1))
    assert len(set(handed + ranged)) == len(handed) + len(ranged) == 140
    ephemeral_low, ephemeral_high = ports._ephemeral_range()
    for port in handed + ranged:
        assert not ephemeral_low <= port <= ephemeral_high  # nothing binding port 0 can be given it
        assert not 10001 <= port <= 19999 and port not in (6379, 8265, 52365)  # Ray's own defaults


def test_another_process_never_gets_this_sessions_ports():
    """Two test sessions on one machine: a second process leases other blocks."""
    mine = {ports.port() for _ in range(10)}
    code = ("import json; from tests import ports; "
            "print(json.dumps([ports.port() for _ in range(200)]))")
    other = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           check=True, timeout=60)
    theirs = set(json.loads(other.stdout))
    assert len(theirs) == 200 and not mine & theirs
    # Not by luck: none of theirs is in a block this process holds.
    assert not [port for port in theirs if any(start <= port < start + ports.BLOCK for start in ports._leased)]
