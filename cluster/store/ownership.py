"""Which sweep writes to `<uri>/<sweep>/`: claimed once, so two sweeps never mix their trials' files.

Sweep names come from folder names (`<date>_<time>`, or the last part of `hydra.sweep.dir`), so two
sweeps started in the same second on two machines, or two `hydra.sweep.dir=.../lr_search` folders, would
share one name in the store. The first one to start claims the name: `<uri>/<sweep>/owner.json` holds a
random sweep id, written only if absent (compare-and-swap), and the sweep's own folder keeps that id in
`store.json`, so the same sweep resumed later (same folder) finds its claim; any other is refused
before it trains. A sweep resumed in a folder without `store.json` (its machine and disk gone) takes the
claim over from the store (adopt_claim), once its caller has proved there that it is the same sweep.

    sweep_id = claim_sweep(store, "2026-12-01_10-00-00", Path("multirun/2026-12-01/10-00-00"))
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Optional

from cluster.store import layout
from cluster.store.base import Store
from cluster.store.errors import PreconditionFailed, StorageError
from cluster.store.pointers import read_json

# In the sweep's (or single run's) own folder: which store and sweep id its results go to.
LOCAL_MARKER = "store.json"


class SweepNameTaken(StorageError):
    """Another sweep already writes under this name in the store."""


def _local_claim(folder: Path, store: Store, sweep: str) -> str:
    """The sweep id recorded in `folder`, or a new one recorded there now (exclusive create: parallel
    jobs of one multirun agree on one id)."""
    marker = folder / LOCAL_MARKER
    folder.mkdir(parents=True, exist_ok=True)
    record = {"uri": str(store.uri), "sweep": sweep, "sweep_id": uuid.uuid4().hex}
    try:
        with open(marker, "x") as handle:
            json.dump(record, handle, indent=1)
        return record["sweep_id"]
    except FileExistsError:
        pass
    for _ in range(50):  # another process may be writing it right now
        try:
            found = json.loads(marker.read_text())
            if found.get("uri") == str(store.uri) and found.get("sweep") == sweep:
                return found["sweep_id"]
            # The folder's results went to another store before: this store gets a sweep of its own.
            return record["sweep_id"]
        except (ValueError, KeyError):
            time.sleep(0.1)
    raise StorageError(f"{marker} is unreadable; delete it to start this sweep's uploads afresh.")


def owner_of(store: Store, sweep: str) -> Optional[dict]:
    """The claim on `<uri>/<sweep>/` (its sweep_id, folder, host, ...), None when nobody claimed it."""
    owner, _ = read_json(store, layout.sweep_key(sweep, layout.OWNER))
    return owner


def adopt_claim(store: Store, sweep: str, folder: Path, sweep_id: str) -> str:
    """Record in `folder` (replacing any store.json there) the claim `owner.json` holds, so that this folder
    continues that sweep's uploads. Call it only once the store proved that `folder` runs the sweep that
    claimed the name (e.g. the same spec in its driver state): this takes the name over. Raises SweepNameTaken
    when the store's claim is not `sweep_id` (claimed by another sweep meanwhile, or never)."""
    owner = owner_of(store, sweep)
    if owner is None or owner.get("sweep_id") != sweep_id:
        raise SweepNameTaken(f"{store.uri}/{sweep}: its claim is {owner and owner.get('sweep_id')!r}, not "
                             f"{sweep_id!r}; the sweep in this folder cannot take it over.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / LOCAL_MARKER
    staging = marker.with_name(f".{LOCAL_MARKER}.{uuid.uuid4().hex}")
    staging.write_text(json.dumps({"uri": str(store.uri), "sweep": sweep, "sweep_id": sweep_id,
                                   "adopted_from": owner}, indent=1))
    os.replace(staging, marker)
    return sweep_id


def claim_sweep(store: Store, sweep: str, folder: Path) -> str:
    """Return this sweep's id, claiming `<uri>/<sweep>/` for it if nobody has. Raises SweepNameTaken
    (before any training) when another sweep owns that name."""
    folder = Path(folder)
    sweep_id = _local_claim(folder, store, sweep)
    key = layout.sweep_key(sweep, layout.OWNER)
    claim = {"sweep_id": sweep_id, "folder": str(folder.absolute()), "host": socket.gethostname(),
             "pid": os.getpid(), "claimed_at": time.time()}
    for _ in range(3):
        owner, _ = read_json(store, key)
        if owner is None:
            try:
                store.write_bytes(key, json.dumps(claim, indent=1).encode(), if_generation_match=0)
                return sweep_id
            except PreconditionFailed:
                continue  # claimed meanwhile: read whose it is
        if owner.get("sweep_id") == sweep_id:
            return sweep_id
        raise SweepNameTaken(
            f"{store.uri}/{sweep} already holds another sweep's results (started from {owner.get('folder')} on "
            f"{owner.get('host')}). Give this one another folder name (e.g. hydra.sweep.dir=multirun/my-sweep-2, "
            f"or hydra.run.dir for a single run) or another storage.uri prefix; to resume that sweep, rerun its "
            f"own command (the same overrides): from its folder, or from anywhere once its driver state is in "
            f"{store.uri}/{layout.driver_key(sweep)}/."
        )
    raise StorageError(f"{store.uri}/{key}: could not be claimed after 3 attempts (concurrent writers).")
