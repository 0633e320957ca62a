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

The parts: bench/side_by_side.py (launch.py against the plain script), bench/sweeps.py (Ray sweep and ASHA
figures), bench/measure.py (one measured run), bench/machine.py (machine, precision, launcher tree) and
bench/report.py (statistics, summary, results.json); this module is the command line that runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.machine import (
    choose_precision,
    cpu_flags,
    cpu_model,
    launcher_tree,
    load_average,
    machine_info,
    probe_tensorflow,
)
from bench.measure import BENCH, PYTHON, ROOT, first_event_wall_time, last_json_line, log, own_store, run_measured
from bench.report import THROUGHPUT_FIGURES, stats, summarize, write_partial, write_results
from bench.side_by_side import launch_command, launch_run, plain_run, trainer_vs_plain
from bench.sweeps import SWEEP_GRID, asha_vs_full, best_in_sweep, ray_launcher_target, sweep_vs_sequential

# Names other scripts (bench/fail_fast.py, state_upload.py, sweep_cost.py, ...) imported from here before the
# split; they stay importable from bench.run.
__all__ = [
    "BENCH", "PYTHON", "ROOT", "SWEEP_GRID", "asha_vs_full", "best_in_sweep", "choose_precision", "cpu_flags",
    "cpu_model", "first_event_wall_time", "last_json_line", "launch_command", "launch_run", "launcher_tree",
    "load_average", "log", "machine_info", "main", "own_store", "plain_run", "probe_tensorflow",
    "ray_launcher_target", "run_measured", "stats", "sweep_vs_sequential", "trainer_vs_plain",
]

# The sweep figures: (summary key, --skip name, measure).
SWEEP_PARTS = (("ray_sweep_vs_sequential", "sweep", sweep_vs_sequential), ("asha_vs_full", "asha", asha_vs_full))


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    return args


def prepare(args, out_dir: Path, env: dict, revision: str) -> tuple[Path, dict, str]:
    """The data file (written once), the machine's description and the precision both sides use."""
    from bench.make_data import make

    num_test = 10_000 if args.num_train >= 60_000 else max(1_000, args.num_train // 6)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, num_test)
    info = machine_info(env)  # also warms the page cache with TensorFlow's files before any timed run
    precision = choose_precision(args.precision, info)
    log(f"machine: {info}")
    log(f"data: {data}; precision: {precision}; launch.py from {args.tree} ({revision}); "
        f"load average {load_average()}; logs in {out_dir}")
    return data, info, precision


def measure_figures(args, data: Path, precision: str, out_dir: Path, env: dict, details: dict) -> dict:
    """Every part not skipped, in turn; partial.json after each. A failed sweep part is reported, not raised."""
    figures: dict = {}
    if "throughput" not in args.skip:
        throughput_figures, rounds = trainer_vs_plain(data, args, precision, out_dir, env)
        figures.update(throughput_figures)
        details["rounds"] = rounds
    else:
        for key in THROUGHPUT_FIGURES:
            figures[key] = {"not_measured": "skipped with --skip throughput"}
    write_partial(out_dir, figures)
    for key, part, measure in SWEEP_PARTS:
        if part in args.skip:
            figures[key] = {"not_measured": f"skipped with --skip {part}"}
            continue
        try:
            figures[key] = measure(args, out_dir, env)
        except Exception as error:  # keep the figures already taken; say what failed
            log(f"{key} failed: {error}")
            figures[key] = {"not_measured": f"failed: {str(error)[:500]}"}
        write_partial(out_dir, figures)
    return figures


def main() -> None:
    args = parse_args()
    out_dir = args.out or BENCH / "runs" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    args.tree, revision = launcher_tree(args.git_ref, out_dir)
    data, info, precision = prepare(args, out_dir, env, revision)

    load_start = load_average()
    details: dict = {"machine": info, "data": str(data),
                     "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    figures = measure_figures(args, data, precision, out_dir, env, details)
    summary = summarize(figures, args, precision, revision, info, load_start)
    log(f"details: {write_results(out_dir, summary, details)}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
