"""Offline checks of spot node types in a GCP cluster-launcher file: Spot VMs as GCE wants them, deleted when
preempted, labelled, and started by Ray's autoscaler before an on-demand type with the same resources."""

from __future__ import annotations

from typing import Any

from cluster.definitions.gcp_vms import scheduling_list_problem, scheduling_of, vm_gpus

# Ray's own node label for on-demand or spot capacity (a Ray label, not a GCE one: Ray sets it on the node).
MARKET_TYPE_LABEL = "ray.io/market-type"
# Resources Ray's autoscaler plans with that every trial asks for, or that every node has; any other one a
# spot type declares and trials never request lowers its score against its on-demand twin.
PLANNED_RESOURCES = {"CPU", "GPU", "memory", "object_store_memory"}

def is_spot_node_type(name: str, node_type: dict) -> bool:
    """A node type meant to run on Spot VMs: SPOT or preemptible scheduling, Ray's market-type label saying
    spot, or "spot" in its name. Each of these makes the spot checks apply, so a half-made spot type (named
    or labelled spot, scheduled on demand; or the reverse) is refused rather than silently billed."""
    scheduling = scheduling_of(node_type.get("node_config") or {})
    labels = node_type.get("labels") or {}
    return ("spot" in name.lower() or labels.get(MARKET_TYPE_LABEL) == "spot"
            or str(scheduling.get("provisioningModel", "")).upper() == "SPOT" or scheduling.get("preemptible") is True)


def _shown(value: Any) -> str:
    return "missing" if value is None else repr(value)


def spot_problems(name: str, node_type: dict, provider: dict) -> list[str]:
    """What GCE needs to create a Spot VM, and what Ray needs to run on one (names the node type and field)."""
    where = f"available_node_types.{name}"
    node_config = node_type.get("node_config") or {}
    scheduling = node_config.get("scheduling")
    problems = []
    if isinstance(scheduling, list):
        if not vm_gpus(node_config):  # a GPU type has it reported already
            problems.append(scheduling_list_problem(where))
        scheduling = {}
    scheduling = scheduling or {}
    model = scheduling.get("provisioningModel")
    if str(model).upper() != "SPOT":
        problems.append(
            f"{where}: node_config.scheduling.provisioningModel is {_shown(model)}; a spot type needs SPOT, or "
            f"GCE creates a standard VM billed at the on-demand rate (with preemptible: true alone, a legacy "
            f"preemptible VM, stopped after 24 h)."
        )
    action = scheduling.get("instanceTerminationAction")
    stop_is_handled = bool(provider.get("cache_stopped_nodes"))  # Ray then restarts stopped VMs of the type
    if not (str(action).upper() == "DELETE" or str(action).upper() == "STOP" and stop_is_handled):
        problems.append(
            f"{where}: node_config.scheduling.instanceTerminationAction is {_shown(action)}; use DELETE. GCE "
            f"stops a preempted Spot VM unless told to delete it (STOP is its default), and Ray's GCP provider "
            f"lists only running VMs: a stopped one is neither reused nor deleted by the autoscaler or "
            f"`ray down`, its disk billed until deleted by hand (STOP fits only with provider.cache_stopped_nodes: "
            f"true, where Ray restarts stopped VMs)."
        )
    restart = scheduling.get("automaticRestart")
    if restart is not False:
        problems.append(
            f"{where}: node_config.scheduling.automaticRestart is {_shown(restart)}; a Spot VM is never "
            f"restarted by GCE, which refuses true for one, and the API's default for the field is true: set "
            f"it false."
        )
    if scheduling.get("preemptible") not in (None, True):
        problems.append(
            f"{where}: node_config.scheduling.preemptible is {scheduling.get('preemptible')!r}; a Spot VM is "
            f"preemptible: set it true or leave it out."
        )
    if not vm_gpus(node_config) and str(scheduling.get("onHostMaintenance", "")).upper() != "TERMINATE":
        problems.append(
            f"{where}: node_config.scheduling.onHostMaintenance is {_shown(scheduling.get('onHostMaintenance'))}; "
            f"a Spot VM cannot be live-migrated: set TERMINATE."
        )
    label = (node_type.get("labels") or {}).get(MARKET_TYPE_LABEL)
    if label != "spot":
        problems.append(
            f"{where}: labels.{MARKET_TYPE_LABEL} is {_shown(label)}; give spot types "
            f"labels: {{\"{MARKET_TYPE_LABEL}\": \"spot\"}} so their nodes can be told from on-demand ones "
            f"(`ray list nodes`, label selectors)."
        )
    extra = sorted(set(node_type.get("resources") or {}) - PLANNED_RESOURCES)
    if extra:
        problems.append(
            f"{where}: resources declares {extra}, which trials never ask for: Ray's autoscaler scores a node "
            f"type lower for every resource a request leaves unused, so it would start the on-demand type "
            f"first. Tell spot types apart with the {MARKET_TYPE_LABEL} label instead."
        )
    return problems


def spot_tie_problems(node_types: dict, head_type: str | None) -> list[str]:
    """Where a trial fits a spot type and an on-demand type with the same resources equally well, Ray's
    autoscaler picks by priority, higher first (v2, what `ray up` runs since Ray 2.50), or by name, the one
    sorting last (v1). A spot type must win both ways to be started before its on-demand twin."""
    problems = []
    workers = {name: node_type for name, node_type in node_types.items() if name != head_type}
    spot = {name for name, node_type in workers.items() if is_spot_node_type(name, node_type)}
    for name in sorted(spot):
        resources = workers[name].get("resources") or {}
        priority = workers[name].get("priority", 0)
        for twin in sorted(set(workers) - spot):
            if (workers[twin].get("resources") or {}) != resources:
                continue
            twin_priority = workers[twin].get("priority", 0)
            if priority <= twin_priority:
                problems.append(
                    f"available_node_types.{name}: priority is {priority}, not above the {twin_priority} of on-demand "
                    f"type {twin}, which has the same resources; Ray's autoscaler v2 (the default of `ray up`) "
                    f"would start {twin} first. Give the spot type priority: {twin_priority + 1}."
                )
            if twin > name:
                problems.append(
                    f"available_node_types.{name}: on-demand type {twin} has the same resources and a name sorting "
                    f"after it; Ray's autoscaler v1 breaks such ties by name (the last wins) and would start {twin} "
                    f"first. Name the spot type so it sorts last (e.g. {twin}_spot)."
                )
    return problems
