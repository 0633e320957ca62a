"""Hydra's own launcher test suites, which its official launchers (joblib, ray, submitit) pass, run against
the `ray_tune` launcher on an embedded local Ray: it is a Hydra launcher any app can use, not only this
project's (none of these apps report epochs, name a metric or have this project's config keys)."""

from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.ray_tune_launcher.ray_tune_launcher import RayTuneLauncher


@pytest.fixture(scope="module", autouse=True)
def one_local_ray():
    """The in-process suite's sweeps attach to one local Ray (the launcher leaves a Ray it did not start
    running) instead of starting their own each, which is most of their time. A new local Ray sets
    RAY_AUTH_MODE=token in this process's environment: it is taken back after, for the tests that follow."""
    import ray

    with pytest.MonkeyPatch.context() as environment:
        environment.delenv("RAY_AUTH_MODE", raising=False)  # recorded, so that it is restored
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
        yield
        ray.shutdown()


def test_discovery() -> None:
    assert RayTuneLauncher.__name__ in [plugin.__name__ for plugin in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("ray_tune", ["+hydra.launcher.init.num_cpus=2"])])
class TestRayTuneLauncher(LauncherTestSuite):
    pass


# Each of its apps starts Python, Hydra and a local Ray of its own: about 4 minutes on 2 cores. CI runs it.
@pytest.mark.slow
@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {"defaults": [{"override hydra/launcher": "ray_tune"}, {"override hydra/hydra_logging": "hydra_debug"},
                          {"override hydra/job_logging": "disabled"}]},
            ["-m", "+hydra.launcher.init.num_cpus=2"],
        )
    ],
)
class TestRayTuneLauncherIntegration(IntegrationTestSuite):
    pass
