"""Offline checks of KubeRay spot worker groups: on GKE's spot nodes (selected and tolerated), stopping within
the grace GKE gives their pods, labelled, and started by the Ray autoscaler before an on-demand group with the
same resources."""

from __future__ import annotations

from cluster.definitions.gcp_spot import MARKET_TYPE_LABEL
from cluster.definitions.kuberay_pods import ray_container, tolerates

# GKE labels the nodes of a spot node pool with it; the README's spot pools are tainted with it too.
SPOT_NODE_LABEL = "cloud.google.com/gke-spot"
# What GKE gives a non-system pod of a preempted spot node to stop (of the VM's 30 s notice).
SPOT_GRACE_SECONDS = 15
# Ray resources every trial asks for or every node has (a group's `resources` field); any other one a spot
# group declares lowers its autoscaler score against its on-demand twin.
PLANNED_RESOURCES = {"cpu", "gpu", "memory"}


def is_spot_group(group: dict) -> bool:
    """A worker group meant for GKE spot nodes: the spot node selector or toleration, Ray's market-type label
    saying spot, or "spot" in its name. Each makes the spot checks apply, so a half-made spot group (named
    spot but selecting on-demand nodes, or the reverse) is refused rather than silently billed."""
    pod = (group.get("template") or {}).get("spec") or {}
    return ("spot" in str(group.get("groupName", "")).lower()
            or (group.get("labels") or {}).get(MARKET_TYPE_LABEL) == "spot"
            or SPOT_NODE_LABEL in (pod.get("nodeSelector") or {})
            or any(toleration.get("key") == SPOT_NODE_LABEL for toleration in pod.get("tolerations") or []))


def _shown(value) -> str:
    return "missing" if value is None else repr(value)


def spot_group_problems(group: dict, where: str) -> list[str]:
    pod = (group.get("template") or {}).get("spec") or {}
    problems = []
    selected = (pod.get("nodeSelector") or {}).get(SPOT_NODE_LABEL)
    if selected != "true":
        problems.append(
            f"{where}: template.spec.nodeSelector.{SPOT_NODE_LABEL} is {_shown(selected)}; a spot group needs "
            f"\"true\", or GKE may run its pods on on-demand nodes, billed at the full rate."
        )
    if not tolerates(pod.get("tolerations") or [], SPOT_NODE_LABEL, "true"):
        problems.append(
            f"{where}: template.spec.tolerations has none for {SPOT_NODE_LABEL}=true:NoSchedule, the taint of the "
            f"spot node pools (README): its pods would never be placed on them. Add {{key: {SPOT_NODE_LABEL}, "
            f"operator: Equal, value: \"true\", effect: NoSchedule}}."
        )
    grace = pod.get("terminationGracePeriodSeconds")
    if grace is None or not isinstance(grace, int) or grace > SPOT_GRACE_SECONDS:
        problems.append(
            f"{where}: template.spec.terminationGracePeriodSeconds is {_shown(grace)}; GKE gives the pods of a "
            f"preempted spot node at most {SPOT_GRACE_SECONDS} s of the VM's 30 s notice (Kubernetes' default "
            f"is 30): set {SPOT_GRACE_SECONDS} or less."
        )
    label = (group.get("labels") or {}).get(MARKET_TYPE_LABEL)
    if label != "spot":
        problems.append(
            f"{where}: labels.{MARKET_TYPE_LABEL} is {_shown(label)}; give spot groups labels: "
            f"{{{MARKET_TYPE_LABEL}: spot}} so their Ray nodes can be told from on-demand ones."
        )
    extra = sorted(name for name in group.get("resources") or {} if name.lower() not in PLANNED_RESOURCES)
    if extra or (group.get("rayStartParams") or {}).get("resources"):
        declared = extra or [(group.get("rayStartParams") or {}).get("resources")]
        problems.append(
            f"{where}: declares the Ray resources {declared}, which trials never ask for: the Ray autoscaler "
            f"scores a group lower for every resource a request leaves unused, so it would start the on-demand "
            f"group first. Tell spot groups apart with the {MARKET_TYPE_LABEL} label instead."
        )
    return problems


def _ray_shape(group: dict) -> tuple:
    """What the Ray autoscaler plans a group's pods with: the Ray container's limits, the group's resources
    and its ray start parameters (two groups alike in all three score the same for any request)."""
    limits = (ray_container(group.get("template") or {}).get("resources") or {}).get("limits") or {}
    return (sorted((k, str(v)) for k, v in limits.items()), sorted((group.get("resources") or {}).items()),
            sorted((group.get("rayStartParams") or {}).items()))


def spot_tie_problems(groups: list[dict], where: str) -> list[str]:
    """Where a trial fits a spot group and an on-demand group with the same resources equally well, the Ray
    autoscaler picks by name, the last sorting (v1), or by the order of workerGroupSpecs, the first listed
    (v2). A spot group must win both ways to be started before its on-demand twin."""
    problems = []
    for index, group in enumerate(groups):
        if not is_spot_group(group):
            continue
        name = str(group.get("groupName"))
        group_where = f"{where}.workerGroupSpecs[{index}] ({name})"
        for twin_index, twin in enumerate(groups):
            twin_name = str(twin.get("groupName"))
            if is_spot_group(twin) or _ray_shape(twin) != _ray_shape(group):
                continue
            if twin_index < index:
                problems.append(
                    f"{group_where}: on-demand group {twin_name} has the same resources and comes before it in "
                    f"workerGroupSpecs; the Ray autoscaler v2 breaks such ties by that order (the first wins) and "
                    f"would start {twin_name} first. List the spot group before its on-demand twin."
                )
            if twin_name > name:
                problems.append(
                    f"{group_where}: on-demand group {twin_name} has the same resources and a name sorting after "
                    f"it; the Ray autoscaler v1 breaks such ties by name (the last wins) and would start "
                    f"{twin_name} first. Name the spot group so it sorts last (e.g. {twin_name}-spot)."
                )
    return problems
