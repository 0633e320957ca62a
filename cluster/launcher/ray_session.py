"""Connecting the sweep's driver to Ray: an existing cluster (an address) or an embedded local Ray."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Mapping, Optional

from hydra.errors import CompactHydraException

log = logging.getLogger(__name__)


class ClusterUnreachable(CompactHydraException):
    """Nobody answers at the Ray address the sweep was given."""


def resolve_address(configured: Optional[str]) -> Optional[str]:
    """hydra.launcher.address wins over $RAY_ADDRESS; neither means an embedded local Ray."""
    return configured or os.environ.get("RAY_ADDRESS") or None


def _probe(address: str, timeout_s: float) -> None:
    """Ray itself retries a dead GCS address for a long time; a TCP probe fails in seconds instead."""
    if address == "auto" or "://" in address:
        return  # auto discovers a local head; ray:// (Ray Client) has its own timeout
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(
            f"hydra.launcher.address (or RAY_ADDRESS) is {address!r}: expected host:port of a Ray head, "
            f"e.g. 10.0.0.5:6379, or 'auto'."
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ClusterUnreachable(
            f"No Ray cluster answers at {address} (tried for {timeout_s:g} s: {error}). Start one there with "
            f"`ray start --head --port={port}`, fix hydra.launcher.address / RAY_ADDRESS, or unset both to "
            f"run on an embedded local Ray."
        ) from error


def connect(address: Optional[str], init_kwargs: Mapping[str, Any], timeout_s: float) -> bool:
    """ray.init for the sweep; returns True when this call started Ray (so the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(init_kwargs)  # only the keys the user set: defaults would break attaching (hydra #2893)
    if address:
        _probe(address, timeout_s)
        log.info("Attaching to the Ray cluster at %s", address)
        ray.init(address=address, **kwargs)
    else:
        log.info("Starting an embedded local Ray")
        kwargs.setdefault("include_dashboard", False)
        # "local", not None: ray.init(None) would attach to whatever cluster `ray start` last left in
        # /tmp/ray on this machine, maybe someone else's.
        ray.init(address="local", **kwargs)
    return True
