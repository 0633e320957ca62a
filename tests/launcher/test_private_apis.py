"""Each private API of Hydra and Ray the launcher uses (cluster/private_apis.py), called as the launcher calls
it: an upgrade of Hydra or Ray that moves or changes one fails here, by name."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from cluster import private_apis


def parse(*lines: str) -> list:
    return OverridesParser.create().parse_overrides(list(lines))


def test_hydra_applies_value_overrides_in_place():
    config = OmegaConf.create({"lr": 0.1, "model": {"dropout": 0.0}})
    private_apis.apply_overrides(parse("++lr=0.5", "++model.dropout=0.25"), config)
    assert config.lr == 0.5 and config.model.dropout == 0.25


def test_hydra_computes_the_override_dirname():
    assert private_apis.overrides_dirname(parse("lr=0.1", "seed=2"), kv_sep="=", item_sep=",",
                                          exclude_keys=["seed"]) == "lr=0.1"


def test_hydra_expands_a_grid_into_jobs():
    batches = private_apis.grid_batches(parse("a=1,2", "b=x,y"), None)
    assert sorted(tuple(job) for batch in batches for job in batch) == [
        ("a=1", "b=x"), ("a=1", "b=y"), ("a=2", "b=x"), ("a=2", "b=y")]


def test_the_sweeper_shim_s_base_class_is_where_it_imports_it_from():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from hydra_plugins.ray_tune_launcher.ray_tune_sweeper import RayTuneSweeper

    assert issubclass(RayTuneSweeper, BasicSweeper) and callable(BasicSweeper.sweep)


def test_a_failed_job_return_gives_its_error_without_raising():
    job = JobReturn()
    error = RuntimeError("boom")
    job.status, job.return_value = JobStatus.FAILED, error
    assert private_apis.failed_job_error(job) is error
    with pytest.raises(RuntimeError):
        job.return_value  # the public getter raises (and logs) it


def test_hydra_builds_a_loader_on_a_search_path(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    (tmp_path / "config.yaml").write_text("where: here\n")
    try:
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
            search_path = GlobalHydra.instance().config_loader().get_search_path()
            loader = private_apis.config_loader(search_path)
            assert loader.load_configuration("config", [], RunMode.RUN).where == "here"
    finally:
        GlobalHydra.instance().clear()


def test_ray_lists_what_a_working_dir_ships_and_its_limit(tmp_path):
    (tmp_path / "kept.py").write_text("x = 1\n")
    (tmp_path / "pulled").mkdir()
    (tmp_path / "pulled" / "model.keras").write_bytes(b"0" * 10)
    (tmp_path / "pulled" / ".rayignore").write_text("*\n")
    seen = []
    private_apis.package_files(tmp_path, lambda path: seen.append(path.relative_to(tmp_path).as_posix()))
    assert "kept.py" in seen and "pulled/model.keras" not in seen
    assert private_apis.max_package_bytes() >= 100 * 2**20


def test_ray_prepares_and_validates_a_cluster_launcher_file():
    from cluster.definitions.cluster_config import load_cluster_config
    from tests.conftest import PROJECT_ROOT

    config = load_cluster_config(PROJECT_ROOT / "cluster" / "gcp-gpu.yaml")
    prepared = private_apis.prepare_and_validate_cluster(copy.deepcopy(config))
    assert prepared["cluster_name"] == config["cluster_name"] and "available_node_types" in prepared
    broken = {**copy.deepcopy(config), "max_workers": "many"}
    with pytest.raises(Exception, match="max_workers|many"):
        private_apis.prepare_and_validate_cluster(broken)


def test_ray_points_a_trial_at_the_folder_its_experiment_was_restored_in(tmp_path):
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    trial = Trial("run_trial", storage=StorageContext(str(tmp_path / "head"), "tune"), stub=True)
    trial.storage.trial_dir_name = "job_3"  # as Tune names it when the trial starts (init_local_path)
    assert trial.path == str(tmp_path / "head" / "tune" / "job_3")
    assert private_apis.move_trial_to(trial, str(tmp_path / "laptop" / "tune"))
    assert trial.path == str(tmp_path / "laptop" / "tune" / "job_3")
    assert not private_apis.move_trial_to(trial, str(tmp_path / "laptop" / "tune"))


def test_a_storage_client_has_the_http_session_whose_pool_the_data_cache_widens(gcs):
    """cluster.results.data_cache mounts a larger connection pool on it for its parallel downloads."""
    import requests

    from cluster.store.gcs import make_client

    session = private_apis.storage_http_session(make_client())
    assert isinstance(session, requests.Session)



# Each in a Python with a local Ray of its own (Tune's trial needs one for its error file): about 15 s. CI runs them.
TRIAL_FAILURES = """
import ray
from ray.tune.experiment import Trial
from ray.train._internal.storage import StorageContext
from pathlib import Path
from cluster import private_apis

class Interrupted(RuntimeError):
    pass

ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
trial = Trial("run_trial", storage=StorageContext(sys.argv[1], "tune"), stub=True, max_failures=1)
trial.storage.trial_dir_name = "job_0"
Path(trial.local_path).mkdir(parents=True)
private_apis.leave_uncounted(lambda error: isinstance(error, Interrupted))
for _ in range(3):
    trial.handle_error(Interrupted("stopped on request"))
print("after 3 interruptions:", trial.num_failures, trial.should_recover())
trial.handle_error(RuntimeError("a crash"))
print("after 1 crash:", trial.num_failures, trial.should_recover())
trial.handle_error(RuntimeError("another crash"))
print("after 2 crashes:", trial.num_failures, trial.should_recover())
print("error file says:", "stopped on request" in Path(trial.error_file).read_text())
"""
TRIAL_SIGTERMED = """
import os, signal, threading, time, ray
from ray import tune
from cluster.private_apis import actor_death_cause

FOLDER = sys.argv[1]

def trainable(config):
    with open(os.path.join(FOLDER, "pid"), "w") as file:
        file.write(str(os.getpid()))
    for step in range(100):
        time.sleep(0.2)
        tune.report({"step": step})

def sigterm_the_trial():
    pid_file = os.path.join(sys.argv[1], "pid")
    while not os.path.exists(pid_file):
        time.sleep(0.2)
    time.sleep(2)
    os.kill(int(open(pid_file).read()), signal.SIGTERM)

ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
threading.Thread(target=sigterm_the_trial, daemon=True).start()
grid = tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0)).fit()
print("cause:", actor_death_cause(grid[0].error))
"""

def in_python_with_ray(code: str, tmp_path: Path) -> str:
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    result = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(tmp_path)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_tune_leaves_out_of_max_failures_the_failures_the_launcher_does_not_count(tmp_path):
    """cluster.launcher.trial_failures hands Tune a trial's interruptions as a preempted node's actor error."""
    output = in_python_with_ray(TRIAL_FAILURES, tmp_path)
    assert "after 3 interruptions: 0 True" in output, output
    assert "after 1 crash: 1 True" in output and "after 2 crashes: 2 False" in output, output
    assert "error file says: True" in output, output


@pytest.mark.slow
def test_ray_says_a_trial_s_actor_died_of_a_sigterm(tmp_path):
    """A trial's process SIGTERMed (as a preempted VM's are): the error Tune gets names it."""
    assert "cause: SIGTERM" in in_python_with_ray(TRIAL_SIGTERMED, tmp_path)
