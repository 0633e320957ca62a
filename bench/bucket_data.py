"""Data from a bucket (issue 22): two figures, sides alternating round by round, against a GCS emulator started here.

    python -m bench.bucket_data --git-ref HEAD         # 3 rounds each (~15 min on 2 cores)
    python -m bench.bucket_data --rounds 1 --images 1000 --files 2000   # smoke (~3 min)

Start-up and throughput. One image folder (`--images` PNGs of `--size`x`--size` RGB, scikit-learn's digits drawn
larger, shifted and noised, in class folders 0-9), the same bytes on local disk and in the bucket. Three jobs per
round, `launch.py model=cnn data=image_folder data.image_size=32`, 2 epochs, the order rotated each round:
  local: data.path=<the local folder>;
  cold:  data.path=gs://... with an empty node cache (RAYLAUNCH_DATA_CACHE a new folder): the job downloads it;
  warm:  data.path=gs://... with a cache holding it (filled by a job before the rounds): the job checks every file's
         size and crc32c against the manifest, and reads the copy.
For each: seconds from the process's start to the training's start (the first TensorBoard event, written in
on_train_begin, just before step 1: the first step's own cost, tracing the model, is the same for every side, so
differences between sides are the data's), and the samples/s of epoch 1 (decoded from the files on disk) and of
epoch 2 (from tf.data's in-memory cache) as metrics.json records them. Also the cold job's download seconds
(its cache's downloads.jsonl).

Many small files. `--files` small PNGs (one folder) downloaded by three sides, the order rotated each round:
  transfer_manager: google.cloud.storage.transfer_manager.download_many, `--workers` threads, crc32c checked (what
                    cluster/results/data_cache.py runs);
  one_at_a_time:    Blob.download_to_filename in a loop on one client, crc32c checked;
  data_cache:       DataCache.fetch into an empty cache, the whole job-side path (the transfer, then each file's
                    crc32c against the listing, the manifest, the rename).
Files per second and MB/s each; the ratio transfer_manager / one_at_a_time per round.

The emulator (fake-gcs-server, objects in memory) runs on this machine: every request costs this machine's CPU and no
network round trip. The last line printed is one JSON object (results.json in the run's folder has every run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from bench.machine import cpu_flags, cpu_model, launcher_tree, load_average
from bench.measure import BENCH, PYTHON, first_event_wall_time, log, run_measured
from bench.report import stats

JOB = ["model=cnn", "data=image_folder", "data.image_size=32", "trainer.epochs=2", "trainer.verbose=2",
       "trainer.callbacks.early_stopping.enabled=false", "trainer.callbacks.reduce_lr_on_plateau.enabled=false",
       "storage.uri=null"]
SIDES = ("local", "cold", "warm")
FILE_SIDES = ("transfer_manager", "one_at_a_time", "data_cache")


def write_images(root: Path, count: int, size: int) -> Path:
    """`count` RGB PNGs in class folders 0-9: scikit-learn's 8x8 digits scaled to `size`, shifted and noised."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    done = root.with_name(root.name + ".done")  # beside the folder: not one of the data set's files
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    digits = load_digits()
    rng = np.random.default_rng(0)
    for index in range(count):
        image, label = digits.images[index % len(digits.images)], digits.target[index % len(digits.images)]
        big = np.kron(image * 255 / 16, np.ones((size // 8, size // 8)))
        big = np.roll(big, tuple(rng.integers(-size // 16, size // 16 + 1, size=2)), axis=(0, 1))
        pixels = np.clip(big[..., None] * rng.uniform(0.6, 1.0, 3) + rng.normal(0, 12, (size, size, 3)), 0, 255)
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index:05d}.png")
    done.write_text("")
    return root


def folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*.png"))


def run_job(side: str, data_path: str, cache: Path, run_dir: Path, env: dict, tree: Path) -> dict:
    job_dir = run_dir / side
    cmd = [PYTHON, "launch.py", *JOB, f"data.path={data_path}", f"hydra.run.dir={job_dir}"]
    measured = run_measured(cmd, run_dir / f"{side}.log", {**env, "RAYLAUNCH_DATA_CACHE": str(cache)}, cwd=tree)
    metrics = json.loads((job_dir / "metrics.json").read_text())
    downloads = cache / "downloads.jsonl"
    lines = downloads.read_text().splitlines() if downloads.exists() else []
    events = [json.loads(line) for line in lines]
    return {
        "command": shlex.join(cmd),
        "wall_s": measured["wall_s"],
        "to_training_start_s": first_event_wall_time(job_dir / "tensorboard") - measured["start_time"],
        "epoch_samples_per_second": [entry["samples_per_second"] for entry in metrics["history"]],
        "num_train_examples": metrics["num_train_examples"],
        "download_s": sum(event["seconds"] for event in events if event["time"] >= measured["start_time"]),
    }


def training_rounds(args, local: Path, uri: str, out_dir: Path, env: dict, tree: Path) -> tuple[dict, list[dict]]:
    warm_cache = out_dir / "warm-cache"
    log("filling the warm cache with one job")
    run_job("fill", uri, warm_cache, out_dir / "fill", env, tree)
    rounds = []
    for index in range(args.rounds):
        run_dir = out_dir / f"round{index}"
        order = SIDES[index % 3:] + SIDES[:index % 3]
        row = {"order": order, "load_before": load_average()}
        for side in order:
            cache = warm_cache if side == "warm" else run_dir / f"{side}-cache"
            row[side] = run_job(side, str(local) if side == "local" else uri, cache, run_dir, env, tree)
            log(f"round {index} {side:5s}: training starts after {row[side]['to_training_start_s']:5.2f} s "
                f"(download {row[side]['download_s']:5.2f} s), epochs at "
                f"{', '.join(f'{rate:.0f}' for rate in row[side]['epoch_samples_per_second'])} samples/s")
        row["load_after"] = load_average()
        rounds.append(row)

    def figure(key, pick=lambda value: value):
        return {side: stats([pick(row[side][key]) for row in rounds]) for side in SIDES}

    summary = {
        "to_training_start_s": figure("to_training_start_s"),
        "start_minus_local_s": {side: stats([row[side]["to_training_start_s"] - row["local"]["to_training_start_s"]
                                             for row in rounds]) for side in ("cold", "warm")},
        "cold_download_s": stats([row["cold"]["download_s"] for row in rounds]),
        "epoch1_samples_per_second": figure("epoch_samples_per_second", lambda rates: rates[0]),
        "epoch2_samples_per_second": figure("epoch_samples_per_second", lambda rates: rates[-1]),
        "epoch1_ratio_to_local": {side: stats([row[side]["epoch_samples_per_second"][0] /
                                               row["local"]["epoch_samples_per_second"][0] for row in rounds])
                                  for side in ("cold", "warm")},
        "epoch2_ratio_to_local": {side: stats([row[side]["epoch_samples_per_second"][-1] /
                                               row["local"]["epoch_samples_per_second"][-1] for row in rounds])
                                  for side in ("cold", "warm")},
        "command_example": rounds[0]["cold"]["command"],
    }
    return summary, rounds


def download_side(side: str, listing, target: Path, workers: int) -> float:
    """Seconds to bring every file of `listing` under `target` (an empty folder) the way `side` does."""
    from google.cloud.storage import transfer_manager

    from cluster.results.data_cache import DataCache
    from cluster.results.data_transfer import pooled_client
    from cluster.store.gcs import make_client

    if side == "data_cache":
        cache = DataCache(target, workers=workers, log=lambda line: None)
        started = time.monotonic()
        cache.fetch(listing)
        seconds = time.monotonic() - started
        DataCache.release_all()
        return seconds
    client = pooled_client(workers) if side == "transfer_manager" else make_client()
    bucket = client.bucket(listing.bucket)
    for file in listing.files:
        (target / file.relative).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if side == "transfer_manager":
        pairs = [(bucket.blob(file.name, generation=file.generation), str(target / file.relative))
                 for file in listing.files]
        results = transfer_manager.download_many(pairs, download_kwargs={"checksum": "crc32c"},
                                                 worker_type=transfer_manager.THREAD, max_workers=workers)
        failed = [result for result in results if isinstance(result, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} downloads failed: {failed[0]!r}")
    else:
        for file in listing.files:
            bucket.blob(file.name, generation=file.generation).download_to_filename(
                str(target / file.relative), checksum="crc32c")
    return time.monotonic() - started


def file_rounds(args, uri: str, out_dir: Path, limit: int | None = None) -> tuple[dict, list[dict]]:
    """The three sides on the first `limit` files of `uri` (all by default), against STORAGE_EMULATOR_HOST."""
    from dataclasses import replace

    from cluster.results.inputs import list_input

    listing = list_input("data.path", uri, True)
    listing = replace(listing, files=listing.files[:limit])
    size = listing.size
    rounds = []
    for index in range(args.rounds):
        order = FILE_SIDES[index % 3:] + FILE_SIDES[:index % 3]
        row = {"order": order, "load_before": load_average()}
        for side in order:
            target = Path(tempfile.mkdtemp(prefix=f"bench-{side}-", dir=out_dir))
            seconds = download_side(side, listing, target, args.workers)
            count = sum(1 for path in target.rglob("*.png"))
            if count != len(listing.files):
                raise RuntimeError(f"{side}: {count} files of {len(listing.files)} arrived")
            shutil.rmtree(target)
            row[side] = {"seconds": seconds, "files_per_second": len(listing.files) / seconds,
                         "mb_per_second": size / seconds / 1e6}
            log(f"round {index} {side:16s}: {seconds:6.1f} s, {row[side]['files_per_second']:6.0f} files/s, "
                f"{row[side]['mb_per_second']:5.2f} MB/s")
        row["load_after"] = load_average()
        rounds.append(row)
    summary = {
        "files": len(listing.files), "bytes": size, "workers": args.workers,
        "files_per_second": {side: stats([row[side]["files_per_second"] for row in rounds]) for side in FILE_SIDES},
        "transfer_manager_over_one_at_a_time": stats([row["one_at_a_time"]["seconds"] /
                                                      row["transfer_manager"]["seconds"] for row in rounds]),
        "data_cache_over_one_at_a_time": stats([row["one_at_a_time"]["seconds"] / row["data_cache"]["seconds"]
                                                for row in rounds]),
    }
    return summary, rounds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bucket_data",
                                     description="jobs on bucket data (cold, warm cache) vs local; small files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=4000, help="images in the training folder")
    parser.add_argument("--size", type=int, default=64, help="their side in pixels (trained at 32)")
    parser.add_argument("--files", type=int, default=10_000, help="small files in the download benchmark")
    parser.add_argument("--workers", type=int, default=16, help="parallel downloads (data_cache's default)")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="then the same through a proxy adding this to each request (0: not)")
    parser.add_argument("--latency-files", type=int, default=1000, help="files downloaded through that proxy")
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "files"])
    parser.add_argument("--git-ref", help="run launch.py from a `git archive` of this commit (default: this tree)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from cluster.results.push import push
    from tests.gcs_emulator import FakeGCS

    out_dir = args.out or BENCH / "runs" / time.strftime("bucket-data-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    server = FakeGCS(Path(tempfile.mkdtemp(prefix="bench-gcs-")), backend="memory")
    server.start()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "STORAGE_EMULATOR_HOST": server.url}
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    load_start = load_average()
    results: dict = {}
    details: dict = {}
    try:
        bucket = server.create_bucket("bench")
        log(f"CPU {cpu_model()}, flags {sorted(cpu_flags() & {'avx2', 'fma', 'avx512f', 'avx512_bf16'})}, "
            f"{os.cpu_count()} cores, load {load_start}; logs in {out_dir}")
        if "training" not in args.skip:
            local = write_images(BENCH / ".data" / f"digit_images_{args.images}_{args.size}", args.images, args.size)
            uri = f"gs://{bucket}/images"
            push(local, uri, out=lambda line: None)
            log(f"{args.images} images ({folder_bytes(local) / 1e6:.1f} MB) in {local} and {uri}")
            tree, revision = launcher_tree(args.git_ref, out_dir)
            log(f"launch.py from {tree} at {revision}")
            results["training"], details["training"] = training_rounds(args, local, uri, out_dir, env, tree)
            results["training"]["launcher_revision"] = revision
            results["training"]["images"] = args.images
            results["training"]["megabytes"] = round(folder_bytes(local) / 1e6, 1)
            (out_dir / "partial.json").write_text(json.dumps(results, indent=1))
        if "files" not in args.skip:
            small = write_images(BENCH / ".data" / f"digit_images_{args.files}_16", args.files, 16)
            uri = f"gs://{bucket}/small"
            started = time.monotonic()
            push(small, uri, out=lambda line: None)
            log(f"{args.files} files ({folder_bytes(small) / 1e6:.1f} MB) pushed to {uri} in "
                f"{time.monotonic() - started:.0f} s")
            results["files"], details["files"] = file_rounds(args, uri, out_dir)
            if args.latency_ms:
                from bench.latency_proxy import LatencyProxy

                with LatencyProxy("127.0.0.1", server.port, args.latency_ms) as proxy:
                    os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
                    log(f"through a proxy adding {args.latency_ms} ms to each request, {args.latency_files} files")
                    try:
                        results["files_with_latency"], details["files_with_latency"] = file_rounds(
                            args, uri, out_dir, limit=args.latency_files)
                    finally:
                        os.environ["STORAGE_EMULATOR_HOST"] = server.url
                results["files_with_latency"]["latency_ms"] = args.latency_ms
        results["conditions"] = {
            "rounds": args.rounds, "cpu_model": cpu_model(), "logical_cores": os.cpu_count(),
            "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
            "load_average_start": load_start, "load_average_end": load_average(),
            "emulator": "fake-gcs-server, memory backend, on this machine", "python": PYTHON,
        }
        (out_dir / "results.json").write_text(json.dumps({"summary": results, "details": details}, indent=1))
        print(json.dumps(results))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
