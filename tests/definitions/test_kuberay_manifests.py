"""cluster/kuberay/: the manifests match KubeRay's v1 API and the Kubernetes types (unknown fields refused,
as `kubectl apply` refuses them), and this project's checks (cluster/definitions/kuberay_config.py) catch what the
schema allows but would fail or expose the cluster. Each deliberate mistake is named. Offline, no cluster."""

from __future__ import annotations

import copy
import re

import pytest

from cluster.definitions.cluster_config import ClusterConfigError
from cluster.definitions.kuberay_config import check_kuberay_manifests, load_manifests, main
from tests.definitions.autoscaler import kuberay_autoscaling_config, trial_demand, v1_starts, v2_starts
from tests.definitions.kuberay_schema import validation_errors
from tests.definitions.shipped import KUBERAY, assert_ray_image_matches_project

MANIFEST_FILES = sorted(KUBERAY.glob("*.yaml"))
SHIPPED = load_manifests(MANIFEST_FILES)
DOCKERFILE = (KUBERAY / "Dockerfile").read_text()


def shipped(kind: str) -> dict:
    (manifest,) = [m for m in SHIPPED if m["kind"] == kind]
    return manifest


@pytest.fixture
def manifests() -> dict:
    """A fresh copy of every shipped manifest, by kind."""
    return {m["kind"]: m for m in copy.deepcopy(SHIPPED)}


def test_shipped_kinds():
    assert sorted(m["kind"] for m in SHIPPED) == ["RayCluster", "RayJob", "ServiceAccount"]


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob", "ServiceAccount"])
def test_shipped_manifest_matches_the_schema(kind):
    assert validation_errors(shipped(kind)) == []


def test_shipped_manifests_pass_the_projects_checks():
    check_kuberay_manifests(copy.deepcopy(SHIPPED))


def test_cli_passes_the_shipped_manifests(capsys):
    assert main([str(path) for path in MANIFEST_FILES]) == 0


# The image: the Dockerfile builds what the pods run, on the pinned Ray and the project's Python.

