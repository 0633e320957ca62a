"""Offline checks of a Ray cluster-launcher file for GCP, before `ray up` spends money on it.

    python -m cluster.definitions.cluster_config cluster/gcp-gpu.yaml

First what `ray up` itself runs before it calls GCP: Ray's `prepare_config` (fills in Ray's GCP defaults)
and `validate_config` (Ray's schema, the head node type, worker counts). Then what Ray leaves to GCP, or to
luck: GPUs declared to the autoscaler that the VM would not have (or the reverse), GPU VMs that GCP refuses
to create (no `onHostMaintenance: TERMINATE`) or that boot without a driver, per-type `min_workers` above
`max_workers`, workers whose default scopes make every bucket upload fail, a dashboard (which runs
arbitrary code) on a public interface, and Ray processes started without token authentication or token.
Spot node types (SPOT or preemptible scheduling, a `ray.io/market-type: spot` label, or "spot" in the name)
must also be Spot VMs as GCE wants them (provisioningModel SPOT, automaticRestart false, host maintenance
TERMINATE), deleted when preempted (or stopped only where Ray restarts stopped VMs), labelled, and started by
Ray's autoscaler before an on-demand type with the same resources (higher priority, a name sorting after
it, no resource trials never ask for).
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

from cluster.definitions.gcp_spot import is_spot_node_type, spot_problems, spot_tie_problems
from cluster.definitions.gcp_vms import scheduling_list_problem, vm_gpus

# Scopes that let a VM's service account write to Cloud Storage (IAM then decides which buckets).
STORAGE_WRITE_SCOPES = {
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/devstorage.full_control",
}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DASHBOARD_HOST = re.compile(r"--dashboard-host(?:=|\s+)[\"']?([^\s\"';]+)")
PLACEHOLDER = re.compile(r"YOUR_[A-Z_]+")


class ClusterConfigError(ValueError):
    """A cluster definition (launcher file, KubeRay manifest) that would fail, or cost or expose more than
    it should, once launched."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the cluster config:\n  - " + "\n  - ".join(problems))


def load_cluster_config(path: str | Path) -> dict:
    with open(path) as file:
        config = yaml.safe_load(file)
    if not isinstance(config, dict):
        raise ClusterConfigError([f"{path} holds {type(config).__name__}, expected a mapping of cluster settings."])
    return config


def prepare_and_validate(config: dict) -> dict:
    """What `ray up` runs on the file before it calls the cloud: Ray's defaults merged in, then Ray's
    schema and rules. Returns the prepared config; raises Ray's own errors (jsonschema.ValidationError,
    ValueError) naming the field."""
    from cluster.private_apis import prepare_and_validate_cluster

    return prepare_and_validate_cluster(copy.deepcopy(config))


def check_gcp_cluster_config(config: dict) -> None:
    """Raise ClusterConfigError naming each node type or command and field that is wrong. Pass the
    config as `prepare_and_validate` returns it, so Ray's defaults (e.g. its start commands, which open
    the dashboard on 0.0.0.0) are checked too."""
    provider = config.get("provider", {}).get("type")
    if provider != "gcp":
        raise ClusterConfigError([f"provider.type is {provider!r}: these checks are for GCP ('gcp')."])
    problems = []
    head_type = config.get("head_node_type")
    node_types = config.get("available_node_types", {})
    for name, node_type in node_types.items():
        problems += _node_type_problems(name, node_type, is_head=name == head_type)
        if name != head_type and is_spot_node_type(name, node_type):
            problems += spot_problems(name, node_type, config.get("provider", {}))
    problems += spot_tie_problems(node_types, head_type)
    problems += _dashboard_problems(config)
    problems += _auth_problems(config)
    if problems:
        raise ClusterConfigError(problems)


def _node_type_problems(name: str, node_type: dict, is_head: bool) -> list[str]:
    where = f"available_node_types.{name}"
    problems = []
    low, high = node_type.get("min_workers", 0), node_type.get("max_workers", 0)
    if low > high:
        problems.append(f"{where}: min_workers ({low}) is above max_workers ({high}); lower min_workers or raise "
                        f"max_workers.")
    node_config = node_type.get("node_config", {})
    declared = node_type.get("resources", {}).get("GPU", 0)
    actual = vm_gpus(node_config)
    machine = node_config.get("machineType")
    if declared and not actual:
        problems.append(
            f"{where}: resources.GPU is {declared} but the VM would have no GPU: machineType {machine} has none "
            f"built in and node_config.guestAccelerators is missing. Add guestAccelerators (for N1 machine "
            f"types) or choose an accelerator-optimized machineType (g2-standard-*, a2-highgpu-*)."
        )
    elif declared != actual:
        problems.append(
            f"{where}: resources.GPU is {declared} but the VM would have {actual} GPU(s) (machineType {machine}, "
            f"guestAccelerators {node_config.get('guestAccelerators', [])}). The autoscaler plans with "
            f"resources: make resources.GPU {actual}."
        )
    if actual:
        problems += _gpu_vm_problems(where, node_config)
    if not is_head:
        problems += _service_account_problems(where, node_config)
    return problems


