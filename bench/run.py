"""Benchmarks: `launch.py` against a plain Keras script, and Ray sweeps against the same jobs run one by one.

    python -m bench.run            # full: 60,000 MNIST-shaped samples, 3 epochs, 3 runs per side, 2 sweep repeats
                                   # (~17 min idle on 2 cores)
    python -m bench.run --quick    # smoke: 4,096 samples, 2 epochs, 1 run of each figure (~3 min)

Everything runs as subprocesses, the way a user runs them, alternating sides run by run so drift in the
machine's load hits both. The last line printed is one JSON object:

  trainer_vs_plain_throughput  training samples/s of launch.py over bench/plain_keras.py (same model, data,
                               batch; both measured like trainers/callbacks.py ThroughputLogger: the training
                               part of each epoch after the first)
  startup_overhead_s           (process start -> training begins) for launch.py minus the same for the plain
                               script. Training begins = Keras' on_train_begin, right before the first step:
                               the plain script records it in a callback; for launch.py it is read from outside,
                               as the wall time of the first TensorBoard event (the writer is created then)
  ray_sweep_vs_sequential      wall time of 4 short jobs run one after another over the same 4 as one
                               `launch.py -m` sweep on Ray
  asha_vs_full                 wall time of a sampled search run to the end over the same search with ASHA,
                               with the best metric each reached
  peak_rss_ratio               peak RSS of one launch.py job (its process tree) over the plain script's

The searches' own figures (ASHA at 8 x 20, Optuna against random, PBT against a fixed lr) and a sweep's cost
against its size are separate, opt-in scripts: bench/search_figures.py and bench/sweep_cost.py.

Each figure is the median over runs with min, max and the values. Per-run details and logs go to
bench/runs/<timestamp>/. Data: bench/make_data.py writes the MNIST-shaped file once (keras.datasets cannot
download here); both sides read that same file.

Precision: on a GPU machine both sides use the launcher's own `auto` policy; on a CPU with AVX512_BF16 or
AMX_BF16 both use mixed_bfloat16; otherwise float32. `--precision` overrides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from trainers.job_files import METRICS, PROGRESS, STATE, TENSORBOARD, Progress

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
SWEEP_GRID = ("model=cnn,mlp", "lr=1e-3,1e-4")


# ---------------------------------------------------------------- helpers
def stats(values: list[float], **extra) -> dict:
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
        "values": [round(v, 4) for v in values],
        **extra,
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_measured(cmd: list[str], log_path: Path, env: dict, cwd: Path | None = None, poll_s: float = 0.05) -> dict:
    """Run `cmd`, sampling the RSS of its whole process tree; also keep the kernel's own peak RSS of the
    top process (wait4's ru_maxrss). Returns start time (time.time()), wall seconds, peaks in bytes."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as out:
        out.write("$ " + shlex.join(cmd) + "\n")
        out.flush()
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        top = psutil.Process(proc.pid)
        peak_tree = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                tree = [top, *top.children(recursive=True)]
                rss = 0
                for member in tree:
                    try:
                        rss += member.memory_info().rss
                    except psutil.Error:
                        pass
                peak_tree = max(peak_tree, rss)
            except psutil.Error:
                pass
            time.sleep(poll_s)
        wall = time.time() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{shlex.join(cmd)} exited with {proc.returncode}; log {log_path}:\n{tail}")
    return {
        "start_time": start,
        "wall_s": wall,
        "peak_rss_tree_bytes": peak_tree,
        "peak_rss_top_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
    }


def last_json_line(path: Path) -> dict:
    for line in reversed(path.read_text().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in {path}")


def first_event_wall_time(tensorboard_dir: Path) -> float:
    """Wall time of the first event TensorBoard wrote (the file-version record written when the writer is
    created in on_train_begin)."""
    from tensorboard.compat.proto import event_pb2

    files = sorted(tensorboard_dir.glob("train/events.out.tfevents.*"))
    if not files:
        raise RuntimeError(f"no TensorBoard event file under {tensorboard_dir}/train")
    data = files[0].read_bytes()
    length = int.from_bytes(data[:8], "little")
    event = event_pb2.Event.FromString(data[12 : 12 + length])
    return event.wall_time


# ---------------------------------------------------------------- machine
def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def probe_tensorflow(env: dict) -> dict:
    """GPUs as TensorFlow sees them (in a subprocess: the runner itself never imports TensorFlow)."""
    code = (
        "import json, keras, tensorflow as tf\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "details = [tf.config.experimental.get_device_details(g) for g in gpus]\n"
        "print(json.dumps({'tensorflow': tf.__version__, 'keras': keras.__version__, "
        "'gpus': [{'name': d.get('device_name', g.name), "
        "'compute_capability': d.get('compute_capability')} for g, d in zip(gpus, details)]}))\n"
    )
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info(env: dict) -> dict:
    flags = cpu_flags()
    info = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_flags": sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"}),
        "python": platform.python_version(),
        **probe_tensorflow(env),
    }
    return info