def test_image_is_the_pinned_ray_on_the_projects_python_with_the_pinned_requirements():
    (base,) = re.findall(r"^FROM (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert_ray_image_matches_project(base)
    assert re.search(r"^RUN pip install --no-cache-dir -r cluster/requirements-cluster.txt$", DOCKERFILE, re.MULTILINE)
    assert shipped("RayCluster")["spec"]["rayVersion"] == base.split(":")[1].split("-")[0]


def test_every_pod_runs_the_image_the_dockerfile_documents():
    (built,) = set(re.findall(r"docker build -f cluster/kuberay/Dockerfile -t (\S+) \.", DOCKERFILE))
    spec = shipped("RayCluster")["spec"]
    templates = [spec["headGroupSpec"]["template"]] + [group["template"] for group in spec["workerGroupSpecs"]]
    assert {container["image"] for t in templates for container in t["spec"]["containers"]} == {built}


def test_the_sweep_runs_the_project_in_the_image_and_writes_to_a_bucket():
    entrypoint = shipped("RayJob")["spec"]["entrypoint"]
    assert entrypoint.startswith("python /home/ray/raylaunch/launch.py -m ")
    assert "WORKDIR /home/ray/raylaunch" in DOCKERFILE
    assert "storage.uri=gs://" in entrypoint
    # A fixed sweep folder: KubeRay's rerun of the entrypoint on a new head resumes the sweep, not a new one.
    assert re.search(r"hydra\.sweep\.dir=multirun/[\w.-]+(\s|$)", entrypoint), entrypoint


# Mistakes the schema catches (KubeRay's fields, and the Kubernetes types inside the pod templates).

def _worker(manifests: dict, name: str = "gpu-l4-x1") -> dict:
    (group,) = [g for g in manifests["RayCluster"]["spec"]["workerGroupSpecs"] if g["groupName"] == name]
    return group


def _ray_container(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]


SCHEMA_MISTAKES = {
    "unknown field in the cluster spec": (
        "RayCluster", lambda m: m["RayCluster"]["spec"].__setitem__("enableAutoscaling", True),
        "RayCluster raylaunch: spec: Additional properties are not allowed ('enableAutoscaling' was unexpected)",
    ),
    "unknown field in a worker group": (
        "RayCluster", lambda m: _worker(m).__setitem__("maxReplica", 8),
        "spec.workerGroupSpecs.1: Additional properties are not allowed ('maxReplica' was unexpected)",
    ),
    "worker group without a name": (
        "RayCluster", lambda m: _worker(m).pop("groupName"),
        "spec.workerGroupSpecs.1: 'groupName' is a required property",
    ),
    "typo inside a container": (
        "RayCluster", lambda m: _ray_container(_worker(m)).__setitem__("resource", {}),
        "spec.workerGroupSpecs.1.template.spec.containers.0: Additional properties are not allowed "
        "('resource' was unexpected)",
    ),
    "toleration with a misspelt field": (
        "RayCluster", lambda m: _worker(m)["template"]["spec"]["tolerations"][0].__setitem__("efect", "NoSchedule"),
        "spec.workerGroupSpecs.1.template.spec.tolerations.0: Additional properties are not allowed",
    ),
    "ray start parameter that is not a string": (
        "RayCluster", lambda m: m["RayCluster"]["spec"]["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 0),
        "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'",
    ),
    "unknown auth mode": (
        "RayCluster", lambda m: m["RayCluster"]["spec"]["authOptions"].__setitem__("mode", "tokens"),
        "spec.authOptions.mode: 'tokens' is not one of ['disabled', 'token']",
    ),
    "unknown field in the job spec": (
        "RayJob", lambda m: m["RayJob"]["spec"].__setitem__("entryPoint", "python launch.py"),
        "RayJob raylaunch-sweep-: spec: Additional properties are not allowed ('entryPoint' was unexpected)",
    ),
    "service account annotations as a list": (
        "ServiceAccount", lambda m: m["ServiceAccount"]["metadata"].__setitem__("annotations", ["iam"]),
        "metadata.annotations: ['iam'] is not of type 'object'",
    ),
}


@pytest.mark.parametrize("mistake", list(SCHEMA_MISTAKES))
def test_schema_names_the_mistake(manifests, mistake):
    kind, mutate, named = SCHEMA_MISTAKES[mistake]
    mutate(manifests)
    errors = validation_errors(manifests[kind])
    assert any(named in error for error in errors), errors


def test_quantities_may_be_numbers_as_in_kubernetes(manifests):
    _ray_container(_worker(manifests))["resources"]["limits"].update({"cpu": 7, "nvidia.com/gpu": 1})
    assert validation_errors(manifests["RayCluster"]) == []


# Mistakes the schema accepts and the project's checks catch. Each test first shows the schema passes.

def _set_service_type(manifests: dict, value: str) -> None:
    manifests["RayCluster"]["spec"]["headGroupSpec"]["serviceType"] = value


def _drop_gpu_limit(manifests: dict) -> None:
    for field in ("limits", "requests"):
        _ray_container(_worker(manifests))["resources"][field].pop("nvidia.com/gpu")


PROJECT_MISTAKES = {
    "gpu worker without an nvidia.com/gpu limit": (
        _drop_gpu_limit,
        "RayCluster raylaunch: spec.workerGroupSpecs[1] (gpu-l4-x1): nodeSelector asks for nvidia-l4 nodes but the "
        "Ray container's resources.limits has no nvidia.com/gpu",
    ),
    "gpu worker without the accelerator node selector": (
        lambda m: _worker(m)["template"]["spec"]["nodeSelector"].pop("cloud.google.com/gke-accelerator"),
        "spec.workerGroupSpecs[1] (gpu-l4-x1): requests nvidia.com/gpu but has no nodeSelector "
        "cloud.google.com/gke-accelerator",
    ),
    "gpu worker without the gpu toleration": (
        lambda m: _worker(m)["template"]["spec"].pop("tolerations"),
        "spec.workerGroupSpecs[1] (gpu-l4-x1): no toleration for GKE's GPU taint",
    ),
    "fractional gpu limit": (
        lambda m: _ray_container(_worker(m))["resources"]["limits"].__setitem__("nvidia.com/gpu", "0.5"),
        "nvidia.com/gpu limit is '0.5'; GPUs are whole devices",
    ),
    "head service exposed as a LoadBalancer": (
        lambda m: _set_service_type(m, "LoadBalancer"),
        "RayCluster raylaunch: spec.headGroupSpec.serviceType is LoadBalancer",
    ),
    "head service exposed as a NodePort": (
        lambda m: _set_service_type(m, "NodePort"),
        "spec.headGroupSpec.serviceType is NodePort",
    ),
    "custom head service of type LoadBalancer": (
        lambda m: m["RayCluster"]["spec"]["headGroupSpec"].__setitem__(
            "headService", {"spec": {"type": "LoadBalancer"}}),
        "spec.headGroupSpec.headService.spec.type is LoadBalancer",
    ),
    "ingress for the dashboard": (
        lambda m: m["RayCluster"]["spec"]["headGroupSpec"].__setitem__("enableIngress", True),
        "spec.headGroupSpec.enableIngress is true",
    ),
    "token authentication off": (
        lambda m: m["RayCluster"]["spec"].pop("authOptions"),
        "spec.headGroupSpec.template: token authentication is off",
    ),
    "token authentication disabled": (
        lambda m: m["RayCluster"]["spec"]["authOptions"].__setitem__("mode", "disabled"),
        "spec.authOptions.mode is 'disabled'",
    ),
    "min replicas above max": (
        lambda m: _worker(m).update(minReplicas=5, maxReplicas=4),
        "spec.workerGroupSpecs[1] (gpu-l4-x1): minReplicas (5) is above maxReplicas (4)",
    ),
    "groups that can grow without the autoscaler": (
        lambda m: m["RayCluster"]["spec"].pop("enableInTreeAutoscaling"),
        "spec.enableInTreeAutoscaling is not true",
    ),
    "pod without the workload identity account": (
        lambda m: _worker(m, "gpu-a100-x4")["template"]["spec"].pop("serviceAccountName"),
        "spec.workerGroupSpecs[3] (gpu-a100-x4).template.spec.serviceAccountName is not set",
    ),
    "service account not mapped to a google account": (
        lambda m: m["ServiceAccount"]["metadata"].pop("annotations"),
        "ServiceAccount raylaunch: no iam.gke.io/gcp-service-account annotation",
    ),
    "sweep results left on the pods": (
        lambda m: m["RayJob"]["spec"].__setitem__(
            "entrypoint", m["RayJob"]["spec"]["entrypoint"].replace("storage.uri=gs://YOUR_BUCKET/experiments", "")),
        "RayJob raylaunch-sweep-: spec.entrypoint runs launch.py without storage.uri=gs://",
    ),
    "sweep without a name of its own": (
        lambda m: m["RayJob"]["spec"].__setitem__(
            "entrypoint", m["RayJob"]["spec"]["entrypoint"].replace("hydra.sweep.dir=multirun/cnn-lstm-lr", "")),
        "RayJob raylaunch-sweep-: spec.entrypoint runs a sweep without hydra.sweep.dir=multirun/NAME",
    ),
    "job aimed at a cluster that does not exist": (
        lambda m: m["RayJob"]["spec"]["clusterSelector"].__setitem__("ray.io/cluster", "raylaunch-old"),
        "RayJob raylaunch-sweep-: spec.clusterSelector ray.io/cluster=raylaunch-old names no RayCluster",
    ),
}


@pytest.mark.parametrize("mistake", list(PROJECT_MISTAKES))
def test_project_checks_name_the_mistake(manifests, mistake):
    mutate, named = PROJECT_MISTAKES[mistake]
    mutate(manifests)
    for manifest in manifests.values():
        assert validation_errors(manifest) == []  # the schema accepts it
    with pytest.raises(ClusterConfigError) as error:
        check_kuberay_manifests(list(manifests.values()))
    assert named in str(error.value)


def test_token_authentication_through_env_vars_also_passes(manifests):
    """KubeRay before 1.5.1 has no authOptions: each Ray container then sets the variables itself."""
    spec = manifests["RayCluster"]["spec"]
    spec.pop("authOptions")
    env = [{"name": "RAY_AUTH_MODE", "value": "token"},
           {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "raylaunch-token", "key": "auth_token"}}}]
    groups = [spec["headGroupSpec"]] + spec["workerGroupSpecs"]
    for group in groups:
        _ray_container(group)["env"] = copy.deepcopy(env)
    assert validation_errors(manifests["RayCluster"]) == []
    check_kuberay_manifests(list(manifests.values()))

    del _ray_container(groups[-1])["env"][1]  # one group without the token
    with pytest.raises(ClusterConfigError,
                       match=r"workerGroupSpecs\[3\] \(gpu-a100-x4\).template: token authentication is off"):
        check_kuberay_manifests(list(manifests.values()))


