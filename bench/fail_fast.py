"""How long a user waits to be told no, and what the epoch hook costs while the store is down: durations the
tests check only by behaviour (tests/launcher/test_bad_input.py, tests/results/test_launch_storage.py,
tests/results/test_uploader.py), measured here instead.

    python -m bench.fail_fast                  # 5 runs of each figure (about 2 minutes on 2 cores)
    python -m bench.fail_fast --runs 3 --only no_credentials epoch_hook

Each figure is the median with min and max over runs (and the values); the last line printed is one JSON object:

  no_credentials_s          preflight('gs://...') with no credentials anywhere and a GCE metadata server that
                            accepts connections but never answers (a firewalled 169.254.169.254): from the call
                            to its StorageError, in a process that has already imported google-auth and the store.
                            The store allows one 3 s probe; google-auth's defaults make 3 (about 13 s).
  unreachable_address_s     `launch.py -m model=cnn,lstm ... hydra.launcher.address=127.0.0.1:PORT`, nothing on
                            PORT: from starting the command to its exit (Python, Hydra, every job checked, the
                            launcher's TCP probe; Ray never starts).
  bad_override_s            `launch.py -m model=cnn,transformer lr=1e-3,1e-4 ...` (no such model): from start to
                            the exit with the error naming it (Ray never starts).
  epoch_hook_ms_store_down  TrialUploader.on_epoch_end while its GCS store (the test emulator) is killed: what
                            training waits for at each epoch's end. 20 epochs per run, each a new best (a
                            checkpoint to upload); per run its median call (and, as ..._slowest, its slowest).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.measure import PYTHON, ROOT, log
from bench.report import stats
from tests import ports

FIGURES = ("no_credentials", "unreachable_address", "bad_override", "epoch_hook")
JOB = ["data.max_train_samples=200", "trainer.epochs=2", "storage.uri=null"]
TIMED_PREFLIGHT = (
    "import time\n"
    "import google.auth, google.cloud.storage\n"
    "from cluster.store import preflight, StorageError\n"
    "t = time.perf_counter()\n"
    "try:\n    preflight('gs://my-bucket/exp')\nexcept StorageError:\n    print(time.perf_counter() - t)\n"
)


def clean_env(scratch: Path) -> dict:
    """This environment without a developer's cluster, emulator or credentials (as tests/conftest.py does)."""
    drop = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_CLOUD_PROJECT", "GCE_METADATA_DETECT_RETRIES", "HYDRA_FULL_ERROR")
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", HOME=str(scratch / "home"), CLOUDSDK_CONFIG=str(scratch / "gcloud"))
    return env


def no_credentials(scratch: Path) -> float:
    with socket.socket() as hole:  # listens, never accepts: to a client nothing ever answers
        hole.bind(("127.0.0.1", ports.port()))
        hole.listen(64)
        address = f"127.0.0.1:{hole.getsockname()[1]}"
        env = {**clean_env(scratch), "GCE_METADATA_IP": address, "GCE_METADATA_HOST": address}
        out = subprocess.run([PYTHON, "-c", TIMED_PREFLIGHT], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"preflight did not refuse: {out.stdout}{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def launch_until_exit(arguments: list[str], scratch: Path, expect: str) -> float:
    sweep_dir = scratch / f"sweep-{time.time_ns()}"
    started = time.perf_counter()
    out = subprocess.run([PYTHON, str(ROOT / "launch.py"), "-m", *arguments, *JOB, f"hydra.sweep.dir={sweep_dir}"],
                         cwd=scratch, env=clean_env(scratch), capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    if out.returncode == 0 or expect not in out.stderr:
        raise RuntimeError(f"expected a refusal with {expect!r}: {out.stderr[-2000:]}")
    return wall


def unreachable_address(scratch: Path) -> float:
    port = ports.port()  # nothing listens there
    return launch_until_exit(["model=cnn,lstm", f"hydra.launcher.address=127.0.0.1:{port}"], scratch,
                             f"No Ray cluster answers at 127.0.0.1:{port}")


def bad_override(scratch: Path) -> float:
    return launch_until_exit(["model=cnn,transformer", "lr=1e-3,1e-4"], scratch, "transformer")


def epoch_hook(scratch: Path, epochs: int = 20) -> list[float]:
    import logging

    from cluster.results.uploader import TrialUploader
    from cluster.store import open_store
    from tests.gcs_emulator import FakeGCS
    from tests.results.jobdir import JobFolder

    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    logging.getLogger("cluster.store").setLevel(logging.CRITICAL)  # its upload failures are expected here
    server = FakeGCS(run_dir, backend="filesystem")
    server.start()
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
        store = open_store(f"gs://{server.create_bucket()}/exp", request_timeout=2, retry_deadline=3)
        job = JobFolder(run_dir / "job")
        uploader = TrialUploader(store, "bench", "0", job.path, "val_loss", "min", sync_seconds=0.5)
        server.stop(kill=True)
        per_call = []
        for epoch in range(1, epochs + 1):
            arguments = job.end_epoch(epoch, 1.0 / epoch)  # every epoch a new best: a checkpoint to upload
            started = time.perf_counter()
            uploader.on_epoch_end(*arguments)
            per_call.append((time.perf_counter() - started) * 1000)
        uploader.close(timeout=0.1)  # the upload thread (a daemon) is left retrying the dead store
        return per_call
    finally:
        server.stop(kill=True)
        os.environ.pop("STORAGE_EMULATOR_HOST", None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fail_fast",
                                     description="how long refusals take, and the epoch hook with the store down")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=FIGURES, default=list(FIGURES))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-fail-fast-"))
    measure = {"no_credentials": no_credentials, "unreachable_address": unreachable_address,
               "bad_override": bad_override}
    figures = {}
    for name in args.only:
        values, slowest = [], []
        for run in range(args.runs):
            if name == "epoch_hook":
                calls = epoch_hook(scratch)
                values.append(statistics.median(calls))
                slowest.append(max(calls))
            else:
                values.append(measure[name](scratch))
            log(f"{name} run {run + 1}/{args.runs}: {values[-1]:.3f}")
        if name == "epoch_hook":
            figures["epoch_hook_ms_store_down"] = stats(values)
            figures["epoch_hook_ms_store_down_slowest"] = stats(slowest)
        else:
            figures[f"{name}_s"] = stats(values)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
