"""What a submission checks and builds on the laptop before anything is uploaded: the command the cluster
runs (overrides exactly as typed), the checkout's size against Ray's upload limit, stores the laptop could
not reach afterwards, and credentials that must never be forwarded."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from cluster.submission.submit import (
    SubmitError,
    check_package_size,
    check_results_reachable,
    cluster_command,
    forwarded_env,
)


def test_overrides_reach_the_cluster_exactly_as_typed():
    typed = ["-m", "lr=tag(log,interval(1e-4,1e-2))", "model.units=[64,32]", "data.class_names=[it's,fine]",
             "storage.uri=gs://b/exp", "hydra.launcher.submit=http://127.0.0.1:8265"]
    command = cluster_command(typed, "multirun/2026-12-01/10-00-00", "~/raylaunch", app="python launch.py")
    # The job's shell (POSIX sh, as Ray runs entrypoints) sees the same words, minus the submission.
    words = subprocess.run(["sh", "-c", f'for w in {command.split(" ", 2)[2]}; do printf "%s\\n" "$w"; done'],
                           capture_output=True, text=True, env={"HOME": "/home/ray"}).stdout.splitlines()
    assert words[:5] == typed[:5]
    assert "hydra.launcher.submit=http://127.0.0.1:8265" not in words
    assert words[-2:] == ["hydra.sweep.dir=/home/ray/raylaunch/multirun/2026-12-01/10-00-00",
                          "hydra.launcher.submit=null"]
    assert shlex.split(command)[:2] == ["python", "launch.py"]


def test_an_absolute_sweep_folder_keeps_its_name_under_the_cluster_folder():
    command = cluster_command(["-m", "hydra.sweep.dir=/data/sweeps/lr-search"], "/data/sweeps/lr-search", "/mnt/runs",
                              app="python launch.py")
    assert command.endswith("hydra.sweep.dir=/mnt/runs/sweeps/lr-search hydra.launcher.submit=null")


def test_a_checkout_over_rays_upload_limit_is_refused_with_what_to_exclude(tmp_path):
    (tmp_path / "launch.py").write_text("print('hi')\n")
    (tmp_path / "data").mkdir()
    with open(tmp_path / "data" / "big.npz", "wb") as handle:  # sparse: no disk is spent
        handle.truncate(600 * 2**20)
    with pytest.raises(SubmitError) as refused:
        check_package_size(tmp_path)
    message = str(refused.value)
    assert "over Ray's limit of 512 MiB" in message and "data (600 MiB)" in message and ".rayignore" in message
    # Listed in .rayignore (Ray honours it, as it does .gitignore): the same checkout fits.
    (tmp_path / ".rayignore").write_text("data/\n")
    assert check_package_size(tmp_path) < 2**20


@pytest.mark.parametrize("uri, words", [
    (None, "with storage.uri=null the sweep's checkpoints and logs would stay on the cluster's disks"),
    ("results", "with storage.uri=results a relative folder would be inside the job's copy"),
])
def test_stores_the_laptop_could_not_reach_afterwards_are_refused(uri, words):
    with pytest.raises(SubmitError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_results_reachable({uri}, "http://127.0.0.1:8265", "storage.uri")
    check_results_reachable({"gs://my-bucket/exp"}, "http://127.0.0.1:8265", "storage.uri")
    check_results_reachable({"/mnt/nfs/results"}, "http://127.0.0.1:8265", "storage.uri")  # a folder every node mounts


def test_credentials_are_never_forwarded(monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/key.json")
    monkeypatch.setenv("WANDB_PROJECT", "mine")
    with pytest.raises(SubmitError, match="credentials are never sent"):
        forwarded_env(["WANDB_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"])
    assert forwarded_env(["WANDB_PROJECT"]) == {"WANDB_PROJECT": "mine"}
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"] not in str(forwarded_env(["WANDB_PROJECT"]))