# Spot GPU groups beside the on-demand ones.

SPOT_TWINS = {"gpu-l4-x1": "gpu-l4-x1-spot", "gpu-a100-x4": "gpu-a100-x4-spot"}
SPOT_TOLERATION = {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def _groups(manifests: dict) -> list[dict]:
    return manifests["RayCluster"]["spec"]["workerGroupSpecs"]


def test_each_gpu_group_has_a_spot_twin_listed_first():
    names = [group["groupName"] for group in shipped("RayCluster")["spec"]["workerGroupSpecs"]]
    assert names == ["gpu-l4-x1-spot", "gpu-l4-x1", "gpu-a100-x4-spot", "gpu-a100-x4"]


@pytest.mark.parametrize("on_demand", list(SPOT_TWINS))
def test_each_spot_group_is_its_on_demand_twin_on_gke_spot_nodes(manifests, on_demand):
    spot, twin = _worker(manifests, SPOT_TWINS[on_demand]), _worker(manifests, on_demand)
    pod = spot["template"]["spec"]
    assert pod["nodeSelector"].pop("cloud.google.com/gke-spot") == "true"
    assert pod["tolerations"].pop() == SPOT_TOLERATION
    assert pod.pop("terminationGracePeriodSeconds") == 15
    assert spot.pop("labels") == {"ray.io/market-type": "spot"}
    assert twin.pop("labels") == {"ray.io/market-type": "on-demand"}
    spot.pop("groupName"), twin.pop("groupName")
    assert spot == twin  # replicas, account, accelerator, GPU toleration, image, resources


def test_the_ray_autoscaler_reads_the_groups_with_their_labels(manifests):
    """What KubeRay's Ray autoscaler derives from the manifest passes Ray's own validate_config."""
    node_types = kuberay_autoscaling_config(manifests["RayCluster"])["available_node_types"]
    for on_demand, spot in SPOT_TWINS.items():
        assert node_types[spot]["resources"] == node_types[on_demand]["resources"]
        assert node_types[spot]["labels"] == {"ray.io/market-type": "spot"}
        assert node_types[on_demand]["labels"] == {"ray.io/market-type": "on-demand"}


def _starts(manifests: dict, autoscaler: str, gpus: int = 1, running: dict | None = None) -> dict:
    config = kuberay_autoscaling_config(manifests["RayCluster"])
    demands = [trial_demand(gpus=gpus)]
    return v1_starts(config, demands, running) if autoscaler == "v1" else v2_starts(config, demands)


@pytest.mark.parametrize("gpus", [1, 4])
@pytest.mark.parametrize("autoscaler", ["v1", "v2"])
def test_the_ray_autoscaler_starts_the_spot_group_for_a_trial_either_could_take(manifests, autoscaler, gpus):
    assert _starts(manifests, autoscaler, gpus) == {"gpu-l4-x1-spot" if gpus == 1 else "gpu-a100-x4-spot": 1}


def test_the_on_demand_group_is_started_once_the_spot_group_is_full(manifests):
    assert _starts(manifests, "v1", running={"gpu-l4-x1-spot": 4}) == {"gpu-l4-x1": 1}


def _move_l4_spot_after_its_twin(manifests: dict) -> None:
    groups = _groups(manifests)
    groups[0], groups[1] = groups[1], groups[0]


def _rename_l4_spot(manifests: dict) -> None:
    _worker(manifests, "gpu-l4-x1-spot")["groupName"] = "gpu-l4-spot"


def _mark_l4_spot_by_a_resource(manifests: dict) -> None:
    _worker(manifests, "gpu-l4-x1-spot")["resources"] = {"spot": "1"}


# What would make the Ray autoscaler start the on-demand group first, by the autoscaler it fools; each is
# refused (below).
ON_DEMAND_FIRST = {
    "custom resource on the spot group, v1": ("v1", _mark_l4_spot_by_a_resource),
    "custom resource on the spot group, v2": ("v2", _mark_l4_spot_by_a_resource),
    "spot group listed after its twin, v2": ("v2", _move_l4_spot_after_its_twin),
    "spot group named to sort first, v1": ("v1", _rename_l4_spot),
}


@pytest.mark.parametrize("case", list(ON_DEMAND_FIRST))
def test_what_would_make_the_ray_autoscaler_start_the_on_demand_group_first(manifests, case):
    autoscaler, mutate = ON_DEMAND_FIRST[case]
    mutate(manifests)
    assert _starts(manifests, autoscaler) == {"gpu-l4-x1": 1}
    with pytest.raises(ClusterConfigError):
        check_kuberay_manifests(list(manifests.values()))


def _spot_pod(manifests: dict, name: str = "gpu-l4-x1-spot") -> dict:
    return _worker(manifests, name)["template"]["spec"]


SPOT_MISTAKES = {
    "spot group without the spot node selector": (
        lambda m: _spot_pod(m)["nodeSelector"].pop("cloud.google.com/gke-spot"),
        "RayCluster raylaunch: spec.workerGroupSpecs[0] (gpu-l4-x1-spot): "
        "template.spec.nodeSelector.cloud.google.com/gke-spot is missing",
    ),
    "spot group selecting on-demand nodes": (
        lambda m: _spot_pod(m)["nodeSelector"].__setitem__("cloud.google.com/gke-spot", "false"),
        "spec.workerGroupSpecs[0] (gpu-l4-x1-spot): template.spec.nodeSelector.cloud.google.com/gke-spot is 'false'",
    ),
    "spot group without the spot toleration": (
        lambda m: _spot_pod(m, "gpu-a100-x4-spot")["tolerations"].pop(),
        "spec.workerGroupSpecs[2] (gpu-a100-x4-spot): template.spec.tolerations has none for "
        "cloud.google.com/gke-spot=true:NoSchedule",
    ),
    "spot group without a grace period": (
        lambda m: _spot_pod(m).pop("terminationGracePeriodSeconds"),
        "spec.workerGroupSpecs[0] (gpu-l4-x1-spot): template.spec.terminationGracePeriodSeconds is missing",
    ),
    "spot group counting on more time than GKE gives": (
        lambda m: _spot_pod(m).__setitem__("terminationGracePeriodSeconds", 60),
        "spec.workerGroupSpecs[0] (gpu-l4-x1-spot): template.spec.terminationGracePeriodSeconds is 60",
    ),
    "spot group without the market-type label": (
        lambda m: _worker(m, "gpu-a100-x4-spot").pop("labels"),
        "spec.workerGroupSpecs[2] (gpu-a100-x4-spot): labels.ray.io/market-type is missing",
    ),
    "spot group marked by a custom resource": (
        _mark_l4_spot_by_a_resource,
        "spec.workerGroupSpecs[0] (gpu-l4-x1-spot): declares the Ray resources ['spot']",
    ),
    "spot group listed after its on-demand twin": (
        _move_l4_spot_after_its_twin,
        "spec.workerGroupSpecs[1] (gpu-l4-x1-spot): on-demand group gpu-l4-x1 has the same resources and comes "
        "before it",
    ),
    "spot group named to sort before its on-demand twin": (
        _rename_l4_spot,
        "spec.workerGroupSpecs[0] (gpu-l4-spot): on-demand group gpu-l4-x1 has the same resources and a name "
        "sorting after it",
    ),
    "on-demand group tolerating spot nodes without selecting them": (
        lambda m: _worker(m)["template"]["spec"]["tolerations"].append(dict(SPOT_TOLERATION)),
        "spec.workerGroupSpecs[1] (gpu-l4-x1): template.spec.nodeSelector.cloud.google.com/gke-spot is missing",
    ),
}


@pytest.mark.parametrize("mistake", list(SPOT_MISTAKES))
def test_spot_checks_name_the_group_and_field(manifests, mistake):
    mutate, named = SPOT_MISTAKES[mistake]
    mutate(manifests)
    for manifest in manifests.values():
        assert validation_errors(manifest) == []  # the schema accepts it
    with pytest.raises(ClusterConfigError) as error:
        check_kuberay_manifests(list(manifests.values()))
    assert named in str(error.value)


def test_spot_checks_apply_to_a_cluster_a_rayjob_brings(manifests):
    job = manifests["RayJob"]["spec"]
    job.pop("clusterSelector")
    job["rayClusterSpec"] = copy.deepcopy(manifests["RayCluster"]["spec"])
    check_kuberay_manifests([manifests["RayJob"], manifests["ServiceAccount"]])
    job["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["tolerations"].pop()
    assert validation_errors(manifests["RayJob"]) == []
    with pytest.raises(ClusterConfigError, match=r"RayJob raylaunch-sweep-: spec.rayClusterSpec.workerGroupSpecs\[0\] "
                                                 r"\(gpu-l4-x1-spot\): template.spec.tolerations has none"):
        check_kuberay_manifests([manifests["RayJob"], manifests["ServiceAccount"]])


def test_cli_names_the_spot_group_and_missing_field(tmp_path, capsys):
    broken = tmp_path / "raycluster.yaml"
    broken.write_text((KUBERAY / "raycluster.yaml").read_text().replace("terminationGracePeriodSeconds: 15", ""))
    assert main([str(broken)]) == 1
    err = capsys.readouterr().err
    for index, spot in ((0, "gpu-l4-x1-spot"), (2, "gpu-a100-x4-spot")):
        assert f"workerGroupSpecs[{index}] ({spot}): template.spec.terminationGracePeriodSeconds is missing" in err


def test_cli_names_the_mistake(tmp_path, capsys):
    broken = tmp_path / "raycluster.yaml"
    broken.write_text((KUBERAY / "raycluster.yaml").read_text().replace("serviceType: ClusterIP",
                                                                        "serviceType: LoadBalancer"))
    assert main([str(broken)]) == 1
    assert "spec.headGroupSpec.serviceType is LoadBalancer" in capsys.readouterr().err
