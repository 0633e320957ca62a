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
    main,
    prepare_and_validate,
)
from cluster.definitions.gcp_vms import machine_gpus
from tests.definitions.autoscaler import trial_demand, v1_starts, v2_starts
from tests.definitions.shipped import GCP_CLUSTER, assert_ray_image_matches_project

SHIPPED = load_cluster_config(GCP_CLUSTER)
# Each on-demand GPU type and its spot twin.
SPOT_TWINS = {"gpu_l4_x1": "gpu_l4_x1_spot", "gpu_a100_x4": "gpu_a100_x4_spot"}
GPU_TYPES = tuple(SPOT_TWINS) + tuple(SPOT_TWINS.values())
SPOT_SCHEDULING = {"provisioningModel": "SPOT", "instanceTerminationAction": "DELETE", "preemptible": True,
                   "automaticRestart": False, "onHostMaintenance": "TERMINATE"}


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


# Spot GPU workers beside the on-demand ones.

@pytest.mark.parametrize("on_demand", list(SPOT_TWINS))
def test_each_spot_type_is_its_on_demand_twin_on_a_spot_vm(config, on_demand):
    spot = SPOT_TWINS[on_demand]
    twin, spot_type = config["available_node_types"][on_demand], config["available_node_types"][spot]
    assert spot_type["node_config"].pop("scheduling") == SPOT_SCHEDULING
    assert spot_type.pop("labels") == {"ray.io/market-type": "spot"}
    assert spot_type.pop("priority") == 1
    assert twin["node_config"].pop("scheduling") == {"onHostMaintenance": "TERMINATE", "automaticRestart": True}
    assert twin.pop("labels") == {"ray.io/market-type": "on-demand"}
    assert spot_type == twin  # machine, disks, image, driver, account, commands, resources, max_workers


@pytest.mark.parametrize("gpus", [1, 4])
@pytest.mark.parametrize("autoscaler", ["v1", "v2"])
def test_ray_starts_the_spot_type_for_a_trial_either_could_take(config, autoscaler, gpus):
    demands = [trial_demand(gpus=gpus)]
    started = v1_starts(prepare_and_validate(config), demands) if autoscaler == "v1" else v2_starts(config, demands)
    assert started == {"gpu_l4_x1_spot" if gpus == 1 else "gpu_a100_x4_spot": 1}


def test_ray_starts_the_on_demand_type_once_the_spot_type_is_full(config):
    prepared = prepare_and_validate(config)
    assert v1_starts(prepared, [trial_demand(gpus=1)], running={"gpu_l4_x1_spot": 4}) == {"gpu_l4_x1": 1}


@pytest.mark.parametrize("autoscaler", ["v1", "v2"])
def test_spot_max_workers_0_runs_on_demand_only(config, autoscaler):
    for spot in SPOT_TWINS.values():
        config["available_node_types"][spot]["max_workers"] = 0
    demands = [trial_demand(gpus=1)]
    started = v1_starts(prepare_and_validate(config), demands) if autoscaler == "v1" else v2_starts(config, demands)
    assert started == {"gpu_l4_x1": 1}


# What would make Ray start the on-demand type first, by the autoscaler it fools; each is refused (below).
ON_DEMAND_FIRST = {
    "custom resource on the spot type, v1": ("v1", lambda c: _set(_spot(c)["resources"], "spot", 1)),
    "custom resource on the spot type, v2": ("v2", lambda c: _set(_spot(c)["resources"], "spot", 1)),
    "spot type without priority, v2": ("v2", lambda c: _spot(c).pop("priority")),
    "spot type named to sort first, v1": ("v1", lambda c: _rename(c, "gpu_l4_x1_spot", "gpu_l4_spot")),
}


@pytest.mark.parametrize("case", list(ON_DEMAND_FIRST))
def test_what_would_make_ray_start_the_on_demand_type_first(config, case):
    autoscaler, mutate = ON_DEMAND_FIRST[case]
    mutate(config)
    demands = [trial_demand(gpus=1)]
    started = v1_starts(prepare_and_validate(config), demands) if autoscaler == "v1" else v2_starts(config, demands)
    assert started == {"gpu_l4_x1": 1}
    with pytest.raises(ClusterConfigError):
        check_gcp_cluster_config(prepare_and_validate(config))


def _spot(config: dict, on_demand: str = "gpu_l4_x1") -> dict:
    return config["available_node_types"][SPOT_TWINS[on_demand]]


def _rename(config: dict, old: str, new: str) -> None:
    config["available_node_types"] = {new if name == old else name: node_type
                                      for name, node_type in config["available_node_types"].items()}


def _add_cpu_spot_type_as_in_rays_defaults(config: dict) -> None:
    """A CPU-only worker as Ray's GCP defaults.yaml writes one: preemptible, in the list form."""
    worker = copy.deepcopy(config["available_node_types"]["gpu_l4_x1"])
    worker.pop("labels")
    worker["resources"] = {"CPU": 8}
    worker["node_config"]["machineType"] = "n2-standard-8"
    worker["node_config"]["scheduling"] = [{"preemptible": True}]
    config["available_node_types"]["cpu_worker"] = worker


