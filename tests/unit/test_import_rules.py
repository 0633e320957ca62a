"""The layers import only downwards (cluster/__init__.py says which package may import what): every import in
the source, at module level or inside a function, is read with `ast` and checked against the rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("cluster", "trainers", "hydra_plugins", "launch")

# package -> the project packages it may import (itself always allowed).
ALLOWED = {
    "cluster.private_apis": set(),
    "cluster.store": set(),
    "cluster.definitions": {"cluster.private_apis"},
    "cluster.submission": {"cluster.store", "cluster.private_apis"},
    "cluster.launcher": {"cluster.store", "cluster.submission", "cluster.private_apis"},
    "cluster.results": {"cluster.store", "cluster.submission", "cluster.private_apis", "trainers.job_files",
                        "trainers.export",
                        "trainers.schema", "trainers.class_folders", "trainers.csv_files"},
    "trainers": set(),
    "hydra_plugins": {"cluster.launcher"},
}
# Third-party packages a layer must not touch: the trainers know nothing of Ray or buckets, the cluster
# packages nothing of Keras.
FORBIDDEN = {
    "trainers": {"ray", "google.cloud", "cluster", "hydra_plugins"},
    "cluster": {"keras", "tensorflow"},
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("cluster", "trainers", "hydra_plugins"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(part for part in parts if part != "__init__")
            if module != "cluster":  # the package's doc and its moved-module aliases
                found.append((module, path))
    return found


def _imports(path: Path, module: str) -> list[str]:
    names = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the module's package
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            names += [f"{base}.{alias.name}" for alias in node.names]  # a module or a name in one
    return names


def _layer(module: str) -> str:
    return next(layer for layer in sorted(ALLOWED, key=len, reverse=True)
                if module == layer or module.startswith(layer + "."))


def _within(name: str, allowed: set[str]) -> bool:
    return any(name == target or name.startswith(target + ".") for target in allowed)


def _violations(modules: list[tuple[str, Path]]) -> list[str]:
    problems = []
    for module, path in modules:
        layer = _layer(module)
        for name in _imports(path, module):
            top = name.split(".")[0]
            for scope, banned in FORBIDDEN.items():
                if _within(module, {scope}) and _within(name, banned):
                    problems.append(f"{module} imports {name}")
            if top not in PROJECT or _within(name, {layer}):
                continue
            if not _within(name, ALLOWED[layer]):
                problems.append(f"{module} imports {name} ({layer} may import {sorted(ALLOWED[layer]) or 'nothing'})")
    return problems


def test_every_layer_imports_only_what_it_may():
    assert _violations(_modules()) == []


def test_the_launcher_core_names_no_app():
    mentions = [f"{path.relative_to(ROOT)}:{number}" for _, path in _modules() if _layer(_) == "cluster.launcher"
                for number, line in enumerate(path.read_text().splitlines(), 1) if "launch.py" in line]
    assert mentions == []


@pytest.mark.parametrize("bad", ["from trainers import job", "import cluster.results.pull",
                                 "from ..results import layout", "import keras"])
def test_the_check_catches_a_forbidden_import(tmp_path, bad):
    """The rule check itself: a launcher module importing app code or Keras is reported."""
    module = tmp_path / "bad.py"
    module.write_text(bad + "\n")
    assert _violations([("cluster.launcher.bad", module)]) != []