def choose_precision(requested: str, info: dict) -> str:
    if requested != "bench-auto":
        return requested
    if info["gpus"]:
        return "auto"  # the launcher's own policy: mixed_float16 on tensor-core GPUs
    flags = set(info["cpu_flags"])
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def launcher_tree(git_ref: str | None, out_dir: Path) -> tuple[Path, str]:
    """The folder launch.py runs from, and the revision it holds (`-dirty` when uncommitted changes exist)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    if git_ref is None:
        commit = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain"))
        return ROOT, commit + ("-dirty" if dirty else "")
    commit = git("rev-parse", "--short", git_ref)
    tree = out_dir / f"tree-{commit}"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", git_ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree, commit


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- trainer vs plain
def plain_run(data: Path, args, precision: str, run_dir: Path, env: dict) -> dict:
    cmd = [PYTHON, "-m", "bench.plain_keras", str(data), "--epochs", str(args.epochs), "--precision", precision]
    measured = run_measured(cmd, run_dir / "plain.log", env)
    result = last_json_line(run_dir / "plain.log")
    return {
        **measured,
        "samples_per_second": result["train_samples_per_second"],
        "epoch_rates": result["epoch_rates"],
        "startup_s": result["train_begin_time"] - measured["start_time"],
        "params": result["params"],
        "precision": result["precision"],
        "test_accuracy": result["test_accuracy"],
        "command": shlex.join(cmd),
    }


def own_store(folder: Path) -> str:
    """A store beside each run's folder. The launcher's default store (results/ in the tree) names a run after
    its folder's last part and refuses a second run under a name it holds, which every repeat of a
    benchmark (pair0/launch, pair1/launch, ...) and every later benchmark would hit."""
    return f"storage.uri={folder.parent / (folder.name + '-store')}"


def launch_command(data: Path, args, precision: str, run_dir: Path) -> list[str]:
    return [
        PYTHON,
        "launch.py",
        "experiment=bench_mnist",
        f"data.path={data}",
        f"trainer.epochs={args.epochs}",
        f"precision={precision}",
        f"hydra.run.dir={run_dir}",
        own_store(run_dir),
        *args.launch_overrides,
    ]


def launch_run(data: Path, args, precision: str, run_dir: Path, env: dict) -> dict:
    job_dir = run_dir / "launch"
    cmd = launch_command(data, args, precision, job_dir)
    measured = run_measured(cmd, run_dir / "launch.log", env, cwd=args.tree)
    metrics = json.loads((job_dir / METRICS).read_text())
    history = metrics["history"]
    return {
        **measured,
        "samples_per_second": metrics["train_samples_per_second"],
        "epoch_rates": [row.get("samples_per_second") for row in history],
        "startup_s": first_event_wall_time(job_dir / TENSORBOARD) - measured["start_time"],
        "precision": metrics["precision"],
        "test_accuracy": metrics["test"].get("accuracy"),
        "command": shlex.join(cmd),
    }


def trainer_vs_plain(data: Path, args, precision: str, out_dir: Path, env: dict) -> tuple[dict, list[dict]]:
    rounds = []
    for index in range(args.runs):
        run_dir = out_dir / f"pair{index}"
        # Alternate which side goes first, so a trend in the machine's load does not favour one side.
        order = ("plain", "launch") if index % 2 == 0 else ("launch", "plain")
        pair = {"load_before": load_average()}
        for side in order:
            runner = plain_run if side == "plain" else launch_run
            pair[side] = runner(data, args, precision, run_dir, env)
            log(
                f"pair {index} {side:6s}: {pair[side]['samples_per_second']:7.0f} samples/s, "
                f"start-up {pair[side]['startup_s']:5.2f} s, wall {pair[side]['wall_s']:6.1f} s, "
                f"peak RSS {pair[side]['peak_rss_tree_bytes'] / 2**20:6.0f} MiB"
            )
        pair["load_after"] = load_average()
        rounds.append(pair)

    launch_rates = [r["launch"]["samples_per_second"] for r in rounds]
    plain_rates = [r["plain"]["samples_per_second"] for r in rounds]
    figures = {
        "trainer_vs_plain_throughput": stats(
            [launch / plain for launch, plain in zip(launch_rates, plain_rates)],
            launcher_samples_per_second=stats(launch_rates),
            plain_samples_per_second=stats(plain_rates),
            precision=rounds[0]["launch"]["precision"],
        ),
        "startup_overhead_s": stats(
            [r["launch"]["startup_s"] - r["plain"]["startup_s"] for r in rounds],
            launcher_startup_s=stats([r["launch"]["startup_s"] for r in rounds]),
            plain_startup_s=stats([r["plain"]["startup_s"] for r in rounds]),
        ),
        "peak_rss_ratio": stats(
            [r["launch"]["peak_rss_tree_bytes"] / r["plain"]["peak_rss_tree_bytes"] for r in rounds],
            launcher_peak_rss_mib=stats([r["launch"]["peak_rss_tree_bytes"] / 2**20 for r in rounds]),
            plain_peak_rss_mib=stats([r["plain"]["peak_rss_tree_bytes"] / 2**20 for r in rounds]),
        ),
    }
    return figures, rounds


# ---------------------------------------------------------------- Ray sweeps
def ray_launcher_target(tree: Path, env: dict) -> str | None:
    """The Hydra launcher `launch.py -m` would use; None when it is Hydra's basic (sequential) one."""
    cmd = [PYTHON, "launch.py", "--cfg", "hydra", "-p", "hydra.launcher"]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if "_target_" in line:
            target = line.split(":", 1)[1].strip()
            return None if "basic_launcher" in target else target
    return None


