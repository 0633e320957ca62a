"""Offline checks of this project's KubeRay manifests for what KubeRay's CRD schema cannot say.

    python -m cluster.definitions.kuberay_config cluster/kuberay/*.yaml

The CRD accepts a GPU worker group that asks GKE for GPU nodes but never requests a GPU (the pod gets none,
Ray sees none, every GPU trial waits forever), a head Service of type LoadBalancer (the dashboard and Jobs
API, which run any code they are sent, on a public address), a cluster without token authentication, pods
without a Google identity for the bucket, and a sweep whose results stay on a pod's disk. Spot worker groups
(a GKE spot node selector or toleration, a `ray.io/market-type: spot` label, or "spot" in the name) must
select and tolerate GKE's spot nodes, stop within the 15 s GKE gives their pods, be labelled, and be
started by the Ray autoscaler before an on-demand group with the same resources. These checks refuse what
is wrong, naming the manifest, group and field. (The schema itself: `kubectl apply --dry-run=server` on a
cluster, or tests/definitions offline.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from cluster.definitions.cluster_config import ClusterConfigError
from cluster.definitions.kuberay_pods import ray_container, tolerates
from cluster.definitions.kuberay_spot import is_spot_group, spot_group_problems, spot_tie_problems

GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
PUBLIC_SERVICE_TYPES = {"LoadBalancer", "NodePort"}


def load_manifests(paths: Iterable[str | Path]) -> list[dict]:
    """Every document of every file, in order (empty documents skipped)."""
    manifests = []
    for path in paths:
        with open(path) as file:
            manifests += [document for document in yaml.safe_load_all(file) if document]
    return manifests


def check_kuberay_manifests(manifests: list[dict]) -> None:
    """Raise ClusterConfigError naming each manifest and field that is wrong. Pass the RayCluster together
    with the RayJobs and ServiceAccounts that refer to it, so the references are checked too."""
    clusters = {_name(m): m for m in manifests if m.get("kind") == "RayCluster"}
    accounts = {_name(m): m for m in manifests if m.get("kind") == "ServiceAccount"}
    problems = []
    for manifest in manifests:
        kind, where = manifest.get("kind"), f"{manifest.get('kind')} {_name(manifest)}"
        if kind == "RayCluster":
            problems += _cluster_spec_problems(manifest.get("spec") or {}, f"{where}: spec", accounts)
        elif kind == "RayJob":
            problems += _job_problems(manifest.get("spec") or {}, where, clusters, accounts)
    if problems:
        raise ClusterConfigError(problems)


def _name(manifest: dict) -> str:
    metadata = manifest.get("metadata") or {}
    return metadata.get("name") or metadata.get("generateName") or "(unnamed)"


def _pod_templates(spec: dict, where: str) -> Iterator[tuple[str, dict]]:
    head = spec.get("headGroupSpec") or {}
    yield f"{where}.headGroupSpec.template", head.get("template") or {}
    for index, group in enumerate(spec.get("workerGroupSpecs") or []):
        yield f"{where}.workerGroupSpecs[{index}] ({group.get('groupName')}).template", group.get("template") or {}


def _cluster_spec_problems(spec: dict, where: str, accounts: dict) -> list[str]:
    problems = _auth_problems(spec, where) + _exposure_problems(spec, where)
    groups = spec.get("workerGroupSpecs") or []
    for index, group in enumerate(groups):
        group_where = f"{where}.workerGroupSpecs[{index}] ({group.get('groupName')})"
        problems += _worker_group_problems(group, group_where)
        if is_spot_group(group):
            problems += spot_group_problems(group, group_where)
    problems += spot_tie_problems(groups, where)
    if any(group.get("maxReplicas", 0) > group.get("minReplicas", 0) for group in groups) and not spec.get(
        "enableInTreeAutoscaling"
    ):
        problems.append(f"{where}.enableInTreeAutoscaling is not true: worker groups would stay at their "
                        f"replicas and never grow for GPU trials. Set enableInTreeAutoscaling: true.")
    for template_where, template in _pod_templates(spec, where):
        problems += _identity_problems(template, template_where, accounts)
    return problems


def _auth_problems(spec: dict, where: str) -> list[str]:
    auth = spec.get("authOptions")
    if auth is not None:  # KubeRay defaults mode to token once authOptions is there
        mode = auth.get("mode", "token")
        return [] if mode == "token" else [
            f"{where}.authOptions.mode is {mode!r}: anyone who reaches the head could run code on the cluster. "
            f"Use mode: token."
        ]
    # Without authOptions (KubeRay before 1.5.1): every Ray container needs the env vars itself.
    problems = []
    for template_where, template in _pod_templates(spec, where):
        env = {item.get("name"): item for item in ray_container(template).get("env") or []}
        if (env.get("RAY_AUTH_MODE") or {}).get("value") != "token" or "RAY_AUTH_TOKEN" not in env:
            problems.append(
                f"{template_where}: token authentication is off (no spec.authOptions, and the Ray container "
                f"lacks RAY_AUTH_MODE=token with RAY_AUTH_TOKEN from a Secret). Add authOptions: {{mode: token}}."
            )
    return problems


def _exposure_problems(spec: dict, where: str) -> list[str]:
    head = spec.get("headGroupSpec") or {}
    problems = []
    exposed = {
        "headGroupSpec.serviceType": head.get("serviceType"),
        "headGroupSpec.headService.spec.type": ((head.get("headService") or {}).get("spec") or {}).get("type"),
    }
    for field, service_type in exposed.items():
        if service_type in PUBLIC_SERVICE_TYPES:
            problems.append(
                f"{where}.{field} is {service_type}: the dashboard and Jobs API (8265), which run any code they "
                f"are sent, would be reachable from outside the cluster. Use ClusterIP and `kubectl port-forward`."
            )
    if head.get("enableIngress"):
        problems.append(f"{where}.headGroupSpec.enableIngress is true: an Ingress would publish the dashboard and "
                        f"Jobs API. Remove it and use `kubectl port-forward`.")
    return problems


def _worker_group_problems(group: dict, where: str) -> list[str]:
    problems = []
    low, high = group.get("minReplicas", 0), group.get("maxReplicas", 0)
    if low > high:
        problems.append(f"{where}: minReplicas ({low}) is above maxReplicas ({high}).")
    pod = (group.get("template") or {}).get("spec") or {}
    accelerator = (pod.get("nodeSelector") or {}).get(ACCELERATOR_LABEL)
    limits = (ray_container(group.get("template") or {}).get("resources") or {}).get("limits") or {}
    raw = limits.get(GPU_RESOURCE)
    gpus = int(raw) if str(raw).isdigit() else 0
    if raw is not None and not str(raw).isdigit():
        problems.append(f"{where}: {GPU_RESOURCE} limit is {raw!r}; GPUs are whole devices, give a whole number.")
    if accelerator and not gpus:
        problems.append(
            f"{where}: nodeSelector asks for {accelerator} nodes but the Ray container's resources.limits has no "
            f"{GPU_RESOURCE}: the pod would get no GPU and Ray would see none. Add {GPU_RESOURCE}: \"N\" to its "
            f"limits (and requests)."
        )
    if gpus and not accelerator:
        problems.append(
            f"{where}: requests {GPU_RESOURCE} but has no nodeSelector {ACCELERATOR_LABEL}: GKE could place it on "
            f"any GPU type. Name the accelerator (e.g. nvidia-l4)."
        )
    if (accelerator or gpus) and not _tolerates_gpu_taint(pod.get("tolerations") or []):
        problems.append(
            f"{where}: no toleration for GKE's GPU taint ({GPU_RESOURCE}, NoSchedule). Add "
            f"{{key: {GPU_RESOURCE}, operator: Exists, effect: NoSchedule}} to template.spec.tolerations."
        )
    return problems


def _tolerates_gpu_taint(tolerations: list[dict]) -> bool:
    return tolerates(tolerations, GPU_RESOURCE, "present")


def _identity_problems(template: dict, where: str, accounts: dict) -> list[str]:
    account = (template.get("spec") or {}).get("serviceAccountName")
    if not account:
        return [f"{where}.spec.serviceAccountName is not set: the pod would run as `default`, with no Google "
                f"identity, and every bucket upload would fail. Use the Workload Identity account (raylaunch)."]
    if account in accounts:
        annotations = (accounts[account].get("metadata") or {}).get("annotations") or {}
        if not annotations.get(WORKLOAD_IDENTITY_ANNOTATION):
            return [f"ServiceAccount {account}: no {WORKLOAD_IDENTITY_ANNOTATION} annotation, so pods running as it "
                    f"({where}) have no Google identity for the bucket."]
    return []


def _job_problems(spec: dict, where: str, clusters: dict, accounts: dict) -> list[str]:
    problems = []
    if spec.get("rayClusterSpec"):
        problems += _cluster_spec_problems(spec["rayClusterSpec"], f"{where}: spec.rayClusterSpec", accounts)
    target = (spec.get("clusterSelector") or {}).get("ray.io/cluster")
    if target and clusters and target not in clusters:
        problems.append(f"{where}: spec.clusterSelector ray.io/cluster={target} names no RayCluster among "
                        f"{sorted(clusters)}; the job would wait for a cluster that never comes.")
    if not target and not spec.get("rayClusterSpec"):
        problems.append(f"{where}: spec has neither clusterSelector nor rayClusterSpec: nowhere to run.")
    entrypoint = spec.get("entrypoint") or ""
    if "launch.py" in entrypoint and "storage.uri=gs://" not in entrypoint:
        problems.append(f"{where}: spec.entrypoint runs launch.py without storage.uri=gs://...: checkpoints and "
                        f"results would stay on the pods' disks and vanish with them.")
    if "launch.py -m" in entrypoint and "hydra.sweep.dir=" not in entrypoint:
        problems.append(f"{where}: spec.entrypoint runs a sweep without hydra.sweep.dir=multirun/NAME: KubeRay's "
                        f"rerun after a head restart would start a new sweep (named after its date and time) "
                        f"instead of resuming this one. Add hydra.sweep.dir=multirun/<a name for this sweep>.")
    return problems


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m cluster.definitions.kuberay_config MANIFEST.yaml...", file=sys.stderr)
        return 2
    try:
        check_kuberay_manifests(load_manifests(paths))
    except ClusterConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{len(paths)} file(s) pass this project's KubeRay checks.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
