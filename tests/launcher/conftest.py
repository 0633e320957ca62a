"""Ray fixtures for the sweep tests: a real two-node Ray cluster on 127.0.0.1 started with the `ray start`
CLI once per session, and stopped by the pids of the processes it started (never `ray stop`: other
people may run Ray on this machine)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests import ports
from tests.capabilities import require_programs, require_root
from tests.conftest import LAUNCH, PROJECT_ROOT, RAY_TEST_TOKEN, wait_for  # noqa: F401 (shared with the sweep tests)

RAY = str(Path(sys.executable).with_name("ray"))
TEST_CONF = Path(__file__).with_name("conf")
# Ray 2.60 with token authentication: every process (nodes, drivers) needs these to join a cluster here.
# The token is this test session's own, the one every Ray of the session uses (tests/conftest.py; Ray reads
# RAY_AUTH_TOKEN first): a fresh machine has no ~/.ray/auth_token, and the tests must not create or read the user's.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": RAY_TEST_TOKEN,
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_USAGE_STATS_ENABLED": "0"}
# Small and quick jobs: a sweep's cost here is mostly TensorFlow starting in each trial.
QUICK = ["data.max_train_samples=200", "trainer.epochs=2", "storage.uri=null", "trainer.verbose=2"]


class RayCluster:
    """`ray start --head` plus `ray start --address` nodes, all on 127.0.0.1 with their own ports and temp dir."""

    def __init__(self) -> None:
        # Short: Ray's unix socket paths live under it.
        self.temp_dir = tempfile.mkdtemp(prefix="rlt", dir="/tmp")
        self.node_temp_dirs: list[str] = []  # nodes started with a temp dir of their own
        self.port = ports.port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **RAY_ENV}
        self.env.pop("RAY_ADDRESS", None)
        # The nodes' `python` is this environment's, as a cluster's nodes have the project's dependencies.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"

    def _node_ports(self) -> list[str]:
        # Every port distinct across the session (tests/ports.py) and outside every worker range: Ray refuses
        # to start when two components share one, and a node left with Ray's defaults would clash with another.
        low, high = ports.port_range(40)
        port = ports.port
        return [
            f"--node-manager-port={port()}", f"--object-manager-port={port()}",
            f"--dashboard-agent-grpc-port={port()}", f"--dashboard-agent-listen-port={port()}",
            f"--metrics-export-port={port()}", f"--runtime-env-agent-port={port()}",
            f"--min-worker-port={low}", f"--max-worker-port={high}",
        ]

    def _start(self, args: list[str], wrap: list[str] | None = None) -> None:
        common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--object-store-memory=200000000"]
        command = [RAY, "start", *args, *common, *self._node_ports()]
        result = subprocess.run([*(wrap or []), *command], env=self.env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{result.stdout}\n{result.stderr}")

    def start_head(self, num_cpus: int, num_gpus: int, extra: list[str] = (), dashboard: bool = False) -> None:
        """`dashboard`: also the dashboard and the Jobs API, on 127.0.0.1:self.dashboard_port."""
        self.dashboard_port = ports.port() if dashboard else None
        web = (["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
               if dashboard else ["--include-dashboard=false"])
        self._start(["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", *web,
                     f"--ray-client-server-port={ports.port()}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
                     *extra])

    @property
    def jobs_address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def add_node(self, num_cpus: int, num_gpus: int, temp_dir: str | None = None) -> None:
        """`temp_dir`: the node's own Ray temp dir (`ray start --temp-dir`, as GPU nodes put it on a local SSD):
        jobs' working dirs are unpacked there, not where the head unpacks them."""
        own = [f"--temp-dir={temp_dir}"] if temp_dir else []
        if temp_dir:
            self.node_temp_dirs.append(temp_dir)
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}", *own])

    def add_node_with_own_disk(self, num_cpus: int, private_dir: Path, temp_dir: str | None = None) -> "PrivateDisk":
        """A node that, like a cloud VM, shares no disk with the others: its processes (raylet, workers,
        trials) live in a mount namespace of their own where `private_dir` and Ray's temp dir (where each
        node unpacks jobs' working dirs, and cleans them up) are empty tmpfs. The mounts are gone with its
        last process. Needs root (unshare, mount). `temp_dir`: the node's own Ray temp dir, elsewhere than the
        head's (which it does not see)."""
        private_dir.mkdir(parents=True, exist_ok=True)
        marker = Path(tempfile.mkdtemp(prefix="rl-mnt-ns-")) / "namespace"
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(folder))}"
                             for folder in (private_dir, self.temp_dir))
        script = f"{mounts} && readlink /proc/self/ns/mnt > {shlex.quote(str(marker))} && exec \"$@\""
        own = [f"--temp-dir={temp_dir}"] if temp_dir else []
        if temp_dir:
            self.node_temp_dirs.append(temp_dir)
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}", "--num-gpus=0", *own],
                    wrap=["unshare", "--mount", "--propagation", "private", "bash", "-c", script, "node"])
        namespace = marker.read_text().strip()
        shutil.rmtree(marker.parent, ignore_errors=True)
        return PrivateDisk(private_dir, namespace)

    def nodes(self) -> list[dict]:
        """Alive nodes as the cluster reports them (asked from a separate driver process)."""
        code = ("import json, ray; ray.init(address=%r, logging_level='ERROR');"
                "print(json.dumps([n for n in ray.nodes() if n['Alive']], default=str))" % self.address)
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def wait_for_nodes(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.time() + timeout
        while True:
            nodes = self.nodes()
            if len(nodes) >= count or time.time() > deadline:
                return nodes
            time.sleep(1)

    def pids(self) -> set[int]:
        """Every process of this cluster: those naming its temp dir (gcs, raylets, agents) and their children."""
        found: set[int] = set()
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(folder in part for part in process.info["cmdline"] or []
                       for folder in (self.temp_dir, *self.node_temp_dirs)):
                    found.add(process.pid)
                    found.update(child.pid for child in process.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def stop(self) -> None:
        processes = []
        for pid in self.pids():
            try:
                processes.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        for process in processes:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(processes, timeout=15)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for folder in (self.temp_dir, *self.node_temp_dirs):
            shutil.rmtree(folder, ignore_errors=True)


class PrivateDisk:
    """The processes of a node started by `add_node_with_own_disk`: found by their mount namespace."""

    def __init__(self, folder: Path, namespace: str):
        self.folder, self.namespace = folder, namespace

    def pids(self) -> list[int]:
        found = []
        for pid in psutil.pids():
            try:
                if os.readlink(f"/proc/{pid}/ns/mnt") == self.namespace:
                    found.append(pid)
            except OSError:
                continue
        return found

    def _signal_all(self, signum: int) -> list[int]:
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        return pids

    def freeze(self) -> list[int]:
        """SIGSTOP every process of the node: nothing on it moves on while a test reads its disk."""
        return self._signal_all(signal.SIGSTOP)

    def kill(self) -> list[int]:
        """SIGKILL every process of the node at once, as when its machine dies."""
        return self._signal_all(signal.SIGKILL)

    def path_seen_by_node(self, path: Path) -> Path:
        """`path` as the node's processes see it (through /proc of one of them)."""
        return Path(f"/proc/{self.pids()[0]}/root") / path.relative_to("/")


def require_nodes_with_their_own_disk() -> None:
    """A node with a disk of its own is a tmpfs mounted in a mount namespace of its own: skipped without root
    or unshare on a developer's machine, a failure under CI (tests/capabilities.py)."""
    why = "to simulate nodes with disks of their own (a tmpfs in a mount namespace of its own, unshare --mount)"
    require_root(why, install="run the slow tier as root (CI's container does)")
    require_programs("unshare", install="apt-get install -y util-linux")


@pytest.fixture(scope="session")
def two_node_cluster():
    """Head and one more node, 1 CPU and 2 (declared) GPUs each: two trials at a time, one per node."""
    cluster = RayCluster()
    try:
        cluster.start_head(num_cpus=1, num_gpus=2)
        cluster.add_node(num_cpus=1, num_gpus=2)
        nodes = cluster.wait_for_nodes(2)
        assert len(nodes) == 2, f"the second node did not join: {nodes}"
        yield cluster
    finally:
        cluster.stop()
        assert not cluster.pids(), "Ray processes of the test cluster survived"


def launch_env(address: str | None = None) -> dict:
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    if address:
        env["RAY_ADDRESS"] = address
    return env


def sweep(args: list[str], sweep_dir: Path, address: str | None = None, timeout: float = 600,
          extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`python launch.py -m ARGS hydra.sweep.dir=SWEEP_DIR` in a subprocess, as a user runs it."""
    env = {**launch_env(address), **(extra_env or {})}
    return subprocess.run([sys.executable, str(LAUNCH), "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
                          cwd=str(PROJECT_ROOT), env=env, capture_output=True, text=True, timeout=timeout)


def start_sweep(args: list[str], sweep_dir: Path, address: str | None = None) -> subprocess.Popen:
    log = open(sweep_dir.parent / f"{sweep_dir.name}.console.log", "w")
    return subprocess.Popen([sys.executable, str(LAUNCH), "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
                            cwd=str(PROJECT_ROOT), env=launch_env(address), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# A dead node is noticed within ~3 s instead of Ray's default ~30 s of missed health checks.
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 1000,
                   "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}

HOLD_HEAD = """
import sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], namespace="tests", logging_level="ERROR")
head = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])

