"""What a test needs from the machine (root, a program on PATH, a Python package), and the one rule for when it
is missing: under CI (any non-empty CI environment variable: "true", "1", "yes", ...) the test FAILS, saying
what is missing and how to install it; elsewhere (a developer's machine) it is skipped with the same message.
A CI run can then never pass with a tier silently skipped.

    from tests.capabilities import require_programs
    require_programs("chromium", "chromedriver",
                     install="`bash .ci/setup` as root (apt-get install chromium chromium-driver)")
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Any non-empty CI counts, whatever its value (CI systems set "true", "1" or others)."""
    return bool(os.environ.get("CI"))


def missing(what: str, install: str) -> NoReturn:
    """Fail under CI, skip elsewhere: `what` is missing, `install` says how to get it."""
    message = f"{what}; to install: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI={os.environ['CI']!r}: a missing capability fails the run instead of skipping)",
                    pytrace=False)
    pytest.skip(message)


def require_programs(*programs: str, install: str) -> None:
    absent = [name for name in programs if shutil.which(name) is None]
    if absent:
        missing(f"needs {', '.join(f'`{name}`' for name in absent)} on PATH", install)


def require_modules(*modules: str, install: str) -> None:
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if absent:
        missing(f"needs the Python package(s) {', '.join(absent)}", install)


def require_root(why: str, install: str) -> None:
    if os.geteuid() != 0:
        missing(f"needs root: {why}", install)
