"""Which worker type Ray's own autoscaler starts for a trial, offline: autoscaler v1's `get_nodes_for` with its
default scorer, and v2's `ResourceDemandScheduler` (what `ray up` runs since Ray 2.50; KubeRay runs it with
autoscalerOptions.version: v2), each fed a cluster definition as Ray reads it: the cluster-launcher file
through Ray's prepare_config, a RayCluster through the KubeRay autoscaler's own conversion.

These are Ray's private modules, imported here only (tests, not the launcher): a Ray upgrade that moves them
or changes how they choose fails these tests by name rather than silently changing which VMs a sweep pays for.
"""

from __future__ import annotations

import copy
import functools

from cluster.launcher.resources import TrialResources


def trial_demand(gpus: int, cpus: int = 1) -> dict:
    """What one trial asks Ray for, as the launcher builds it (one bundle of its placement group)."""
    return TrialResources(cpus=cpus, gpus=gpus).bundle()


def v1_starts(config: dict, demands: list[dict], running: dict[str, int] | None = None) -> dict[str, int]:
    """Worker types (and how many) autoscaler v1 adds for `demands` on a cluster already running `running`.
    `config` as prepare_config returns it (available_node_types, head_node_type, max_workers)."""
    from ray.autoscaler._private.node_provider_availability_tracker import NodeAvailabilitySummary
    from ray.autoscaler._private.resource_demand_scheduler import _default_utilization_scorer, get_nodes_for

    scorer = functools.partial(_default_utilization_scorer, node_availability_summary=NodeAvailabilitySummary({}))
    to_add, _ = get_nodes_for(config["available_node_types"], dict(running or {}), config["head_node_type"],
                              config.get("max_workers", 0), demands, utilization_scorer=scorer)
    return {name: count for name, count in to_add.items() if count}


def v2_starts(config: dict, demands: list[dict]) -> dict[str, int]:
    """Worker types (and how many) autoscaler v2 launches for `demands` on a cluster with no worker yet."""
    from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig
    from ray.autoscaler.v2.scheduler import ResourceDemandScheduler, SchedulingRequest
    from ray.autoscaler.v2.utils import ResourceRequestUtil

    autoscaling = AutoscalingConfig(copy.deepcopy(config), skip_content_hash=True)
    request = SchedulingRequest(
        disable_launch_config_check=True,
        node_type_configs=autoscaling.get_node_type_configs(),
        max_num_nodes=autoscaling.get_max_num_nodes(),
        resource_requests=ResourceRequestUtil.group_by_count([ResourceRequestUtil.make(d) for d in demands]),
    )
    launches = ResourceDemandScheduler(None).schedule(request).to_launch
    return {launch.instance_type: launch.count for launch in launches}


def kuberay_autoscaling_config(ray_cluster: dict) -> dict:
    """The autoscaling config the Ray autoscaler beside a KubeRay head derives from the RayCluster (node types
    named after the groups, resources from the Ray container's limits, labels from the groups), checked by
    Ray's own validate_config."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    ray_cluster = copy.deepcopy(ray_cluster)
    ray_cluster["metadata"].setdefault("namespace", "default")  # kubectl fills it in; the manifest leaves it out
    return _derive_autoscaling_config_from_ray_cr(ray_cluster)
