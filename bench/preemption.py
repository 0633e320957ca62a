"""What a preemption costs, and what trainer.save_every_steps costs: two figures, sides alternating pair by pair.

    python -m bench.preemption                       # 3 pairs each, the tutorial CNN on 120,000 samples, float32
                                                     # (~1 min epochs on 2 cores; ~25 min)
    python -m bench.preemption --pairs 1 --num-train 4096 --signal-after 5   # smoke (~3 min)

Training redone per preemption. A job (`launch.py experiment=bench_mnist`, 241,546 parameters, 2 epochs) gets
SIGTERM `--signal-after` seconds into its first epoch; it saves its state at the step's end and exits (status 75). Then
two reruns, in alternating order:
  step-level (now):   the rerun in the interrupted job's folder, which continues at the saved step;
  epoch-level (before): the rerun in a folder without that state, which trains the whole epoch again, as a job did
                      before (its state was the last finished epoch's, here none).
Each rerun's training seconds (of that first epoch) are its examples over the `samples_per_second` metrics.json
records (the training part of the epoch: no start-up, no validation). Training redone = what the rerun trains that the
interrupted job had trained already: epoch-level seconds minus step-level seconds (both train the rest of the
epoch; epoch-level trains the first part again), and 0 steps at step level by the logs. Also: seconds from the
signal to the process's exit (the save).

Cost of save_every_steps. Two-epoch jobs with `trainer.save_every_steps=N` against without; the second epoch's
training seconds (its saves happen within it) compared as a ratio per pair. On a loaded machine whole epochs vary by
more than the few percent this is about: `python -m bench.save_cost` times the save itself against the training
step in one process, which resolves it.

The last line printed is one JSON object (`--out`/results.json has every run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from bench.machine import choose_precision, cpu_flags, load_average, machine_info
from bench.measure import BENCH, PYTHON, ROOT, log
from bench.report import stats

JOB = ["experiment=bench_mnist", "trainer.callbacks.early_stopping.enabled=false",
       "trainer.callbacks.reduce_lr_on_plateau.enabled=false", "trainer.verbose=2", "storage.uri=null"]


def launch(job_dir: Path, args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "launch.py", *JOB, *args, f"hydra.run.dir={job_dir}"], cwd=ROOT, env=env,
                            stdout=open(f"{job_dir}.log", "a"), stderr=subprocess.STDOUT)


def epoch_train_seconds(job_dir: Path) -> tuple[list[float], list[int]]:
    """The training seconds and steps of each epoch the job's last run trained: its examples over the
    samples/s metrics.json records (a resumed epoch's examples are its share of the steps, as the trainer's
    ThroughputLogger counts them)."""
    metrics = json.loads((job_dir / "metrics.json").read_text())
    log_text = Path(f"{job_dir}.log").read_text().split("resuming from")[-1]
    counts = [int(count) for count in re.findall(r"^(\d+)/\1 ", log_text, re.MULTILINE)]
    full = -(-metrics["num_train_examples"] // metrics["global_batch_size"])
    examples = [round(metrics["num_train_examples"] * count / full) for count in counts]
    entries = metrics["history"][-len(counts):]
    return [count / entry["samples_per_second"] for entry, count in zip(entries, examples)], counts


def preemption_pair(index: int, args, data: Path, precision: str, out_dir: Path, env: dict) -> dict:
    run_dir = out_dir / f"preempt{index}"
    run_dir.mkdir(parents=True)
    common = [f"data.path={data}", f"precision={precision}", "trainer.epochs=2"]
    job_dir = run_dir / "job"
    job = launch(job_dir, common, env)
    # The first epoch starts when Keras prints "Epoch 1/2".
    while "Epoch 1/2" not in (Path(f"{job_dir}.log").read_text() if Path(f"{job_dir}.log").exists() else ""):
        if job.poll() is not None:
            raise RuntimeError(f"the job ended before its epoch: see {job_dir}.log")
        time.sleep(0.05)
    time.sleep(args.signal_after)
    signalled = time.monotonic()
    job.send_signal(signal.SIGTERM)
    status = job.wait(timeout=300)
    exit_s = time.monotonic() - signalled
    stopped = re.search(r"after step (\d+) of epoch 1", Path(f"{job_dir}.log").read_text())
    if status != 75 or not stopped:
        raise RuntimeError(f"the job did not stop within its first epoch on SIGTERM (status {status}; a longer epoch "
                           f"or a smaller --signal-after): see {job_dir}.log")
    step = int(stopped[1])
    before_dir = run_dir / "epoch_level"
    order = ("step", "epoch") if index % 2 == 0 else ("epoch", "step")
    reruns = {}
    once = [*common[:-1], "trainer.epochs=1"]  # the reruns stop after the epoch that was interrupted
    for side in order:
        folder = job_dir if side == "step" else before_dir
        cmd = [PYTHON, "launch.py", *JOB, *once, f"hydra.run.dir={folder}"]
        rerun = launch(folder, once, env)
        if rerun.wait(timeout=1800) != 0:
            raise RuntimeError(f"the {side}-level rerun failed: see {folder}.log")
        seconds, counts = epoch_train_seconds(folder)
        reruns[side] = {"command": shlex.join(cmd), "train_s": seconds[0], "steps": counts[0]}
    steps = reruns["epoch"]["steps"]  # the epoch-level rerun trains the whole epoch
    return {
        "order": order, "signal_after_s": args.signal_after, "stopped_after_step": step, "steps_per_epoch": steps,
        "exit_after_signal_s": exit_s, "reruns": reruns,
        "redone_steps": {"epoch_level": step, "step_level": reruns["step"]["steps"] - (steps - step)},
        "redone_s": {"epoch_level": reruns["epoch"]["train_s"] - reruns["step"]["train_s"], "step_level": 0.0},
        "epoch_train_s": reruns["epoch"]["train_s"], "load": load_average(),
    }


def save_pair(index: int, args, data: Path, precision: str, out_dir: Path, env: dict) -> dict:
    run_dir = out_dir / f"saves{index}"
    run_dir.mkdir(parents=True)
    order = ("saves", "none") if index % 2 == 0 else ("none", "saves")
    sides = {}
    for side in order:
        folder = run_dir / side
        extra = [f"trainer.save_every_steps={args.save_every_steps}"] if side == "saves" else []
        job = launch(folder, [f"data.path={data}", f"precision={precision}", "trainer.epochs=2", *extra], env)
        if job.wait(timeout=3600) != 0:
            raise RuntimeError(f"{folder} failed: see {folder}.log")
        seconds, _ = epoch_train_seconds(folder)
        sides[side] = {"epoch_train_s": seconds, "second_epoch_s": seconds[-1]}
    return {"order": order, **sides, "ratio": sides["saves"]["second_epoch_s"] / sides["none"]["second_epoch_s"],
            "load": load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.preemption",
                                     description="training redone per preemption; the cost of save_every_steps")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--num-train", type=int, default=120_000)
    parser.add_argument("--precision", default="float32", help="float32 (default), or bench-auto as bench/run.py")
    parser.add_argument("--signal-after", type=float, default=30.0, help="seconds into the epoch")
    parser.add_argument("--save-every-steps", type=int, default=50)
    parser.add_argument("--skip", nargs="*", default=[], choices=["preemption", "saves"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench.make_data import make

    out_dir = args.out or BENCH / "runs" / time.strftime("preemption-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, max(1_000, args.num_train // 6))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    info = machine_info(env)
    precision = choose_precision(args.precision, info) if args.precision == "bench-auto" else args.precision
    log(f"machine: {info}; data {data}; logs in {out_dir}")
    results: dict = {"preemption": [], "saves": []}
    for index in range(args.pairs):
        if "preemption" not in args.skip:
            pair = preemption_pair(index, args, data, precision, out_dir, env)
            results["preemption"].append(pair)
            log(f"preemption {index}: stopped after step {pair['stopped_after_step']}/{pair['steps_per_epoch']}, "
                f"redone {pair['redone_s']['epoch_level']:.1f} s before, "
                f"{pair['redone_steps']['step_level']} steps now")
        if "saves" not in args.skip:
            pair = save_pair(index, args, data, precision, out_dir, env)
            results["saves"].append(pair)
            log(f"saves {index}: ratio {pair['ratio']:.3f}")
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    preempted = results["preemption"]
    summary = {
        "preemption": preempted and {
            "redone_s_epoch_level": stats([pair["redone_s"]["epoch_level"] for pair in preempted]),
            "redone_steps_step_level": stats([pair["redone_steps"]["step_level"] for pair in preempted]),
            "redone_steps_epoch_level": stats([pair["redone_steps"]["epoch_level"] for pair in preempted]),
            "epoch_train_s": stats([pair["epoch_train_s"] for pair in preempted]),
            "exit_after_signal_s": stats([pair["exit_after_signal_s"] for pair in preempted]),
        },
        "save_every_steps": results["saves"] and {
            "every": args.save_every_steps, "epoch_time_ratio": stats([pair["ratio"] for pair in results["saves"]]),
        },
        "conditions": {"pairs": args.pairs, "num_train": args.num_train, "signal_after_s": args.signal_after,
                       "precision": precision, "cpu_model": info["cpu_model"],
                       "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
                       "logical_cores": info["logical_cores"], "load_average_end": load_average()},
    }
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, **results}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
