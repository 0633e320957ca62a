"""What one step-level state save costs the training thread, against the training step, in one process: the
figure whole-epoch pairs (bench/preemption.py) cannot resolve on a loaded machine.

    python -m bench.save_cost                        # the tutorial CNN, float32, 6 epochs of 30,000 samples,
                                                     # a save every 20 steps (63 saves; ~3 min on 2 loaded cores)
    python -m bench.save_cost --num-train 4096 --epochs 2 --every 8   # smoke (~1 min)

One `trainers.job.train` of `experiment=bench_mnist` (as `launch.py` runs it, 241,546 parameters, batch 128, Adam)
with `trainer.save_every_steps=--every`, in this process. `StepState.save` (what save_every_steps calls: the
model with its optimizer, progress.json with the position and the epoch's metrics so far, the swap of `state/`)
and the step hook after it are timed where they run, on the training thread; so is every training step (from one
`on_train_batch_end` to the next, the saves taken out), interleaved with the saves in the same fit. The hook
does what `TrialUploader.on_state_saved` does on the training thread with a store (`stage_state`: hard links and
a small JSON read; the queue put is left out); the upload itself runs on the uploader's own thread
(cluster/results/uploader.py) and is not measured here.

Figures: one save in training steps, save_i / (median of the plain steps in the block before it), median and
range over the saves (the first save, which pays one-time costs, is reported apart; as a cross-check, the mean
save over the mean plain step); the same with the excess of the first step after each save over that median added
(what a save leaves behind: caches, the kernel writing the file out); and from them the epoch-time overhead of
`trainer.save_every_steps=N` = (one save in steps) / N for several N. The ratio still depends on the load: on
2 cores, heavy load slowed the save more than the step (0.6-0.7 steps a save at load 3, 1.4-2.1 at load 8-11);
give the load with the figure.

The last line printed is one JSON object (`--out`/results.json has every step and save).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench.machine import cpu_flags, cpu_model, load_average
from bench.measure import BENCH, ROOT, log
from bench.report import stats

JOB = ["experiment=bench_mnist", "trainer.callbacks.early_stopping.enabled=false",
       "trainer.callbacks.reduce_lr_on_plateau.enabled=false", "trainer.verbose=2", "storage.uri=null"]
# Values of trainer.save_every_steps to derive the overhead for (the schema's example is 500).
EVERY = (10, 20, 50, 100, 200, 500)


def measure(job_dir: Path, overrides: list[str]) -> dict:
    """Train once with the timing in place; every step's and save's record."""
    from hydra import compose, initialize_config_dir

    from cluster.results.trial_state import stage_state
    from trainers import callbacks
    from trainers.job import train
    from trainers.schema import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*JOB, *overrides])
    steps: list[dict] = []  # per on_train_batch_end: epoch, batch, time at entry, save and hook seconds
    staged: list = []
    original_end, original_save = callbacks.StepState.on_train_batch_end, callbacks.StepState.save

    def on_train_batch_end(self, batch, logs=None):
        steps.append({"epoch": self.epoch, "batch": batch, "t": time.perf_counter(), "save_s": 0.0, "hook_s": 0.0})
        original_end(self, batch, logs)

    def save(self):
        start = time.perf_counter()
        original_save(self)
        steps[-1]["save_s"] = time.perf_counter() - start

    def hook(state_dir: str) -> None:  # TrialUploader.on_state_saved's part on the training thread
        start = time.perf_counter()
        staged.append(stage_state(job_dir))
        steps[-1]["hook_s"] = time.perf_counter() - start

    callbacks.StepState.on_train_batch_end, callbacks.StepState.save = on_train_batch_end, save
    try:
        train(cfg, job_dir, on_state_saved=hook)
    finally:
        callbacks.StepState.on_train_batch_end, callbacks.StepState.save = original_end, original_save
        for item in staged:
            if item is not None:
                item.discard()
    return {"steps": steps, "state_bytes": (job_dir / "state" / "last.keras").stat().st_size}


def analyse(steps: list[dict], every_values=EVERY) -> dict:
    """Plain step times, save times, and one save in steps: each save against the median of the plain steps in
    the block before it, alone and with the excess of the step just after it."""
    plain: list[float] = []  # steps with no save just before them
    after: list[float] = []  # the first step after each save
    entries: list[dict] = []
    block: list[float] = []  # the plain steps since the last save
    for previous, step in zip(steps, steps[1:]):
        if step["epoch"] != previous["epoch"] or step["batch"] != previous["batch"] + 1:
            continue  # an epoch's first step comes after the validation and the epoch's own save: not a step
        seconds = step["t"] - previous["t"] - previous["save_s"]
        if previous["save_s"] <= 0:
            plain.append(seconds)
            block.append(seconds)
            continue
        after.append(seconds)
        if len(block) >= 3:
            local, save = statistics.median(block), previous["save_s"]
            entries.append({"save_s": save, "hook_s": previous["hook_s"], "step_s": local,
                            "save_in_steps": save / local, "with_next_step_in_steps": (save + seconds - local) / local})
        block = []
    first, rest = (entries[0], entries[1:]) if entries else (None, [])
    in_steps = [entry["save_in_steps"] for entry in rest]
    with_next = [entry["with_next_step_in_steps"] for entry in rest]
    overhead = {str(n): {"save_only_percent": stats([100 * value / n for value in in_steps]),
                         "with_next_step_percent": stats([100 * value / n for value in with_next])}
                for n in every_values}
    worst = max(statistics.median(in_steps), statistics.median(with_next))
    return {
        "step_s": stats(plain), "step_after_save_s": stats(after),
        "save_s": stats([entry["save_s"] for entry in rest]), "hook_s": stats([entry["hook_s"] for entry in rest]),
        "first_save": first, "save_in_steps": stats(in_steps), "save_with_next_step_in_steps": stats(with_next),
        "overhead_by_every": overhead,
        # Cross-check with means (what an epoch's time adds up), which load bursts pull more than medians.
        "mean_save_in_mean_steps": statistics.mean(entry["save_s"] for entry in rest) / statistics.mean(plain),
        # trainer.save_every_steps at or above this keeps the median overhead (either way of counting) at 2 % or less
        "every_for_2_percent": worst / 0.02,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.save_cost",
                                     description="one step-level state save against the training step, in-process")
    parser.add_argument("--num-train", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--every", type=int, default=20, help="trainer.save_every_steps while measuring")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench.make_data import make

    out_dir = args.out or BENCH / "runs" / time.strftime("save-cost-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, max(1_000, args.num_train // 6))
    load_start = load_average()
    log(f"data {data}; job in {out_dir / 'job'}; load {load_start}")
    overrides = [f"data.path={data}", f"precision={args.precision}", f"trainer.epochs={args.epochs}",
                 f"trainer.save_every_steps={args.every}"]
    run = measure(out_dir / "job", overrides)
    summary = {
        **analyse(run["steps"]),
        "state_bytes": run["state_bytes"],
        "conditions": {"command": "python -m bench.save_cost " + " ".join(
                           f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
                           if key != "out"),
                       "overrides": [*JOB, *overrides], "cpu_model": cpu_model(), "logical_cores": os.cpu_count(),
                       "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
                       "load_average_start": load_start, "load_average_end": load_average()},
    }
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, "steps": run["steps"]}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
