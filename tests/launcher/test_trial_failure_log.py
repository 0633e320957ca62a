"""A trial whose job config does not compose on its node fails before the job has a folder: its error still
goes to the trial.log the sweep's failure summary names (issue 20: the summary named files that existed
nowhere)."""

from __future__ import annotations

from omegaconf import OmegaConf

from cluster.launcher.tune_trial import log_failure_before_the_job


def sweep_config(sweep_dir, subdir="${hydra.job.num}"):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir), "subdir": subdir}}})


def test_the_error_is_in_the_job_folders_trial_log(tmp_path):
    try:
        raise FileNotFoundError("Primary config directory not found: /head/tmp/_ray_pkg_x/conf")
    except FileNotFoundError:
        path = log_failure_before_the_job(sweep_config(tmp_path / "sweep"), 3, "abc_00003")
    assert path == tmp_path / "sweep" / "3" / "trial.log"
    text = path.read_text()
    assert "trial abc_00003, job #3 failed before its job started" in text
    assert "FileNotFoundError: Primary config directory not found: /head/tmp/_ray_pkg_x/conf" in text


def test_a_custom_job_folder_is_not_guessed(tmp_path):
    try:
        raise ValueError("no")
    except ValueError:
        assert log_failure_before_the_job(sweep_config(tmp_path, "${hydra.job.override_dirname}"), 0, "t") is None
    assert list(tmp_path.iterdir()) == []