def sweep_vs_sequential(args, out_dir: Path, env: dict) -> dict:
    target = ray_launcher_target(args.tree, env)
    if target is None:
        return {
            "not_measured": "launch.py -m still uses Hydra's basic launcher (the Ray Tune launcher of issue 3 "
            "has not landed on main), so there is no Ray sweep to time"
        }
    job_overrides = [f"trainer.epochs={args.sweep_epochs}", *args.sweep_overrides]
    models, lrs = (grid.split("=", 1)[1].split(",") for grid in SWEEP_GRID)
    ratios, sequential_walls, sweep_walls = [], [], []
    for index in range(args.sweep_runs):
        run_dir = out_dir / f"sweep{index}"
        sequential = 0.0
        for model in models:
            for lr in lrs:
                job_dir = run_dir / "sequential" / f"{model}_{lr}"
                cmd = [PYTHON, "launch.py", f"model={model}", f"lr={lr}", *job_overrides, f"hydra.run.dir={job_dir}",
                       own_store(job_dir)]
                sequential += run_measured(cmd, run_dir / f"sequential_{model}_{lr}.log", env, cwd=args.tree)["wall_s"]
        cmd = [PYTHON, "launch.py", "-m", *SWEEP_GRID, *job_overrides, f"hydra.sweep.dir={run_dir}/sweep",
               own_store(run_dir / "sweep")]
        sweep = run_measured(cmd, run_dir / "sweep.log", env, cwd=args.tree)["wall_s"]
        log(f"sweep {index}: 4 sequential jobs {sequential:.1f} s, Ray sweep {sweep:.1f} s")
        ratios.append(sequential / sweep)
        sequential_walls.append(sequential)
        sweep_walls.append(sweep)
    return stats(
        ratios,
        sequential_wall_s=stats(sequential_walls),
        sweep_wall_s=stats(sweep_walls),
        launcher=target,
        command=shlex.join(["python", "launch.py", "-m", *SWEEP_GRID, *job_overrides]),
    )


