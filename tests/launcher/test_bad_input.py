"""Bad input stops a sweep before any job starts, with a message that names the problem. How long a user
waits for these refusals is measured by bench/fail_fast.py, not asserted here."""

from __future__ import annotations

import re

from tests import ports

from .conftest import QUICK, sweep

# Lines of a driver that went on to Ray: the launcher's own (cluster/launcher/ray_session.py), then Ray's.
RAY_STARTED = ("Attaching to the Ray cluster at", "Starting an embedded local Ray",
               "Connecting to existing Ray cluster", "Started a local Ray")


def _no_job_started(sweep_dir):
    return not any(path.is_dir() and path.name.isdigit() for path in sweep_dir.glob("*"))


def test_unreachable_address_is_refused_before_ray_tries_it(tmp_path):
    port = ports.port()  # the session's own: nothing listens there
    result = sweep(["model=cnn,lstm", *QUICK, f"hydra.launcher.address=127.0.0.1:{port}"], tmp_path / "s", timeout=120)
    assert result.returncode != 0
    # The launcher's TCP probe said so (Ray's own client would retry a dead address for a long time), after
    # every job was checked and before any line of Ray's.
    console = result.stdout + result.stderr
    assert (f"No Ray cluster answers at 127.0.0.1:{port} (tried for 10 s: [Errno 111] Connection refused)"
            in result.stderr)
    assert "Sweep folder" in result.stdout and not [line for line in RAY_STARTED if line in console], console[-3000:]
    assert _no_job_started(tmp_path / "s")


def test_ray_address_environment_variable_is_used(tmp_path):
    port = ports.port()
    result = sweep(["model=cnn", *QUICK], tmp_path / "s", address=f"127.0.0.1:{port}", timeout=120)
    assert result.returncode != 0 and f"No Ray cluster answers at 127.0.0.1:{port}" in result.stderr


def test_override_that_does_not_compose_stops_the_sweep_before_ray(tmp_path):
    ray_tmp = tmp_path / "ray-tmp"  # where an embedded Ray would make its session folder (Ray honours RAY_TMPDIR)
    result = sweep(["model=cnn,transformer", "lr=1e-3,1e-4", *QUICK], tmp_path / "s", timeout=120,
                   extra_env={"RAY_TMPDIR": str(ray_tmp)})
    assert result.returncode == 2
    # Hydra's sweeper composes every job of the batch before handing it to the launcher.
    assert result.stderr.strip() == ("Config error: model=transformer: there is no such option in conf/model/. "
                                     "Allowed: cnn, gru, lstm, mlp, text_lstm, transfer. "
                                     "For example `model=cnn`."), result.stderr
    console = result.stdout + result.stderr
    assert not [line for line in RAY_STARTED if line in console], console[-3000:]
    assert not ray_tmp.exists(), "an embedded Ray started (it made a session folder)"
    assert _no_job_started(tmp_path / "s")


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
    assert ("Trial #0 asks for resources.cpus=1, resources.gpus=3, but no node of the Ray cluster has that much"
            in result.stderr)
    assert re.search(r"\(node [\d.]+: 1 CPU, 2 GPU; node [\d.]+: 1 CPU, 2 GPU\)", result.stderr), result.stderr
    assert _no_job_started(tmp_path / "s")
    # This one did reach Ray, and says so with the first of RAY_STARTED (whose absence the tests above check).
    assert f"{RAY_STARTED[0]} {two_node_cluster.address}" in result.stdout + result.stderr

    result = sweep(["model=cnn", "resources.cpus=4", *QUICK], tmp_path / "c", address=two_node_cluster.address,
                   timeout=180)
    assert result.returncode != 0 and "asks for resources.cpus=4, resources.gpus=0" in result.stderr