def _gpu_vm_problems(where: str, node_config: dict) -> list[str]:
    problems = []
    scheduling = node_config.get("scheduling")
    if isinstance(scheduling, list):
        problems.append(scheduling_list_problem(where))
    elif str((scheduling or {}).get("onHostMaintenance", "")).upper() != "TERMINATE":
        problems.append(
            f"{where}: node_config.scheduling.onHostMaintenance is "
            f"{(scheduling or {}).get('onHostMaintenance')!r}; a VM with GPUs cannot be live-migrated, so GCP "
            f"refuses to create it unless it is TERMINATE."
        )
    items = (node_config.get("metadata") or {}).get("items") or []
    driver = {str(item.get("key")): str(item.get("value")) for item in items}.get("install-nvidia-driver")
    if (driver or "").lower() != "true":
        problems.append(
            f"{where}: node_config.metadata has no item install-nvidia-driver: \"True\"; the Deep Learning VM "
            f"image then boots without the NVIDIA driver and TensorFlow sees no GPU."
        )
    return problems


def _service_account_problems(where: str, node_config: dict) -> list[str]:
    accounts = node_config.get("serviceAccounts") or []
    scopes = {scope for account in accounts for scope in account.get("scopes") or []}
    if not accounts or not scopes & STORAGE_WRITE_SCOPES:
        return [
            f"{where}: node_config.serviceAccounts gives no scope that can write to Cloud Storage (got "
            f"{sorted(scopes) or 'none: the default account and scopes'}); trials upload their checkpoints "
            f"from this VM and would get 403. Give it an account with the cloud-platform scope and a "
            f"storage role on the bucket."
        ]
    return []


def _start_commands(config: dict) -> Iterator[tuple[str, int, str]]:
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for index, command in enumerate(config.get(key) or []):
            yield key, index, command


def _dashboard_problems(config: dict) -> list[str]:
    problems = []
    for key, index, command in _start_commands(config):
        for host in DASHBOARD_HOST.findall(command):
            if host not in LOOPBACK_HOSTS:
                problems.append(
                    f"{key}[{index}]: --dashboard-host={host} puts the dashboard and Jobs API, which run any "
                    f"code they are sent, on the network. Use --dashboard-host=127.0.0.1 and reach it through "
                    f"`ray dashboard CLUSTER.yaml` (SSH)."
                )
    return problems


def _auth_problems(config: dict) -> list[str]:
    problems = []
    for key, index, command in _start_commands(config):
        start = command.find("ray start")
        if start < 0:
            continue
        mode = command.find("RAY_AUTH_MODE=token")
        if mode < 0 or mode > start:
            problems.append(
                f"{key}[{index}]: `ray start` runs without RAY_AUTH_MODE=token; a node started without it "
                f"serves (or cannot join) the cluster unauthenticated. Begin the command with "
                f"`export RAY_AUTH_MODE=token;`."
            )
    has_token_env = any("RAY_AUTH_TOKEN" in command for _, _, command in _start_commands(config))
    has_token_file = any(Path(remote).as_posix().endswith(".ray/auth_token")
                         for remote in config.get("file_mounts", {}))
    if not (has_token_file or has_token_env):
        problems.append(
            "file_mounts: no ~/.ray/auth_token, and no start command sets RAY_AUTH_TOKEN: the nodes would have "
            "no token and `ray start` would fail. Mount the laptop's token: "
            "\"~/.ray/auth_token\": \"~/.ray/auth_token\" (made by `ray get-auth-token --generate`)."
        )
    return problems


def unfilled_placeholders(config: Any, path: str = "") -> list[str]:
    """Dotted paths of values still holding a YOUR_... placeholder of the shipped file."""
    if isinstance(config, dict):
        return [found for key, value in config.items() for found in unfilled_placeholders(value, f"{path}{key}.")]
    if isinstance(config, list):
        return [found for index, value in enumerate(config)
                for found in unfilled_placeholders(value, f"{path}{index}.")]
    return [f"{path.rstrip('.')}: {config}"] if isinstance(config, str) and PLACEHOLDER.search(config) else []


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cluster.definitions.cluster_config CLUSTER.yaml", file=sys.stderr)
        return 2
    config = load_cluster_config(args[0])
    try:
        prepared = prepare_and_validate(config)
        check_gcp_cluster_config(prepared)
    except Exception as error:  # Ray's and ours: each names the field
        print(f"{args[0]}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if placeholders := unfilled_placeholders(config):
        print(f"{args[0]}: valid, but replace the placeholders before `ray up`:\n  " + "\n  ".join(placeholders),
              file=sys.stderr)
        return 1
    print(f"{args[0]}: passes Ray's validation and this project's checks.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
