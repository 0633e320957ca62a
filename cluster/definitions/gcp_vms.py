"""What a GCE VM of a node type will have: its GPUs (from the machine type and guestAccelerators) and its
scheduling block as one mapping."""

from __future__ import annotations

import re

# Accelerator-optimized machine types whose GPUs come with the machine type (no guestAccelerators entry).
# The A series encode their count in the name (a2-highgpu-4g, a3-megagpu-8g); G2 need a table.
G2_GPUS = {
    "g2-standard-4": 1, "g2-standard-8": 1, "g2-standard-12": 1, "g2-standard-16": 1, "g2-standard-32": 1,
    "g2-standard-24": 2, "g2-standard-48": 4, "g2-standard-96": 8,
}
A_SERIES_GPUS = re.compile(r"^a\d+-[a-z]+gpu-(\d+)g(-[a-z]+)?$")

def machine_gpus(machine_type: str) -> int:
    """GPUs a machine type comes with (0 for general-purpose types such as n1 or n2)."""
    name = machine_type.rsplit("/", 1)[-1]  # also accepts zones/ZONE/machineTypes/NAME
    if name in G2_GPUS:
        return G2_GPUS[name]
    match = A_SERIES_GPUS.match(name)
    return int(match.group(1)) if match else 0


def vm_gpus(node_config: dict) -> int:
    """GPUs the VM will have: those of its machine type plus its guestAccelerators."""
    attached = sum(int(item.get("acceleratorCount", 0)) for item in node_config.get("guestAccelerators") or [])
    return machine_gpus(str(node_config.get("machineType", ""))) + attached


def scheduling_list_problem(where: str) -> str:
    return (f"{where}: node_config.scheduling is a list; the Compute API wants a mapping "
            f"(scheduling: {{onHostMaintenance: TERMINATE}}), see ray-project/ray#46248.")


def scheduling_of(node_config: dict) -> dict:
    """node_config.scheduling as one mapping (the list form of Ray's examples merged, for detection only)."""
    scheduling = node_config.get("scheduling") or {}
    if isinstance(scheduling, list):
        return {key: value for item in scheduling if isinstance(item, dict) for key, value in item.items()}
    return scheduling if isinstance(scheduling, dict) else {}
