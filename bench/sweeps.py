"""Ray sweeps against the same jobs without them: 4 short jobs run one after another against the same 4 as one
`launch.py -m` sweep, and a sampled search run to the end against the same search with ASHA (with the best
metric each reached, read from the jobs' own files)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from bench.measure import PYTHON, log, own_store, run_measured
from bench.report import stats
from trainers.job_files import METRICS, PROGRESS, STATE, Progress

SWEEP_GRID = ("model=cnn,mlp", "lr=1e-3,1e-4")


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
