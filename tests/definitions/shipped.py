"""Where the shipped cluster definitions live, and the versions they must agree with."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from cluster.definitions.pinned_requirements import PYPROJECT, read_pins

ROOT = PYPROJECT.parent
GCP_CLUSTER = ROOT / "cluster" / "gcp-gpu.yaml"
KUBERAY = ROOT / "cluster" / "kuberay"
PINNED = ROOT / "cluster" / "requirements-cluster.txt"
RAY_IMAGE = re.compile(r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<major>\d)(?P<minor>\d+)-(?P<flavour>gpu|cu\d+)$")


def assert_ray_image_matches_project(image: str) -> None:
    """A rayproject/ray GPU image with the Ray version pinned for the nodes and a Python pyproject allows:
    the laptop's Ray, the nodes' Ray and the project's Python must agree."""
    match = RAY_IMAGE.match(image)
    assert match, f"{image!r} is not a rayproject/ray:VERSION-pyXY-gpu image"
    with open(PYPROJECT, "rb") as file:
        requires_python = SpecifierSet(tomllib.load(file)["project"]["requires-python"])
    python = f"{match['major']}.{match['minor']}"
    assert requires_python.contains(python), f"{image}: Python {python}, pyproject requires {requires_python}"
    ray_pin: Requirement = read_pins(PINNED.read_text())["ray"]
    assert ray_pin.specifier.contains(match["ray"]), f"{image}: Ray {match['ray']}, nodes pin {ray_pin}"
