"""Bad input stops a sweep before any job starts, quickly, with a message that names the problem."""

from __future__ import annotations

import re
import time

from tests import ports

from .conftest import QUICK, sweep


def _no_job_started(sweep_dir):
    return not any(path.is_dir() and path.name.isdigit() for path in sweep_dir.glob("*"))


def test_unreachable_address_fails_within_seconds(tmp_path):
    port = ports.port()  # nothing listens there
    started = time.time()
    result = sweep(["model=cnn,lstm", *QUICK, f"hydra.launcher.address=127.0.0.1:{port}"], tmp_path / "s", timeout=120)
    elapsed = time.time() - started
    assert result.returncode != 0
    assert f"No Ray cluster answers at 127.0.0.1:{port}" in result.stderr
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert _no_job_started(tmp_path / "s")


def test_ray_address_environment_variable_is_used(tmp_path):
    port = ports.port()
    result = sweep(["model=cnn", *QUICK], tmp_path / "s", address=f"127.0.0.1:{port}", timeout=120)
    assert result.returncode != 0 and f"No Ray cluster answers at 127.0.0.1:{port}" in result.stderr


def test_override_that_does_not_compose_stops_the_sweep_before_ray(tmp_path):
    started = time.time()
    result = sweep(["model=cnn,transformer", "lr=1e-3,1e-4", *QUICK], tmp_path / "s", timeout=120)
    assert result.returncode != 0
    # Hydra's sweeper composes every job of the batch before handing it to the launcher.
    assert "Could not find 'model/transformer'" in result.stderr and "Available options in 'model'" in result.stderr
    assert "Started a local Ray" not in result.stdout + result.stderr
    assert _no_job_started(tmp_path / "s")
    assert time.time() - started < 60


def test_value_the_job_refuses_stops_the_sweep(tmp_path):
    result = sweep(["model=cnn", "lr=1e-3,-1", *QUICK], tmp_path / "s", timeout=120)
    assert result.returncode != 0
    assert "Job #1 (model=cnn lr=-1" in result.stderr and "Invalid value for `lr`: received -1" in result.stderr
    assert _no_job_started(tmp_path / "s")
    assert "Traceback" not in result.stderr


def test_trial_larger_than_every_node_is_refused_with_the_numbers(tmp_path, two_node_cluster):
    result = sweep(["model=cnn,lstm", "resources.gpus=3", *QUICK], tmp_path / "s", address=two_node_cluster.address,
                   timeout=180)
    assert result.returncode != 0
    assert "Trial #0 asks for resources.cpus=1, resources.gpus=3, but no node of the Ray cluster has that much" in result.stderr
    assert re.search(r"\(node [\d.]+: 1 CPU, 2 GPU; node [\d.]+: 1 CPU, 2 GPU\)", result.stderr), result.stderr
    assert _no_job_started(tmp_path / "s")

    result = sweep(["model=cnn", "resources.cpus=4", *QUICK], tmp_path / "c", address=two_node_cluster.address,
                   timeout=180)
    assert result.returncode != 0 and "asks for resources.cpus=4, resources.gpus=0" in result.stderr
