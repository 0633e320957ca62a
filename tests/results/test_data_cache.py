"""Inputs from a bucket against a real GCS emulator: `push` uploads a data set (skipping what is there), and a node's
data cache (cluster/results/data_cache.py) downloads it once for every process on the node, never uses a killed
download, fetches a damaged file or a changed object again, and evicts the least recently used entry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.results.data_cache import DOWNLOADS_LOG, DataCache
from cluster.results.inputs import list_input
from cluster.results.push import push
from tests.conftest import PROJECT_ROOT, wait_for
from tests.keras_practice.makers import write_image_folder


def downloads(cache_root: Path) -> list[dict]:
    log = cache_root / DOWNLOADS_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def same_tree(local: Path, copy: Path) -> bool:
    names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    copied = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    return names == copied and all((local / name).read_bytes() == (copy / name).read_bytes() for name in names)


@pytest.fixture
def photos(tmp_path):
    return write_image_folder(tmp_path / "photos", per_class=6, size=8)


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache"


def fetch(uri: str, root: Path, is_folder: bool = True, **options) -> Path:
    cache = DataCache(root, **options)
    return cache.fetch(list_input("data.path", uri, is_folder, fresh=True))


@pytest.fixture(autouse=True)
def release_entries():
    yield
    DataCache.release_all()


def test_push_uploads_what_is_missing_and_the_cache_copies_it_exactly(gcs, photos, cache_root):
    _, bucket = gcs
    uri = f"gs://{bucket}/data/photos"
    lines: list[str] = []
    assert push(photos, uri, out=lines.append)["uploaded"] == 12
    assert push(photos, uri, out=lines.append) == {"uploaded": 0, "skipped": 12, "bytes": 0, "extra": 0, "deleted": 0}
    (photos / "dark" / "000.png").write_bytes((photos / "light" / "000.png").read_bytes())  # same size or not
    assert push(photos, uri, out=lines.append)["uploaded"] == 1
    assert "11 already there with the same checksum" in lines[-2]
    assert same_tree(photos, fetch(uri, cache_root))
    # One file: the object is the URI itself.
    push(photos / "dark" / "001.png", f"gs://{bucket}/weights/one.png", out=lines.append)
    copy = fetch(f"gs://{bucket}/weights/one.png", cache_root, is_folder=False)
    assert copy.name == "one.png" and copy.read_bytes() == (photos / "dark" / "001.png").read_bytes()


FETCH_IN_A_PROCESS = """
import sys, time
from pathlib import Path
from cluster.results.data_cache import DataCache
from cluster.results.inputs import list_input
go = Path(sys.argv[3])
Path(f"{go}.ready.{sys.argv[4]}").touch()
while not go.exists():
    time.sleep(0.01)
