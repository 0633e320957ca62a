"""The benchmark CNN's input-wait fraction, and what timing it costs (issue 22, item 4).

    python -m bench.input_wait                       # 3 pairs, 3 epochs on 30,000 MNIST-shaped samples, float32
                                                     # (~15 min on 2 idle cores)
    python -m bench.input_wait --pairs 1 --num-train 4096 --epochs 2   # smoke (~2 min)

Each pair runs `launch.py experiment=bench_mnist` (the tutorial CNN, 241,546 parameters, batch 128; numpy arrays
through from_tensor_slices, cached, shuffled per epoch, prefetched) twice, in alternating order:
  timed:    trainer.time_input_wait=true (the default): metrics.json's `input_wait_fraction` (epochs after the
            first) and each epoch's, from the history;
  untimed:  trainer.time_input_wait=false: the same job without the clock (trainers/input_wait.py).
Figures: the timed runs' input-wait fraction (median [min-max] over runs), and the timing's cost as the ratio
of training samples/s (metrics.json's `train_samples_per_second`, epochs after the first) timed / untimed per
pair. The machine's CPU flags and load average go with them. A ratio within the machine's ~15 % run-to-run
noise is no cost and no gain.

The clock's own cost, which whole jobs on a shared machine cannot resolve: `--clock-cost` (run in a subprocess
by default) takes batches of the benchmark's shape (128 x 28 x 28 x 1) from an in-memory, prefetched dataset
inside a tf.function, as Keras' train function does, with and without the clock, alternating; the difference
per batch is what the clock adds to a step that does nothing else.

The last line printed is one JSON object (`--out`/results.json has every run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from bench.machine import choose_precision, cpu_flags, load_average, machine_info
from bench.measure import BENCH, PYTHON, ROOT, log
from bench.report import stats

JOB = ["experiment=bench_mnist", "trainer.callbacks.early_stopping.enabled=false",
       "trainer.callbacks.reduce_lr_on_plateau.enabled=false", "trainer.verbose=2", "storage.uri=null"]


def run_job(job_dir: Path, overrides: list[str], env: dict) -> dict:
    """One launch.py job as a user runs it; its metrics.json."""
    job_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{job_dir}.log", "w") as out:
        status = subprocess.run([PYTHON, "launch.py", *JOB, *overrides, f"hydra.run.dir={job_dir}"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600).returncode
    if status != 0:
        raise RuntimeError(f"{job_dir} failed (status {status}): see {job_dir}.log")
    return json.loads((job_dir / "metrics.json").read_text())


def pair(index: int, common: list[str], out_dir: Path, env: dict) -> dict:
    order = ("timed", "untimed") if index % 2 == 0 else ("untimed", "timed")
    sides = {}
    for side in order:
        metrics = run_job(out_dir / f"pair{index}" / side,
                          [*common, f"trainer.time_input_wait={str(side == 'timed').lower()}"], env)
        sides[side] = {
            "samples_per_second": metrics["train_samples_per_second"],
            "input_wait_fraction": metrics["input_wait_fraction"],
            "epochs": [{key: epoch.get(key) for key in ("samples_per_second", "input_wait_fraction")}
                       for epoch in metrics["history"]],
        }
    ratio = sides["timed"]["samples_per_second"] / sides["untimed"]["samples_per_second"]
    return {"order": order, **sides, "throughput_ratio": ratio, "load": load_average()}


CLOCK_COST_BATCHES = 2_000


def clock_cost(rounds: int = 5) -> dict:
    """Microseconds per batch taken without and with the clock, `rounds` alternations (run in its own process)."""
    import numpy as np
    import tensorflow as tf

    from trainers.input_wait import InputWaitClock

    tf.config.experimental.enable_op_determinism()  # as trainer.deterministic (the default) does
    images = tf.zeros([128, 28, 28, 1])
    labels = tf.zeros([128], tf.int32)
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat(CLOCK_COST_BATCHES).prefetch(tf.data.AUTOTUNE)
    clock = InputWaitClock()

    @tf.function
    def consume(iterator):
        total = tf.constant(0.0)
        for _ in tf.range(CLOCK_COST_BATCHES):
            x, _ = iterator.get_next()
            total += x[0, 0, 0, 0]
        return total

    times: dict[str, list[float]] = {"plain": [], "timed": []}
    for index in range(rounds + 1):
        for side in ("plain", "timed") if index % 2 == 0 else ("timed", "plain"):
            iterator = iter(clock.timed(batches) if side == "timed" else batches)
            start = time.perf_counter()
            consume(iterator)
            if index:  # the first round traces
                times[side].append((time.perf_counter() - start) / CLOCK_COST_BATCHES * 1e6)
    plain, timed = float(np.median(times["plain"])), float(np.median(times["timed"]))
    return {"plain_us_per_batch": plain, "timed_us_per_batch": timed, "clock_us_per_batch": timed - plain,
            "rounds": rounds, "values": times}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.input_wait",
                                     description="the benchmark CNN's input-wait fraction, and the timing's cost")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--num-train", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=3, help="at least 2: the first is left out of each figure")
    parser.add_argument("--precision", default="float32", help="float32 (default), or bench-auto as bench/run.py")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra overrides for every job")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--clock-cost", action="store_true", help="only the clock's cost per batch, in this process")
    args = parser.parse_args()
    if args.clock_cost:
        print(json.dumps(clock_cost()))
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch pays for tracing and is not counted")

    from bench.make_data import make

    out_dir = args.out or BENCH / "runs" / time.strftime("input-wait-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, max(1_000, args.num_train // 6))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    info = machine_info(env)
    precision = choose_precision(args.precision, info) if args.precision == "bench-auto" else args.precision
    common = [f"data.path={data}", f"precision={precision}", f"trainer.epochs={args.epochs}", *args.overrides]
    log(f"machine: {info}; data {data}; logs in {out_dir}")
    cost = subprocess.run([PYTHON, "-m", "bench.input_wait", "--clock-cost"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    clock = json.loads(cost.stdout.strip().splitlines()[-1])
    log(f"clock: {clock['clock_us_per_batch']:.0f} us per batch ({clock['plain_us_per_batch']:.0f} without, "
        f"{clock['timed_us_per_batch']:.0f} with)")
    pairs = []
    for index in range(args.pairs):
        pairs.append(pair(index, common, out_dir, env))
        last = pairs[-1]
        log(f"pair {index}: input wait {last['timed']['input_wait_fraction']:.4f}, samples/s timed "
            f"{last['timed']['samples_per_second']:.0f} vs untimed {last['untimed']['samples_per_second']:.0f} "
            f"(ratio {last['throughput_ratio']:.3f}), load {last['load']}")
        (out_dir / "results.json").write_text(json.dumps({"clock": clock, "pairs": pairs}, indent=1))
    summary = {
        "input_wait_fraction": stats([p["timed"]["input_wait_fraction"] for p in pairs]),
        "timed_vs_untimed_throughput": stats([p["throughput_ratio"] for p in pairs]),
        "timed_samples_per_second": stats([p["timed"]["samples_per_second"] for p in pairs]),
        "untimed_samples_per_second": stats([p["untimed"]["samples_per_second"] for p in pairs]),
        # The clock's cost per batch against the step it is added to (the timed runs' median step).
        "clock_us_per_batch": clock["clock_us_per_batch"],
        "clock_share_of_step": clock["clock_us_per_batch"] * 1e-6
        / (128 / stats([p["timed"]["samples_per_second"] for p in pairs])["median"]),
        "conditions": {"pairs": args.pairs, "num_train": args.num_train, "epochs": args.epochs,
                       "precision": precision, "overrides": args.overrides, "cpu_model": info["cpu_model"],
                       "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
                       "logical_cores": info["logical_cores"], "tensorflow": info.get("tensorflow"),
                       "keras": info.get("keras"), "load_average_end": load_average()},
    }
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, "clock": clock, "pairs": pairs}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
