"""What each search buys on the same budget (issue 14, item 6), side by side in one run, several seeds.
Opt-in (`bench/run.py` does not run them): with three seeds on 2 cores, asha about 13 minutes, pbt 5, optuna about 20.

    python -m bench.search_figures asha   --seeds 0 1 2 --samples 8 --epochs 20  # ASHA vs the same search run in full
    python -m bench.search_figures optuna --seeds 0 1 2 --samples 24 --epochs 4  # Optuna TPE vs random search
    python -m bench.search_figures pbt    --seeds 0 1 2 --samples 4 --epochs 12 --overrides resources.cpus=0.5
                                          # PBT vs fixed lr (whole population at once)
    python -m bench.search_figures asha --quick                                   # smoke: 1 seed, small sizes

asha    The same seeded random search (lr log-uniform) run to the end (FIFO) and with ASHA (hparams_search=asha):
        wall time of each, full/ASHA ratio, and the best val_loss each reached. Same seed = same trials.
        Beside them, the baseline: Ray Tune's own FIFO and ASHA over a plain Keras trainable of the same model
        and data (bench/plain_tune.py), so the launcher's full/ASHA ratio reads against Tune's (--no-plain-tune
        leaves it out).
optuna  hparams_search=optuna against hparams_search=random, same seed, same number of trials, run one trial at a
        time (max_concurrent_trials=1, so TPE learns from every trial before the next): the best val_loss reached
        after each number of trials (in the order trials started), median over seeds.
pbt     hparams_search=pbt against hparams_search=random with the same lr interval, trials, epochs and seed:
        best val_loss reached and wall time. The random search keeps each trial's lr fixed.

Every sweep is `python launch.py -m ...` in a subprocess on an embedded Ray, the two sides alternating which
goes first from seed to seed. Per-run logs and results.json go to bench/runs/<timestamp>-<figure>/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LR = "lr=tag(log,interval(1e-4,3e-2))"
JOB = ["model=cnn", "storage.uri=null", "trainer.verbose=0", "trainer.callbacks.early_stopping.enabled=false",
       "trainer.callbacks.reduce_lr_on_plateau.enabled=false"]


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": [round(value, 4) for value in values]}


def run_sweep(arguments: list[str], sweep_dir: Path) -> dict:
    log = sweep_dir.with_suffix(".log")
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "launch.py", "-m", *arguments, f"hydra.sweep.dir={sweep_dir}"],
                              cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode
    wall = time.time() - started
    if code != 0:
        raise RuntimeError(f"sweep failed ({code}); see {log}")
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    trials = []
    for row in board["trials"]:
        record = json.loads((sweep_dir / str(row["job"]) / "trial.json").read_text())
        trials.append({"job": row["job"], "value": row["value"], "status": row["status"], "epochs": row["epochs"],
                       "started": record["attempts"][0]["started"], "events": row.get("events", [])})
    trials.sort(key=lambda trial: trial["started"])
    best_so_far, best = [], None
    for trial in trials:
        if trial["value"] is not None:
            best = trial["value"] if best is None else min(best, trial["value"])
        best_so_far.append(best)
    return {"wall_s": wall, "best": best, "best_after_each_trial": best_so_far, "trials": trials,
            "epochs_run": sum(trial["epochs"] or 0 for trial in trials), "load_average": os.getloadavg()}


def run_plain_tune(scheduler: str, seed: int, args, run_dir: Path) -> dict:
    """bench/plain_tune.py in a subprocess, timed from outside like the launcher's sweeps."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir.with_suffix(".log")
    started = time.time()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "bench.plain_tune", "--scheduler", scheduler, "--seed", str(seed),
                               "--samples", str(args.samples), "--epochs", str(args.epochs), "--storage", str(run_dir)],
                              cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode
    wall = time.time() - started
    if code != 0:
        raise RuntimeError(f"plain Tune run failed ({code}); see {log}")
    result = json.loads(log.read_text().strip().splitlines()[-1])
    return {**result, "wall_s": wall, "wall_in_process_s": result["wall_s"], "load_average": os.getloadavg()}


PLAIN_TUNE = {"tune_fifo": "fifo", "tune_asha": "asha"}