def best_in_sweep(sweep_dir: Path, expected_epochs: int) -> dict:
    """Best monitored value over every trial of a sweep, read from the jobs' own files (metrics.json, or the
    per-epoch state/progress.json of a trial that the scheduler stopped before it wrote metrics.json)."""
    best = None
    trials = cut_short = 0
    for progress_file in sorted(sweep_dir.rglob(f"{STATE}/{PROGRESS}")):
        job_dir = progress_file.parent.parent
        metrics_file = job_dir / METRICS
        if metrics_file.is_file():
            record = json.loads(metrics_file.read_text())
            value, mode, epochs = record["best_value"], record["mode"], record["epochs_run"]
        else:
            progress = Progress.read(progress_file.parent)
            value, mode, epochs = progress.best_value, "min", progress.epochs_completed
        trials += 1
        cut_short += epochs < expected_epochs
        if value is None:
            continue
        if best is None or (value < best["value"] if mode == "min" else value > best["value"]):
            best = {"value": value, "mode": mode, "trial": str(job_dir.relative_to(sweep_dir)), "epochs": epochs}
    return {"best": best, "trials": trials, "trials_stopped_before_last_epoch": cut_short}


def asha_vs_full(args, out_dir: Path, env: dict) -> dict:
    target = ray_launcher_target(args.tree, env)
    if target is None:
        return {"not_measured": "launch.py -m still uses Hydra's basic launcher: the Ray Tune launcher/sweeper "
                "and hparams_search=asha of issue 3 are not on main yet"}
    if not (args.tree / "conf" / "hparams_search" / "asha.yaml").is_file():
        return {"not_measured": "conf/hparams_search/asha.yaml does not exist yet (issue 3)"}
    # The same sampled search (same seed, so the same trials) with the ASHA scheduler and with none (FIFO:
    # every trial runs all its epochs).
    search = [
        "lr=tag(log,interval(1e-4,1e-2))",
        "model=cnn,mlp",
        "hparams_search=asha",
        f"hydra.sweeper.num_samples={args.asha_samples}",
        "hydra.sweeper.seed=0",
        f"trainer.epochs={args.asha_epochs}",
        *args.sweep_overrides,
    ]
    ratios, full_walls, asha_walls, full_best, asha_best = [], [], [], [], []
    for index in range(args.sweep_runs):
        run_dir = out_dir / f"asha{index}"
        walls, bests = {}, {}
        sides = [("full", ["hydra.sweeper.scheduler=null"]), ("asha", [])]
        for name, extra in sides if index % 2 == 0 else reversed(sides):  # alternate which goes first
            sweep_dir = run_dir / name
            cmd = [PYTHON, "launch.py", "-m", *search, *extra, f"hydra.sweep.dir={sweep_dir}", own_store(sweep_dir)]
            walls[name] = run_measured(cmd, run_dir / f"{name}.log", env, cwd=args.tree)["wall_s"]
            bests[name] = best_in_sweep(sweep_dir, args.asha_epochs)
        log(f"asha {index}: full search {walls['full']:.1f} s (best {bests['full']['best']}), "
            f"ASHA {walls['asha']:.1f} s (best {bests['asha']['best']})")
        ratios.append(walls["full"] / walls["asha"])
        full_walls.append(walls["full"])
        asha_walls.append(walls["asha"])
        full_best.append(bests["full"])
        asha_best.append(bests["asha"])
    return stats(
        ratios,
        full_wall_s=stats(full_walls),
        asha_wall_s=stats(asha_walls),
        full_best=full_best,
        asha_best=asha_best,
        command=shlex.join(["python", "launch.py", "-m", *search]),
    )


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run",
                                     description="launch.py vs plain Keras, Ray sweep vs sequential jobs")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4,096 samples, 2 epochs, 1 run per figure")
    parser.add_argument("--runs", type=int, help="runs per side (default 3; quick 1)")
    parser.add_argument("--epochs", type=int, help="epochs per training run (default 3; quick 2)")
    parser.add_argument("--num-train", type=int, help="training samples in the generated file (default 60,000)")
    parser.add_argument("--precision", default="bench-auto",
                        help="bench-auto (see module doc), auto, float32, mixed_bfloat16 or mixed_float16")
    parser.add_argument("--launch-overrides", nargs="*", default=[],
                        help="extra Hydra overrides for the launch.py side, e.g. trainer.deterministic=false")
    parser.add_argument("--sweep-runs", type=int, help="repeats of the sweep comparisons (default 2; quick 1)")
    parser.add_argument("--sweep-epochs", type=int, help="epochs per sweep job (default 2)")
    parser.add_argument("--asha-samples", type=int,
                        help="sampled lr values per model in the ASHA comparison (default 3; quick 2)")
    parser.add_argument("--asha-epochs", type=int, help="epochs per trial in the ASHA comparison (default 5; quick 3)")
    parser.add_argument("--sweep-overrides", nargs="*", default=[], help="extra overrides for every sweep job")
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "sweep", "asha"],
                        help="parts to leave out")
    parser.add_argument("--git-ref", help="run launch.py from a `git archive` export of this commit (e.g. HEAD) "
                        "instead of the working tree, so uncommitted work in the tree cannot affect the figures")
    parser.add_argument("--out", type=Path, help="folder for logs and results (default bench/runs/<timestamp>)")
    args = parser.parse_args()
    # Defaults sized to finish within 20 minutes on 2 cores (the recorded 3-run/3-epoch/3-sweep run took 20 min,
    # of which the third sweep and ASHA repeats ~3 min): the figures of BENCHMARKS.md with 2 sweep repeats.
    args.runs = args.runs or (1 if args.quick else 3)
    args.epochs = args.epochs or (2 if args.quick else 3)
    args.num_train = args.num_train or (4_096 if args.quick else 60_000)
    args.sweep_runs = args.sweep_runs or (1 if args.quick else 2)
    args.sweep_epochs = args.sweep_epochs or 2
    args.asha_samples = args.asha_samples or (2 if args.quick else 3)
    args.asha_epochs = args.asha_epochs or (3 if args.quick else 5)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch pays for tracing and is not counted")

    out_dir = args.out or BENCH / "runs" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    args.tree, revision = launcher_tree(args.git_ref, out_dir)

    from bench.make_data import make

    num_test = 10_000 if args.num_train >= 60_000 else max(1_000, args.num_train // 6)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, num_test)
    info = machine_info(env)  # also warms the page cache with TensorFlow's files before any timed run
    precision = choose_precision(args.precision, info)
    log(f"machine: {info}")
    log(f"data: {data}; precision: {precision}; launch.py from {args.tree} ({revision}); "
        f"load average {load_average()}; logs in {out_dir}")

    load_start = load_average()
    figures: dict = {}
    details: dict = {"machine": info, "data": str(data),
                     "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if "throughput" not in args.skip:
        throughput_figures, rounds = trainer_vs_plain(data, args, precision, out_dir, env)
        figures.update(throughput_figures)
        details["rounds"] = rounds
    else:
        for key in ("trainer_vs_plain_throughput", "startup_overhead_s", "peak_rss_ratio"):
            figures[key] = {"not_measured": "skipped with --skip throughput"}
    (out_dir / "partial.json").write_text(json.dumps(figures, indent=1))
    for key, part, measure in (("ray_sweep_vs_sequential", "sweep", sweep_vs_sequential),
                               ("asha_vs_full", "asha", asha_vs_full)):
        if part in args.skip:
            figures[key] = {"not_measured": f"skipped with --skip {part}"}
            continue
        try:
            figures[key] = measure(args, out_dir, env)
        except Exception as error:  # keep the figures already taken; say what failed
            log(f"{key} failed: {error}")
            figures[key] = {"not_measured": f"failed: {str(error)[:500]}"}
        (out_dir / "partial.json").write_text(json.dumps(figures, indent=1))

    summary = {
        key: figures[key]
        for key in ("trainer_vs_plain_throughput", "startup_overhead_s", "ray_sweep_vs_sequential", "asha_vs_full",
                    "peak_rss_ratio")
    }
    summary["conditions"] = {
        "quick": args.quick,
        "num_train_samples": args.num_train,
        "epochs": args.epochs,
        "precision": precision,
        "launch_overrides": args.launch_overrides,
        "launcher_revision": revision,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "cpu_model": info["cpu_model"],
        "logical_cores": info["logical_cores"],
        "cpu_flags": info["cpu_flags"],
        "gpus": info["gpus"],
    }
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, "details": details}, indent=1))
    log(f"details: {out_dir / 'results.json'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
