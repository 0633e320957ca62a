"""The requirements file every cluster node installs pins each dependency inside pyproject's ranges."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from cluster.definitions.pinned_requirements import (
    PYPROJECT,
    PinError,
    check_pins,
    pinned_lines,
    project_dependencies,
)

PINNED = PYPROJECT.parent / "cluster" / "requirements-cluster.txt"
DEPENDENCIES = [Requirement("tensorflow>=2.21,<2.22"), Requirement("ray[tune]>=2.60,<2.61"), Requirement("numpy>=2,<3")]
GOOD = "tensorflow[and-cuda]==2.21.0\nray[default,tune]==2.60.0\nnumpy==2.4.6\n"


def test_committed_pins_lie_within_pyprojects_ranges():
    check_pins(project_dependencies(), PINNED.read_text())


def test_gpu_nodes_get_tensorflow_with_cuda_at_the_tested_version():
    pins = {Requirement(line).name: Requirement(line) for line in PINNED.read_text().splitlines()
            if line and not line.startswith("#")}
    assert pins["tensorflow"].extras == {"and-cuda"}
    assert "default" in pins["ray"].extras  # the head runs the dashboard, Jobs API and autoscaler


def test_a_good_set_passes():
    check_pins(DEPENDENCIES, "# comment\n\n" + GOOD)


@pytest.mark.parametrize(
    "pinned,named",
    [
        (GOOD.replace("tensorflow[and-cuda]==2.21.0", "tensorflow[and-cuda]==2.20.0"), "outside pyproject's range"),
        (GOOD.replace("tensorflow[and-cuda]==2.21.0", "tensorflow==2.21.0"), "lacks the extra(s) ['and-cuda']"),
        (GOOD.replace("ray[default,tune]", "ray[default]"), "lacks the extra(s) ['tune']"),
        (GOOD.replace("numpy==2.4.6", "numpy>=2.4"), "expected ==VERSION"),
        (GOOD.replace("numpy==2.4.6\n", ""), "numpy: not pinned"),
        (GOOD + "requests==2.32.0\n", "requests: pinned but not a dependency"),
        (GOOD + "numpy==2.4.7\n", "pinned twice"),
    ],
)
def test_mistakes_are_named(pinned, named):
    with pytest.raises(PinError) as error:
        check_pins(DEPENDENCIES, pinned)
    assert named in str(error.value)


def test_generator_pins_the_installed_versions_with_the_cluster_extras():
    installed = {"tensorflow": "2.21.0", "ray": "2.60.0", "numpy": "2.4.6"}
    assert pinned_lines(DEPENDENCIES, installed.__getitem__) == GOOD.splitlines()


def test_generator_refuses_a_version_outside_the_range():
    installed = {"tensorflow": "2.22.0", "ray": "2.60.0", "numpy": "2.4.6"}
    with pytest.raises(PinError, match="tensorflow 2.22.0 is installed, outside"):
        pinned_lines(DEPENDENCIES, installed.__getitem__)
