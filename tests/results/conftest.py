"""Storage tests run on both backends: a local folder and the GCS emulator (tests/gcs_emulator.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["local", "gs"])
def store_uri(request, tmp_path):
    """A store URI on each backend (the gs one on the shared emulator)."""
    if request.param == "local":
        return str(tmp_path / "bucket" / "experiments")
    _, bucket = request.getfixturevalue("gcs")
    return f"gs://{bucket}/experiments"
