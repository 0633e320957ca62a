"""What each trial asks Ray for, read from its composed job config, and the check that some node can
ever grant it (Ray would otherwise leave the trial pending forever)."""

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
    rehearse_gpus_on_cpu: bool = False

    def bundle(self) -> dict:
        bundle = {"CPU": float(self.cpus)}
        if self.gpus:
            bundle["GPU"] = float(self.gpus)
        return bundle

    def placement(self):
        from ray import tune

        return tune.PlacementGroupFactory([self.bundle()])

    def describe(self) -> str:
        return f"resources.cpus={self.cpus:g}, resources.gpus={self.gpus:g}"


def trial_resources(job_cfg: DictConfig) -> TrialResources:
    """From the job's `resources` block (1 CPU, no GPU when the config has none)."""
    return TrialResources(
        cpus=float(OmegaConf.select(job_cfg, "resources.cpus", default=1)),
        gpus=float(OmegaConf.select(job_cfg, "resources.gpus", default=0)),
        rehearse_gpus_on_cpu=bool(OmegaConf.select(job_cfg, "resources.rehearse_gpus_on_cpu", default=False)),
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
                f"({capacity or 'no alive node'}). Lower resources.cpus / resources.gpus for that job, or add a "
                f"node with more; a local Ray can declare more with hydra.launcher.init.num_cpus / num_gpus."
            )
