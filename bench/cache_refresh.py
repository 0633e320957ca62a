"""A node's data cache after a few objects of a data set changed (issue 22 follow-up): the node fetches only the changed
objects and links the rest from its older copy, against fetching every object again, which is what a changed data
set cost before (a new cache entry, downloaded whole). Sides alternate round by round, against a GCS emulator started
here.

    python -m bench.cache_refresh                                   # 5 rounds, 2,000 files, 20 changed (~5 min)
    python -m bench.cache_refresh --latency-ms 20                   # each request held 20 ms, as a bucket's
    python -m bench.cache_refresh --rounds 1 --files 100 --changed 5   # smoke

Each round: a fresh cache fetches the data set (not timed); `--changed` of its objects are written again with other
bytes (new generations); then, in the round's order,
  reuse: DataCache.fetch of the new listing in that cache (what a node does now);
  whole: DataCache.fetch of the new listing in an empty cache (every object downloaded, as a changed data set was).
Both copies are compared with the local folder byte for byte. Seconds per side, and whole / reuse per round. The
emulator (fake-gcs-server, objects in memory) runs on this machine. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.bucket_data import write_images
from bench.machine import cpu_flags, cpu_model, load_average
from bench.measure import BENCH, log
from bench.report import stats

SIDES = ("reuse", "whole")


def change_files(folder: Path, count: int, round_index: int) -> list[Path]:
    """Write `count` of the folder's files again with other bytes (a trailing marker a PNG reader ignores)."""
    changed = sorted(folder.rglob("*.png"))[round_index * count:(round_index + 1) * count]
    for path in changed:
        path.write_bytes(path.read_bytes() + f"round {round_index}".encode())
    return changed


def same_files(local: Path, copy: Path) -> bool:
    names = sorted(path.relative_to(local).as_posix() for path in local.rglob("*.png"))
    return names == sorted(path.relative_to(copy).as_posix() for path in copy.rglob("*.png")) and all(
        (local / name).read_bytes() == (copy / name).read_bytes() for name in names)


def fetch_seconds(root: Path, listing) -> tuple[float, dict]:
    """Seconds DataCache.fetch takes on `listing` in the cache at `root`, and its downloads.jsonl line."""
    from cluster.results.data_cache import DOWNLOADS_LOG, DataCache

    started = time.monotonic()
    copy = DataCache(root, log=lambda line: None).fetch(listing)
    seconds = time.monotonic() - started
    DataCache.release_all()
    return seconds, {**json.loads((root / DOWNLOADS_LOG).read_text().splitlines()[-1]), "copy": str(copy)}


def rounds(args, folder: Path, uri: str, out_dir: Path) -> tuple[dict, list[dict]]:
    from cluster.results.inputs import list_input
    from cluster.results.push import push

    push(folder, uri, out=lambda line: None)
    done = []
    for index in range(args.rounds):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        caches = {side: Path(tempfile.mkdtemp(prefix=f"cache-{side}-", dir=out_dir)) for side in SIDES}
        fetch_seconds(caches["reuse"], list_input("data.path", uri, True, fresh=True))  # the node's older copy
        change_files(folder, args.changed, index)
        push(folder, uri, out=lambda line: None)
        listing = list_input("data.path", uri, True, fresh=True)
        row = {"order": list(order), "load_before": load_average()}
        for side in order:
            seconds, line = fetch_seconds(caches[side], listing)
            if not same_files(folder, Path(line["copy"])):
                raise RuntimeError(f"round {index} {side}: the copy differs from the local folder")
            row[side] = {"seconds": seconds, "downloaded": line["files"], "reused": line.get("reused", 0)}
            log(f"round {index} {side}: {seconds:6.2f} s, {line['files']} downloaded, {line.get('reused', 0)} reused")
        row["load_after"] = load_average()
        done.append(row)
    summary = {
        "files": len(listing.files), "changed": args.changed, "bytes": listing.size,
        "seconds": {side: stats([row[side]["seconds"] for row in done]) for side in SIDES},
        "whole_over_reuse": stats([row["whole"]["seconds"] / row["reuse"]["seconds"] for row in done]),
        "downloaded": {side: sorted({row[side]["downloaded"] for row in done}) for side in SIDES},
    }
    return summary, done


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_refresh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000, help="files in the data set (16x16 PNGs)")
    parser.add_argument("--changed", type=int, default=20, help="objects written again each round")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="hold each request this long (a proxy)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.changed * args.rounds > args.files:
        parser.error(f"--changed {args.changed} x --rounds {args.rounds} exceeds --files {args.files}")

    from tests.gcs_emulator import FakeGCS

    out_dir = args.out or BENCH / "runs" / time.strftime("cache-refresh-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    server = FakeGCS(Path(tempfile.mkdtemp(prefix="bench-gcs-")), backend="memory")
    server.start()
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    load_start = load_average()
    try:
        folder = write_images(Path(tempfile.mkdtemp(prefix="refresh-", dir=out_dir)) / "images", args.files, 16)
        uri = f"gs://{server.create_bucket('bench')}/images"
        log(f"CPU {cpu_model()}, flags {sorted(cpu_flags() & {'avx2', 'fma', 'avx512f', 'avx512_bf16'})}, "
            f"{os.cpu_count()} cores, load {load_start}; {args.files} files, {args.changed} changed a round")
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
        if args.latency_ms:
            from bench.latency_proxy import LatencyProxy

            with LatencyProxy("127.0.0.1", server.port, args.latency_ms) as proxy:
                os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
                summary, details = rounds(args, folder, uri, out_dir)
        else:
            summary, details = rounds(args, folder, uri, out_dir)
        summary["conditions"] = {
            "rounds": args.rounds, "latency_ms": args.latency_ms, "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16"}),
            "load_average_start": load_start, "load_average_end": load_average(),
            "emulator": "fake-gcs-server, memory backend, on this machine",
        }
        (out_dir / "results.json").write_text(json.dumps({"summary": summary, "details": details}, indent=1))
        print(json.dumps(summary))
        return summary
    finally:
        if emulator is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = emulator
        server.stop()


if __name__ == "__main__":
    main()
