"""What KubeRay makes of a pod template: the container Ray runs in, and the taints its tolerations let it onto."""

from __future__ import annotations


def ray_container(template: dict) -> dict:
    """KubeRay runs Ray in a pod's first container."""
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return containers[0]


def tolerates(tolerations: list[dict], key: str, value: str) -> bool:
    """Whether the tolerations let a pod onto nodes tainted key=value:NoSchedule."""
    for toleration in tolerations:
        key_matches = toleration.get("key") in (key, None)  # no key + Exists tolerates every taint
        effect_matches = toleration.get("effect") in ("NoSchedule", None, "")
        operator_matches = toleration.get("operator", "Equal") == "Exists" or toleration.get("value") == value
        if key_matches and effect_matches and operator_matches:
            return True
    return False