SPOT_MISTAKES = {
    "spot type without provisioningModel": (
        lambda c: _spot(c)["node_config"]["scheduling"].pop("provisioningModel"),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.provisioningModel is missing",
    ),
    "spot type on the standard provisioning model": (
        lambda c: _set(_spot(c)["node_config"]["scheduling"], "provisioningModel", "STANDARD"),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.provisioningModel is 'STANDARD'",
    ),
    "spot type without instanceTerminationAction": (
        lambda c: _spot(c, "gpu_a100_x4")["node_config"]["scheduling"].pop("instanceTerminationAction"),
        "available_node_types.gpu_a100_x4_spot: node_config.scheduling.instanceTerminationAction is missing",
    ),
    "preempted spot VM stopped, where Ray never restarts it": (
        lambda c: _set(_spot(c)["node_config"]["scheduling"], "instanceTerminationAction", "STOP"),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.instanceTerminationAction is 'STOP'",
    ),
    "spot type without automaticRestart": (
        lambda c: _spot(c)["node_config"]["scheduling"].pop("automaticRestart"),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.automaticRestart is missing",
    ),
    "spot type restarted by GCE": (
        lambda c: _set(_spot(c)["node_config"]["scheduling"], "automaticRestart", True),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.automaticRestart is True",
    ),
    "spot type not preemptible": (
        lambda c: _set(_spot(c)["node_config"]["scheduling"], "preemptible", False),
        "available_node_types.gpu_l4_x1_spot: node_config.scheduling.preemptible is False",
    ),
    "spot type without the market-type label": (
        lambda c: _spot(c, "gpu_a100_x4").pop("labels"),
        "available_node_types.gpu_a100_x4_spot: labels.ray.io/market-type is missing",
    ),
    "spot type marked by a custom resource": (
        lambda c: _set(_spot(c)["resources"], "spot", 1),
        "available_node_types.gpu_l4_x1_spot: resources declares ['spot'], which trials never ask for",
    ),
    "spot type without priority": (
        lambda c: _spot(c).pop("priority"),
        "available_node_types.gpu_l4_x1_spot: priority is 0, not above the 0 of on-demand type gpu_l4_x1",
    ),
    "spot type named to sort before its on-demand twin": (
        lambda c: _rename(c, "gpu_l4_x1_spot", "gpu_l4_spot"),
        "available_node_types.gpu_l4_spot: on-demand type gpu_l4_x1 has the same resources and a name sorting "
        "after it",
    ),
    "on-demand type labelled spot": (
        lambda c: _set(_l4(c)["labels"], "ray.io/market-type", "spot"),
        "available_node_types.gpu_l4_x1: node_config.scheduling.provisioningModel is missing",
    ),
    "preemptible worker in the list form of Ray's defaults": (
        _add_cpu_spot_type_as_in_rays_defaults,
        "available_node_types.cpu_worker: node_config.scheduling is a list",
    ),
}


@pytest.mark.parametrize("mistake", list(SPOT_MISTAKES))
def test_spot_checks_name_the_node_type_and_field(config, mistake):
    mutate, named = SPOT_MISTAKES[mistake]
    mutate(config)
    prepared = prepare_and_validate(config)  # Ray accepts it
    with pytest.raises(ClusterConfigError) as error:
        check_gcp_cluster_config(prepared)
    assert named in str(error.value)


def test_a_cpu_spot_type_needs_the_spot_fields_too(config):
    _add_cpu_spot_type_as_in_rays_defaults(config)
    config["available_node_types"]["cpu_worker"]["node_config"]["scheduling"] = {"preemptible": True}
    with pytest.raises(ClusterConfigError) as error:
        check_gcp_cluster_config(prepare_and_validate(config))
    named = [problem.split(";")[0] for problem in error.value.problems]
    assert named == [
        "available_node_types.cpu_worker: node_config.scheduling.provisioningModel is missing",
        "available_node_types.cpu_worker: node_config.scheduling.instanceTerminationAction is missing",
        "available_node_types.cpu_worker: node_config.scheduling.automaticRestart is missing",
        "available_node_types.cpu_worker: node_config.scheduling.onHostMaintenance is missing",
        "available_node_types.cpu_worker: labels.ray.io/market-type is missing",
    ]


def test_stop_on_preemption_passes_where_ray_restarts_stopped_vms(config):
    for spot in SPOT_TWINS.values():
        config["available_node_types"][spot]["node_config"]["scheduling"]["instanceTerminationAction"] = "STOP"
    config["provider"]["cache_stopped_nodes"] = True
    check_gcp_cluster_config(prepare_and_validate(config))


def test_preemptible_may_be_left_out(config):
    _spot(config)["node_config"]["scheduling"].pop("preemptible")
    check_gcp_cluster_config(prepare_and_validate(config))


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


def test_cli_names_the_spot_type_and_missing_field(tmp_path, capsys):
    broken = tmp_path / "cluster.yaml"
    broken.write_text(GCP_CLUSTER.read_text().replace("YOUR_PROJECT_ID", "my-project")
                      .replace("        instanceTerminationAction: DELETE\n", ""))
    assert main([str(broken)]) == 1
    err = capsys.readouterr().err
    for spot in SPOT_TWINS.values():
        assert f"{spot}: node_config.scheduling.instanceTerminationAction is missing" in err


def test_cli_names_the_mistake(tmp_path, capsys):
    broken = tmp_path / "cluster.yaml"
    broken.write_text(GCP_CLUSTER.read_text().replace("YOUR_PROJECT_ID", "my-project")
                      .replace("onHostMaintenance: TERMINATE", "onHostMaintenance: MIGRATE"))
    assert main([str(broken)]) == 1
    assert "gpu_a100_x4: node_config.scheduling.onHostMaintenance is 'MIGRATE'" in capsys.readouterr().err
