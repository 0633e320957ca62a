"""What uploading the resumable state after every epoch costs: epoch time with a bucket against without.

    python -m bench.state_upload                 # 4 pairs x 6 epochs of the tutorial CNN on 20,000 samples
                                                 # (~12 min on 2 cores)
    python -m bench.state_upload --pairs 1 --epochs 3 --num-train 4096   # smoke (~2 min)

Both sides run `launch.py experiment=bench_mnist` (241,546 parameters; a state of about 2.9 MB with Adam's
moments) on the same offline MNIST-shaped file; one with `storage.uri=gs://...` on a local GCS emulator
(the fake-gcs-server of the test extras), whose uploads include the state every epoch, the other with
`storage.uri=null`. Sides alternate pair by pair. An epoch's time is the wall time between consecutive
`epoch_loss` events in the job's TensorBoard file: training, validation, the state written to disk and,
with a bucket, the epoch hook that stages the state, plus whatever the upload thread takes from the CPU
meanwhile. The first epoch (graph tracing) is left out. The last line printed is one JSON object:

  epoch_time_ratio   median epoch seconds with the bucket over without, per pair: median, min, max, values
  state_model_bytes  size of one uploaded state's last.keras (model + optimizer)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import choose_precision, cpu_flags, load_average, machine_info
from bench.measure import BENCH, PYTHON, ROOT, log, run_measured
from bench.report import stats
from trainers.job_files import STATE_MODEL, TENSORBOARD


def epoch_seconds(tensorboard_dir: Path) -> list[float]:
    """Wall time between consecutive epochs' `epoch_loss` events (the first epoch left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tensorboard_dir / "train"), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    tag = "epoch_loss"
    events = accumulator.Tensors(tag) if tag in accumulator.Tags().get("tensors", []) else accumulator.Scalars(tag)
    times = [event.wall_time for event in sorted(events, key=lambda event: event.step)]
    return [later - earlier for earlier, later in zip(times, times[1:])]


def run_side(side: str, data: Path, args, precision: str, run_dir: Path, env: dict, bucket_uri: str) -> dict:
    job_dir = run_dir / side
    store = f"storage.uri={bucket_uri}/{run_dir.name}-{side}" if side == "bucket" else "storage.uri=null"
    cmd = [PYTHON, "launch.py", "experiment=bench_mnist", f"data.path={data}", f"trainer.epochs={args.epochs}",
           f"precision={precision}", "trainer.callbacks.early_stopping.enabled=false", store,
           f"hydra.run.dir={job_dir}"]
    measured = run_measured(cmd, run_dir / f"{side}.log", env, cwd=ROOT)
    seconds = epoch_seconds(job_dir / TENSORBOARD)
    result = {"command": shlex.join(cmd), "wall_s": measured["wall_s"], "epoch_seconds": seconds,
              "median_epoch_s": statistics.median(seconds)}
    if side == "bucket":
        result["uploads"] = [line.strip() for line in (run_dir / f"{side}.log").read_text().splitlines()
                             if "uploaded:" in line]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.state_upload",
        description="epoch time with the state uploaded to a bucket every epoch vs without")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--num-train", type=int, default=20_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3: the first epoch is not counted and a ratio needs two")

    from bench.make_data import make
    from tests.gcs_emulator import FakeGCS

    out_dir = args.out or BENCH / "runs" / time.strftime("state-upload-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make(BENCH / ".data" / f"mnist_like_{args.num_train}.npz", args.num_train, max(1_000, args.num_train // 6))
    server = FakeGCS(Path(tempfile.mkdtemp(prefix="bench-gcs-")), backend="memory")
    server.start()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "STORAGE_EMULATOR_HOST": server.url}
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    try:
        bucket_uri = f"gs://{server.create_bucket('bench')}/state"
        info = machine_info(env)
        precision = choose_precision("bench-auto", info)
        log(f"machine: {info}; data {data}; logs in {out_dir}")
        pairs, ratios = [], []
        for index in range(args.pairs):
            run_dir = out_dir / f"pair{index}"
            order = ("bucket", "none") if index % 2 == 0 else ("none", "bucket")
            pair = {"order": order, "load_before": load_average()}
            for side in order:
                log(f"pair {index}: {side}")
                pair[side] = run_side(side, data, args, precision, run_dir, env, bucket_uri)
            ratios.append(pair["bucket"]["median_epoch_s"] / pair["none"]["median_epoch_s"])
            pairs.append(pair)
            log(f"pair {index}: bucket {pair['bucket']['median_epoch_s']:.2f} s/epoch, "
                f"none {pair['none']['median_epoch_s']:.2f} s/epoch")
        from cluster.store import open_store

        sizes = [info.size for info in open_store(bucket_uri).list("") if info.key.endswith(f"/{STATE_MODEL}")]
        summary = {
            "epoch_time_ratio": stats(ratios),
            "state_model_bytes": max(sizes) if sizes else None,
            "conditions": {"pairs": args.pairs, "epochs": args.epochs, "num_train": args.num_train,
                           "precision": precision, "cpu_model": info["cpu_model"],
                           "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
                           "logical_cores": info["logical_cores"], "load_average_end": load_average()},
        }
        (out_dir / "results.json").write_text(json.dumps({"summary": summary, "pairs": pairs}, indent=1))
        print(json.dumps(summary))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
