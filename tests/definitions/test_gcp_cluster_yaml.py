"""cluster/gcp-gpu.yaml passes what `ray up` checks before it calls GCP (Ray's prepare_config and
validate_config), and this project's checks for what Ray leaves to GCP. Each deliberate mistake is caught
with the node type or command and field named. Offline, no cloud: GCP's bootstrap is never called."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from cluster.definitions.cluster_config import (
    ClusterConfigError,
    check_gcp_cluster_config,
    load_cluster_config,
    machine_gpus,
    main,
    prepare_and_validate,
)
from tests.definitions.shipped import GCP_CLUSTER, assert_ray_image_matches_project

SHIPPED = load_cluster_config(GCP_CLUSTER)
GPU_TYPES = ("gpu_l4_x1", "gpu_a100_x4")


@pytest.fixture
def config() -> dict:
    return copy.deepcopy(SHIPPED)


def test_shipped_file_passes_rays_validation_and_the_projects_checks(config):
    check_gcp_cluster_config(prepare_and_validate(config))


def test_shipped_cluster_is_a_cpu_head_with_gpu_workers_that_scale_to_zero(config):
    prepared = prepare_and_validate(config)
    node_types = prepared["available_node_types"]
    head = node_types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    assert {name for name in node_types if name != prepared["head_node_type"]} == set(GPU_TYPES)
    for name in GPU_TYPES:
        assert node_types[name]["min_workers"] == 0, name
        assert node_types[name]["resources"]["GPU"] >= 1, name
    assert 0 < prepared["idle_timeout_minutes"] <= 30


def test_every_node_runs_the_pinned_ray_on_the_projects_python(config):
    assert_ray_image_matches_project(config["docker"]["image"])


def test_every_node_installs_the_pinned_requirements(config):
    assert config["file_mounts"]["~/raylaunch/cluster"] == "cluster"
    assert ("pip install --quiet --no-cache-dir -r ~/raylaunch/cluster/requirements-cluster.txt"
            in config["setup_commands"])


def test_known_machine_types_have_their_gpus():
    assert machine_gpus("g2-standard-8") == 1
    assert machine_gpus("zones/us-central1-a/machineTypes/a2-highgpu-4g") == 4
    assert machine_gpus("a2-ultragpu-8g") == 8
    assert machine_gpus("n1-standard-8") == 0


# Mistakes Ray's own validation catches (what `ray up` would print before touching GCP).

def test_unknown_top_level_key_is_refused_by_rays_schema(config):
    config["max_worker"] = 3
    with pytest.raises(jsonschema.ValidationError, match="'max_worker' was unexpected"):
        prepare_and_validate(config)


def test_unknown_node_type_key_is_refused_by_rays_schema(config):
    config["available_node_types"]["gpu_l4_x1"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="'min_worker' was unexpected"):
        prepare_and_validate(config)


def test_missing_head_node_type_is_refused_by_ray(config):
    del config["head_node_type"]  # Ray falls back to its default head type, which this file does not define
    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        prepare_and_validate(config)


def test_head_node_type_without_its_definition_is_refused_by_ray(config):
    del config["available_node_types"]["ray_head"]
    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        prepare_and_validate(config)


# Mistakes Ray accepts and this project's checks catch. Each test first shows that Ray's validation passes.

def _l4(config: dict) -> dict:
    return config["available_node_types"]["gpu_l4_x1"]


def _set(mapping: dict, key: str, value) -> None:
    mapping[key] = value


MISTAKES = {
    "gpu type without accelerators": (
        lambda c: _set(_l4(c)["node_config"], "machineType", "n1-standard-8"),
        "available_node_types.gpu_l4_x1: resources.GPU is 1 but the VM would have no GPU: machineType "
        "n1-standard-8 has none built in and node_config.guestAccelerators is missing",
    ),
    "more gpus declared than the vm has": (
        lambda c: _set(_l4(c)["resources"], "GPU", 4),
        "available_node_types.gpu_l4_x1: resources.GPU is 4 but the VM would have 1 GPU(s)",
    ),
    "gpu vm not declared to the autoscaler": (
        lambda c: _l4(c)["resources"].pop("GPU"),
        "available_node_types.gpu_l4_x1: resources.GPU is 0 but the VM would have 1 GPU(s)",
    ),
    "min_workers above max_workers": (
        lambda c: _set(_l4(c), "min_workers", 3) or _set(_l4(c), "max_workers", 2),
        "available_node_types.gpu_l4_x1: min_workers (3) is above max_workers (2)",
    ),
    "gpu vm without onHostMaintenance TERMINATE": (
        lambda c: _l4(c)["node_config"].pop("scheduling"),
        "available_node_types.gpu_l4_x1: node_config.scheduling.onHostMaintenance is None",
    ),
    "gpu vm with live migration": (
        lambda c: _set(_l4(c)["node_config"]["scheduling"], "onHostMaintenance", "MIGRATE"),
        "node_config.scheduling.onHostMaintenance is 'MIGRATE'",
    ),
    "scheduling in the list form of Ray's examples": (
        lambda c: _set(_l4(c)["node_config"], "scheduling", [{"onHostMaintenance": "TERMINATE"}]),
        "available_node_types.gpu_l4_x1: node_config.scheduling is a list",
    ),
    "gpu vm without the driver": (
        lambda c: _l4(c)["node_config"].pop("metadata"),
        "available_node_types.gpu_l4_x1: node_config.metadata has no item install-nvidia-driver",
    ),
    "worker with the default read-only scopes": (
        lambda c: _l4(c)["node_config"].pop("serviceAccounts"),
        "available_node_types.gpu_l4_x1: node_config.serviceAccounts gives no scope that can write",
    ),
    "dashboard on every interface": (
        lambda c: _set(c["head_start_ray_commands"], 1, c["head_start_ray_commands"][1] + " --dashboard-host=0.0.0.0"),
        "head_start_ray_commands[1]: --dashboard-host=0.0.0.0",
    ),
    "worker started without token authentication": (
        lambda c: _set(c["worker_start_ray_commands"], 1,
                       c["worker_start_ray_commands"][1].replace("export RAY_AUTH_MODE=token;", "")),
        "worker_start_ray_commands[1]: `ray start` runs without RAY_AUTH_MODE=token",
    ),
    "head started with authentication disabled": (
        lambda c: _set(c["head_start_ray_commands"], 1,
                       c["head_start_ray_commands"][1].replace("RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled")),
        "head_start_ray_commands[1]: `ray start` runs without RAY_AUTH_MODE=token",
    ),
    "token not copied to the nodes": (
        lambda c: c["file_mounts"].pop("~/.ray/auth_token"),
        "file_mounts: no ~/.ray/auth_token",
    ),
    # Without its own start commands the file gets Ray's GCP defaults: dashboard on 0.0.0.0, no token auth.
    "ray's default start commands": (
        lambda c: c.pop("head_start_ray_commands"),
        "--dashboard-host=0.0.0.0",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_project_checks_name_the_mistake(config, mistake):
    mutate, named = MISTAKES[mistake]
    mutate(config)
    prepared = prepare_and_validate(config)  # Ray accepts it
    with pytest.raises(ClusterConfigError) as error:
        check_gcp_cluster_config(prepared)
    assert named in str(error.value)


def test_an_n1_machine_with_guest_accelerators_is_a_gpu_vm(config):
    node_config = _l4(config)["node_config"]
    node_config["machineType"] = "n1-standard-8"
    node_config["guestAccelerators"] = [{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 1}]
    check_gcp_cluster_config(prepare_and_validate(config))


def test_every_problem_is_reported_at_once(config):
    MISTAKES["gpu vm without the driver"][0](config)
    MISTAKES["token not copied to the nodes"][0](config)
    with pytest.raises(ClusterConfigError) as error:
        check_gcp_cluster_config(prepare_and_validate(config))
    assert len(error.value.problems) == 2


# The command users run before `ray up`.

def test_cli_refuses_the_unfilled_placeholders(capsys):
    assert main([str(GCP_CLUSTER)]) == 1
    assert "provider.project_id: YOUR_PROJECT_ID" in capsys.readouterr().err


def test_cli_passes_a_filled_in_file(tmp_path, capsys):
    filled = tmp_path / "cluster.yaml"
    filled.write_text(GCP_CLUSTER.read_text().replace("YOUR_PROJECT_ID", "my-project"))
    assert main([str(filled)]) == 0
    assert "passes Ray's validation and this project's checks" in capsys.readouterr().out


def test_cli_names_the_mistake(tmp_path, capsys):
    broken = tmp_path / "cluster.yaml"
    broken.write_text(GCP_CLUSTER.read_text().replace("YOUR_PROJECT_ID", "my-project")
                      .replace("onHostMaintenance: TERMINATE", "onHostMaintenance: MIGRATE"))
    assert main([str(broken)]) == 1
    assert "gpu_a100_x4: node_config.scheduling.onHostMaintenance is 'MIGRATE'" in capsys.readouterr().err