@ray.remote(num_cpus=2)
class HoldHeadCPUs:
    def ready(self):
        return True

actor = HoldHeadCPUs.options(name="hold-head", lifetime="detached",
                             scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)).remote()
ray.get(actor.ready.remote())
"""
RELEASE_HEAD = """
import sys, ray
ray.init(address=sys.argv[1], namespace="tests", logging_level="ERROR")
ray.kill(ray.get_actor("hold-head"))
"""


class CloudLikeCluster:
    def __init__(self, cluster: RayCluster, worker, base: Path, bucket: str, emulator: str):
        self.cluster, self.worker, self.base, self.bucket, self.emulator = cluster, worker, base, bucket, emulator

    def run(self, code: str) -> None:
        result = subprocess.run([sys.executable, "-c", code, self.cluster.address], env=self.cluster.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]

    def hold_head(self) -> None:
        """Take the head's CPUs, so that trials can only start on the worker."""
        self.run(HOLD_HEAD)

    def release_head(self) -> None:
        self.run(RELEASE_HEAD)

    def replace_worker(self) -> None:
        """A new worker (an empty disk of its own again) for the tests that follow one that killed it."""
        self.worker.kill()
        self.worker = self.cluster.add_node_with_own_disk(num_cpus=4, private_dir=self.base)
        assert len(self.cluster.wait_for_nodes(2)) == 2, "the replacement worker did not join"

    def node_ids(self) -> dict[str, str]:
        """'head' and 'worker' -> node id."""
        nodes = self.cluster.nodes()
        head = next(n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"])
        return {"head": head, "worker": next(n["NodeID"] for n in nodes if n["NodeID"] != head)}


@pytest.fixture(scope="session")
def cloud_like_cluster(gcs_server):
    """Head (2 CPUs, dashboard and Jobs API on 127.0.0.1) and a worker (4 CPUs) with a disk of its own; every
    node reaches the GCS emulator as cloud nodes reach GCS, from their own environment."""
    require_nodes_with_their_own_disk()
    # Short: Ray's socket paths are not under it, but the job folders are.
    base = Path(tempfile.mkdtemp(prefix="rl-own-disk-", dir="/tmp"))
    cluster = RayCluster()
    # Every node reaches "the bucket" (the emulator) the way cloud nodes reach GCS: from their own environment.
    cluster.env["STORAGE_EMULATOR_HOST"] = gcs_server.url
    # The nodes' home (where submitted sweeps keep their folders, ~/raylaunch) is the test's, not root's.
    cluster.env["HOME"] = str(base.with_name(base.name + "-home"))
    worker = None
    try:
        cluster.start_head(num_cpus=2, num_gpus=0, dashboard=True,
                           extra=[f"--system-config={json.dumps(FAST_NODE_DEATH)}"])
        worker = cluster.add_node_with_own_disk(num_cpus=4, private_dir=base)
        assert len(cluster.wait_for_nodes(2)) == 2, "the worker with its own disk did not join"
        yield CloudLikeCluster(cluster, worker, base, gcs_server.create_bucket(), gcs_server.url)
    finally:
        if worker is not None:
            worker.kill()
        cluster.stop()
        assert not cluster.pids(), "Ray processes of the test cluster survived"
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(cluster.env["HOME"], ignore_errors=True)


@pytest.fixture
def cloud(cloud_like_cluster, monkeypatch):
    """The cloud-like cluster, with this test's own process (drivers it starts, its reads of the bucket)
    pointed at the emulator too."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", cloud_like_cluster.emulator)
    return cloud_like_cluster