def sides(figure: str, args) -> dict[str, list[str]]:
    common = [*JOB, f"trainer.epochs={args.epochs}", f"hydra.sweeper.num_samples={args.samples}"]
    if figure == "asha":
        plain = {} if args.no_plain_tune else {name: [] for name in PLAIN_TUNE}
        return {"full": [LR, "hparams_search=asha", "hydra.sweeper.scheduler=null", *common],
                "asha": [LR, "hparams_search=asha", *common], **plain}
    if figure == "optuna":
        one = ["hydra.launcher.max_concurrent_trials=1"]
        return {"random": [LR, "model.dropout=interval(0,0.5)", "hparams_search=random", *one, *common],
                "optuna": [LR, "model.dropout=interval(0,0.5)", "hparams_search=optuna", *one, *common]}
    return {"fixed_lr": [LR, "hparams_search=random", *common],
            "pbt": [LR, "hparams_search=pbt", *common]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_figures", description=__doc__.split("\n")[0])
    parser.add_argument("figure", choices=["asha", "optuna", "pbt"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, help="trials per search (asha 8, optuna 24, pbt 4)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (asha 20, optuna 4, pbt 12)")
    parser.add_argument("--overrides", nargs="*", default=[],
                        help="extra overrides for both sides, e.g. data.max_train_samples=600")
    parser.add_argument("--quick", action="store_true", help="smoke: seed 0 only, small sizes")
    parser.add_argument("--no-plain-tune", action="store_true", help="asha: leave out the plain Ray Tune baseline")
    args = parser.parse_args()
    defaults = {"asha": (8, 20), "optuna": (24, 4), "pbt": (4, 12)}[args.figure]
    if args.quick:
        args.seeds, defaults = args.seeds[:1], {"asha": (4, 4), "optuna": (4, 2), "pbt": (2, 4)}[args.figure]
    args.samples = args.samples or defaults[0]
    args.epochs = args.epochs or defaults[1]
    out = ROOT / "bench" / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.figure}"
    runs = []
    for index, seed in enumerate(args.seeds):
        arguments = sides(args.figure, args)
        order = list(arguments) if index % 2 == 0 else list(reversed(arguments))
        pair = {"seed": seed}
        for side in order:
            if side in PLAIN_TUNE:
                pair[side] = run_plain_tune(PLAIN_TUNE[side], seed, args, out / f"seed{seed}" / side)
            else:
                pair[side] = run_sweep([*arguments[side], *args.overrides, f"hydra.sweeper.seed={seed}"],
                                       out / f"seed{seed}" / side)
            print(f"[{args.figure}] seed {seed} {side}: {pair[side]['wall_s']:.0f} s, best {pair[side]['best']:.4f}, "
                  f"{pair[side]['epochs_run']} epochs run", flush=True)
        runs.append(pair)
    names = list(sides(args.figure, args))
    summary = {name: {"wall_s": stats([run[name]["wall_s"] for run in runs]),
                      "best": stats([run[name]["best"] for run in runs]),
                      "epochs_run": stats([run[name]["epochs_run"] for run in runs])} for name in names}
    summary["ratio_wall_s"] = stats([run[names[0]]["wall_s"] / run[names[1]]["wall_s"] for run in runs])
    if "tune_fifo" in names:  # Tune's own gain, and the launcher's gain over it (1.0: the launcher adds nothing)
        summary["ratio_wall_s_plain_tune"] = stats([run["tune_fifo"]["wall_s"] / run["tune_asha"]["wall_s"]
                                                    for run in runs])
        summary["gain_launcher_over_plain_tune"] = stats([
            (run["full"]["wall_s"] / run["asha"]["wall_s"]) / (run["tune_fifo"]["wall_s"] / run["tune_asha"]["wall_s"])
            for run in runs])
    if args.figure == "optuna":
        summary["best_after_n_trials_median"] = {
            name: [statistics.median(run[name]["best_after_each_trial"][n] for run in runs)
                   for n in range(args.samples)]
            for name in names}
    summary["conditions"] = {"figure": args.figure, "seeds": args.seeds, "samples": args.samples, "epochs": args.epochs,
                             "overrides": args.overrides, "cpu_count": os.cpu_count()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
