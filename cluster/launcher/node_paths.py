"""Paths the driver computed, as they are on the node a trial runs on.

A sweep submitted as a Ray job runs from Ray's copy of the checkout, which every node unpacks under its own
temp dir (`<temp dir>/session_*/runtime_resources/working_dir_files/_ray_pkg_<hash>`). Nodes may have
different temp dirs (`ray start --temp-dir`, e.g. a local SSD on GPU nodes), so the driver's absolute path of
the app's config folder or working directory does not exist on another node: the same `_ray_pkg_<hash>`
folder does, under that node's temp dir, and Ray starts each task with it on `sys.path`.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Optional

PACKAGE_PREFIX = "_ray_pkg_"
FILE_SCHEME = "file://"


def _this_nodes_copy(package: str) -> Optional[Path]:
    """This node's folder named `package` (a `_ray_pkg_<hash>`), from the paths this process runs code from."""
    for entry in [*sys.path, os.getcwd(), __file__]:
        parts = Path(entry).absolute().parts
        if package in parts:
            folder = Path(*parts[: parts.index(package) + 1])
            if folder.is_dir():
                return folder
    return None


def on_this_node(path: str) -> str:
    """`path` unchanged when it exists here or is not inside a Ray copy of a working dir; else the same file
    in this node's copy (unchanged when this node has no such copy)."""
    if not path or os.path.exists(path):
        return path
    parts = Path(path).parts
    package = next((part for part in parts if part.startswith(PACKAGE_PREFIX)), None)
    if package is None:
        return path
    local = _this_nodes_copy(package)
    return str(local.joinpath(*parts[parts.index(package) + 1:])) if local is not None else path


def _mapped(path: Optional[str]) -> Optional[str]:
    if path and path.startswith(FILE_SCHEME):
        return FILE_SCHEME + on_this_node(path[len(FILE_SCHEME):])
    return on_this_node(path) if path and path.startswith("/") else path


def hydra_context_on_this_node(hydra_context):
    """The sweep's HydraContext with its config search path mapped onto this node (the same object when
    nothing needs mapping). Hydra's loader keeps the search path it was built with, so a new one is built."""
    search_path = hydra_context.config_loader.get_search_path()
    mapped = [_mapped(element.path) for element in search_path.get_path()]
    if mapped == [element.path for element in search_path.get_path()]:
        return hydra_context
    from hydra.types import HydraContext

    from cluster.private_apis import config_loader

    search_path = copy.deepcopy(search_path)
    for element, path in zip(search_path.get_path(), mapped):
        element.path = path
    return HydraContext(config_loader=config_loader(search_path), callbacks=hydra_context.callbacks)