print("PATH", DataCache(sys.argv[2]).fetch(list_input("data.path", sys.argv[1], True)), flush=True)
"""


def start_fetch(uri: str, root: Path, go: Path, number: int = 0) -> subprocess.Popen:
    """A process that fetches `uri` into the cache at `root` once the file `go` exists (go.ready.NUMBER: it waits)."""
    return subprocess.Popen([sys.executable, "-c", FETCH_IN_A_PROCESS, uri, str(root), str(go), str(number)],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_processes_on_a_node_share_one_download(gcs, tmp_path, cache_root):
    _, bucket = gcs
    data = write_image_folder(tmp_path / "many", per_class=150, size=8)
    uri = f"gs://{bucket}/data/many"
    push(data, uri, out=lambda line: None)
    go = tmp_path / "go"
    processes = [start_fetch(uri, cache_root, go, number) for number in range(2)]
    wait_for(lambda: all(Path(f"{go}.ready.{number}").exists() for number in range(2)), timeout=30,
             what="both processes at the start line")
    go.touch()
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    paths = {line.split(" ", 1)[1] for output in outputs for line in output.splitlines() if line.startswith("PATH")}
    assert len(paths) == 1 and same_tree(data, Path(paths.pop()))
    assert [event["event"] for event in downloads(cache_root)] == ["download"]
    assert sum("waiting for another process" in output for output in outputs) == 1, outputs


def test_a_damaged_cached_file_is_fetched_again(gcs, photos, cache_root):
    _, bucket = gcs
    uri = f"gs://{bucket}/data/photos"
    push(photos, uri, out=lambda line: None)
    copy = fetch(uri, cache_root)
    damaged = copy / "light" / "003.png"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    damaged.write_bytes(bytes(data))
    assert fetch(uri, cache_root) == copy
    assert same_tree(photos, copy)
    assert [(event["event"], event["files"]) for event in downloads(cache_root)] == [("download", 12), ("repair", 1)]


def test_a_killed_download_is_never_used(gcs, tmp_path, cache_root):
    _, bucket = gcs
    data = write_image_folder(tmp_path / "many", per_class=600, size=8)
    uri = f"gs://{bucket}/data/many"
    push(data, uri, out=lambda line: None)
    go = tmp_path / "go"
    go.touch()
    process = start_fetch(uri, cache_root, go)
    partial = cache_root / "partial"

    def some_files_arrived():
        return partial.is_dir() and sum(1 for _ in partial.rglob("*.png")) >= 20

    wait_for(some_files_arrived, timeout=30, what="the download to start", interval=0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert sum(1 for _ in partial.rglob("*.png")) < 1200, "the download finished before it was killed"
    assert list((cache_root / "entries").iterdir()) == []  # nothing that looks complete
    assert downloads(cache_root) == []
    copy = fetch(uri, cache_root)
    assert same_tree(data, copy)
    assert list(partial.iterdir()) == []  # the killed one's folder is gone


def test_a_changed_object_is_fetched_again_and_the_unchanged_ones_are_reused(gcs, photos, cache_root):
    _, bucket = gcs
    uri = f"gs://{bucket}/data/photos"
    push(photos, uri, out=lambda line: None)
    first = fetch(uri, cache_root)
    before = (photos / "dark" / "002.png").read_bytes()
    (photos / "dark" / "002.png").write_bytes((photos / "light" / "002.png").read_bytes())
    push(photos, uri, out=lambda line: None)
    second = fetch(uri, cache_root)
    assert second != first and same_tree(photos, second)
    # Only the changed object came from the bucket; the others were linked from the first copy, which still holds
    # what it held (a job still reading it sees no change).
    files = len(list(photos.rglob("*.png")))
    assert [(event["event"], event["files"], event["reused"]) for event in downloads(cache_root)] == [
        ("download", files, 0), ("download", 1, files - 1)]
    assert (second / "light" / "001.png").stat().st_nlink == 2
    assert (first / "dark" / "002.png").read_bytes() == before != (second / "dark" / "002.png").read_bytes()
    assert all((first / name).read_bytes() == (photos / name).read_bytes()
               for name in ("light/001.png", "light/002.png", "dark/001.png"))


def test_the_least_recently_used_entry_not_in_use_is_evicted(gcs, tmp_path, cache_root):
    _, bucket = gcs
    sets = {}
    for name in ("a", "b", "c"):
        folder = write_image_folder(tmp_path / name, per_class=4, size=8)
        sets[name] = f"gs://{bucket}/data/{name}"
        push(folder, sets[name], out=lambda line: None)
    size = list_input("data.path", sets["a"], True).size
    limit = int(2.5 * size)  # room for two of the three
    a = fetch(sets["a"], cache_root, limit=limit)
    DataCache.release_all()  # the job that used `a` ended
    b = fetch(sets["b"], cache_root, limit=limit)  # in use from here on
    os.utime(a.parent / "used", (time.time() - 60, time.time() - 60))
    lines: list[str] = []
    c = DataCache(cache_root, limit=limit, log=lines.append).fetch(list_input("data.path", sets["c"], True, fresh=True))
    assert not a.exists() and b.is_dir() and c.is_dir()
    assert any("evicted" in line for line in lines), lines
    # Over the limit, every entry in use: nothing is evicted and the download still happens, with a note.
    lines.clear()
    d = DataCache(cache_root, limit=size, log=lines.append).fetch(list_input("data.path", sets["a"], True, fresh=True))
    assert b.is_dir() and c.is_dir() and d.is_dir()
    assert any("over its limit" in line for line in lines), lines
