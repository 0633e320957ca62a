"""What a sweep costs the driver against its size (issue 14, item 5): 8, 128 and 1,000 jobs.

    python -m bench.sweep_cost                       # sizes 8 128 1000, 3 runs each (about 4 min on 2 cores)
    python -m bench.sweep_cost --sizes 8 128 --runs 2
    python -m bench.sweep_cost --sizes 128 1000 --runs 4 --baseline-ref 30eca02   # against an older commit

Two figures per size, medians with min and max over runs:

  time_to_first_trial_s   `python launch.py -m 'seed=range(0,N)' model=cnn,mlp ...` on an embedded Ray: from
                          starting the command to the first trial's process starting its job (the `started`
                          time in that trial's trial.json); the sweep is then stopped. Includes Python,
                          Hydra, composing and checking every job, starting Ray and Tune.
  time_to_jobs_checked_s  the same start to the driver's "Sweep folder" log line: every job composed and checked,
                          Ray not started yet (the rest of time_to_first_trial is Ray, Tune and the trial's process).
  driver_ms_per_trial     the launcher's own work for each trial in the driver, measured in this process on
                          the same configs: the trial's resource request (Tune asks when it creates the trial),
                          its description for the progress view, its folder and overrides for the leaderboard row
                          (its full config is built only if something reads the JobReturn's cfg).
  check_s                 composing and checking all N jobs before launch (cluster/launcher/job_catalog.py), in process.
  compose_per_job_s       for scale: one full Hydra composition of a job (what checking cost per job before).

With --baseline-ref REF (a commit of this repository, extracted under --out), each run also times REF's
launch.py on the same command, the two sides alternating which goes first, and reports first_trial_ratio:
the baseline's time to first trial over this checkout's, per pair (median, min, max).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
JOB = ["model=cnn,mlp", "data.max_train_samples=200", "trainer.epochs=1", "storage.uri=null", "trainer.verbose=0"]


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": [round(value, 4) for value in values]}


def seeds(size: int) -> str:
    return f"seed=range(0,{size // 2})"  # x 2 models


def _launched_at(log: Path) -> float:
    """When the driver had checked every job (its "Sweep folder ..." line; Ray starts after it)."""
    import datetime

    for line in log.read_text().splitlines():
        if "[HYDRA] Sweep folder" in line:
            return datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return float("nan")


def time_to_first_trial(size: int, out: Path, root: Path = ROOT) -> tuple[float, float]:
    sweep_dir = out / f"sweep{size}-{'baseline-' if root != ROOT else ''}{time.time_ns()}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(f"{sweep_dir}.log", "w")
    started = time.time()
    driver = subprocess.Popen([sys.executable, "launch.py", "-m", seeds(size), *JOB, f"hydra.sweep.dir={sweep_dir}"],
                              cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = started + 600
        while time.time() < deadline:
            for record in sweep_dir.glob("*/trial.json"):
                try:
                    first = json.loads(record.read_text())["attempts"][0]["started"]
                except (OSError, ValueError, KeyError, IndexError):
                    continue
                log.flush()
                return first - started, _launched_at(Path(f"{sweep_dir}.log")) - started
            if driver.poll() is not None:
                raise RuntimeError(f"the sweep ended before a trial started; see {sweep_dir}.log")
            time.sleep(0.05)
        raise RuntimeError("no trial started within 600 s")
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGINT)  # our own driver's process group (Ray shuts down with it)
            try:
                driver.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
        log.close()


def in_process(size: int) -> dict:
    """The launcher's driver-side work on this app's configs, without Ray."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.utils import filter_overrides
    from omegaconf import OmegaConf

    from cluster.launcher.job_catalog import JobCatalog
    from cluster.launcher.job_configs import compose_job
    from trainers.schema import register_schemas

    register_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        master = compose("config", return_hydra_config=True)
        launcher = SimpleNamespace(hydra_context=SimpleNamespace(config_loader=GlobalHydra.instance().config_loader()),
                                   config=master, settings=OmegaConf.to_container(master.hydra.launcher, resolve=False))
        parsed = OverridesParser.create().parse_overrides([seeds(size), *JOB])
        jobs = [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        assert len(jobs) == size, len(jobs)
        tic = time.perf_counter()
        compose_job(launcher, jobs[0], 0)
        compose_per_job = time.perf_counter() - tic
        catalog = JobCatalog(launcher)
        tic = time.perf_counter()
        catalog.check(jobs)
        check = time.perf_counter() - tic
        from ray import tune  # noqa: F401  (imported by the driver long before trials; not a per-trial cost)

        tic = time.perf_counter()
        for num, job in enumerate(jobs):
            catalog.resources(job, num).placement()
            " ".join(filter_overrides(job))
            catalog.job_view(job, num)
        per_trial = (time.perf_counter() - tic) / size
    return {"check_s": check, "driver_ms_per_trial": per_trial * 1000, "compose_per_job_s": compose_per_job,
            "full_compositions": catalog.num_composed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[8, 128, 1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "runs" / time.strftime("%Y%m%d-%H%M%S-cost"))
    parser.add_argument("--baseline-ref", default=None,
                        help="a commit of this repository, timed side by side (alternating) on the same sweeps")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from bench.machine import launcher_tree, machine_info

    baseline, baseline_commit = launcher_tree(args.baseline_ref, args.out) if args.baseline_ref else (None, None)
    results: dict = {"machine": machine_info(dict(os.environ)), "load_average_start": os.getloadavg(),
                     "current": launcher_tree(None, args.out)[1], "baseline": baseline_commit}
    for size in args.sizes:
        first, launched, per_trial, check, compose_one, compositions = [], [], [], [], [], []
        base_first: list[float] = []
        for run in range(args.runs):
            if baseline and run % 2 == 0:  # alternate which side goes first
                base_first.append(time_to_first_trial(size, args.out, baseline)[0])
            first_trial, checked = time_to_first_trial(size, args.out)
            if baseline and run % 2 == 1:
                base_first.append(time_to_first_trial(size, args.out, baseline)[0])
            first.append(first_trial)
            launched.append(checked)
            measured = in_process(size)
            per_trial.append(measured["driver_ms_per_trial"])
            check.append(measured["check_s"])
            compose_one.append(measured["compose_per_job_s"])
            compositions.append(measured["full_compositions"])
            print(f"[cost] {size} jobs run {run}: all jobs checked after {launched[-1]:.1f} s, first trial after "
                  f"{first[-1]:.1f} s; in process: checks {check[-1]:.2f} s "
                  f"({compositions[-1]} compositions); driver {per_trial[-1]:.2f} ms per trial"
                  + (f"; baseline: first trial after {base_first[-1]:.1f} s" if base_first else ""), flush=True)
        results[str(size)] = {"time_to_first_trial_s": stats(first), "time_to_jobs_checked_s": stats(launched),
                              "driver_ms_per_trial": stats(per_trial),
                              "check_s": stats(check), "compose_per_job_s": stats(compose_one),
                              "full_compositions": compositions[0]}
        if base_first:
            results[str(size)]["baseline_time_to_first_trial_s"] = stats(base_first)
            results[str(size)]["first_trial_ratio"] = stats([b / c for b, c in zip(base_first, first)])
    results["load_average_end"] = os.getloadavg()
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
