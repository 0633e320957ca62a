"""launch.py against the plain Keras script, side by side: the same model, data and batch trained by
`python -m bench.plain_keras` and by `launch.py experiment=bench_mnist`, the two alternating which goes first
run by run. Gives throughput, start-up and peak RSS figures (see bench/run.py's module doc)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from bench.machine import load_average
from bench.measure import PYTHON, first_event_wall_time, last_json_line, log, own_store, run_measured
from bench.report import stats
from trainers.job_files import METRICS, TENSORBOARD


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
    return pair_figures(rounds), rounds


def pair_figures(rounds: list[dict]) -> dict:
    """Launcher over plain, pair by pair: throughput ratio, start-up difference, peak RSS ratio."""
    launch_rates = [r["launch"]["samples_per_second"] for r in rounds]
    plain_rates = [r["plain"]["samples_per_second"] for r in rounds]
    return {
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
