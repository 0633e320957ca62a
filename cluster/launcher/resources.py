"""What each trial asks Ray for, read from its composed job's `hydra.launcher.resources`, and the check that
some node can ever grant it (Ray would otherwise leave the trial pending forever)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf


class ResourceError(CompactHydraException):
    """A trial asks for more than any node of the cluster has."""


@dataclass(frozen=True)
class TrialResources:
    cpus: float = 1.0
    gpus: float = 0.0
    # The config keys a user sets them with: the app's own keys when hydra.launcher.resources
    # interpolates them (e.g. `cpus: ${resources.cpus}`), so messages name what to change.
    cpus_key: str = "hydra.launcher.resources.cpus"
    gpus_key: str = "hydra.launcher.resources.gpus"

    def bundle(self) -> dict:
        bundle = {"CPU": float(self.cpus)}
        if self.gpus:
            bundle["GPU"] = float(self.gpus)
        return bundle

    def placement(self):
        from ray import tune

        return tune.PlacementGroupFactory([self.bundle()])

    def describe(self) -> str:
        return f"{self.cpus_key}={self.cpus:g}, {self.gpus_key}={self.gpus:g}"


def trial_resources(sweep_config: DictConfig) -> TrialResources:
    """What the job's trial asks Ray for: its `hydra.launcher.resources` (1 CPU, no GPU by default)."""
    from cluster.launcher.job_configs import setting_key

    node = OmegaConf.select(sweep_config, "hydra.launcher.resources", default=None)
    values = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    return TrialResources(
        cpus=float(1 if values.get("cpus") is None else values["cpus"]),
        gpus=float(values.get("gpus") or 0),
        cpus_key=setting_key(sweep_config, "resources.cpus"),
        gpus_key=setting_key(sweep_config, "resources.gpus"),
    )


def alive_node_capacities() -> list[dict]:
    import ray

    return [
        {"node_id": node["NodeID"], "address": node.get("NodeManagerAddress"), "CPU": node["Resources"].get("CPU", 0.0),
         "GPU": node["Resources"].get("GPU", 0.0)}
        for node in ray.nodes()
        if node.get("Alive")
    ]


def check_fits(requests: Sequence[tuple[str, TrialResources]], nodes: Iterable[dict]) -> None:
    """Refuse the sweep before launch when a trial's request fits on no single node."""
    nodes = list(nodes)
    capacity = "; ".join(f"node {node['address']}: {node['CPU']:g} CPU, {node['GPU']:g} GPU" for node in nodes)
    for label, request in requests:
        if not any(node["CPU"] >= request.cpus and node["GPU"] >= request.gpus for node in nodes):
            raise ResourceError(
                f"Trial {label} asks for {request.describe()}, but no node of the Ray cluster has that much "
                f"({capacity or 'no alive node'}). Lower {request.cpus_key} / {request.gpus_key} for that job, or "
                f"add a node with more; a local Ray can declare more with hydra.launcher.init.num_cpus / num_gpus."
            )
