"""The app's keeper of a sweep's results in its store, reached by name (hydra.launcher.results), so the launcher
imports no app code. The launcher opens it before Ray starts (the store proven writable, the sweep's name
claimed there) and hands it the leaderboard when the last trial ended.

A keeper is a class with:

    check(uris: set, sweep_dir) -> keeper or None   # classmethod; None when every job says storage=null;
                                                    # raises cluster.store.StorageError when it cannot be used
    keeper.uri               the sweep's folder in the store, e.g. gs://bucket/prefix/<sweep>
    keeper.store             the cluster.store.Store it writes to
    keeper.sweep_id          the id that claimed the sweep's name (each trial's record carries it)
    keeper.is_local_folder   whether the store is a folder on this machine
    keeper.trial_books()     {trial folder: {checkpoint: URI or None, finished: bool, trial_id: str}} or None
    keeper.finish(sweep_dir, leaderboard_rows)   the sweep's own objects, written last

cluster.results.sweep.SweepStorage is the one this project's app names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from cluster.launcher.job_configs import SweepRefused
from cluster.launcher.settings import LauncherSettings
from cluster.launcher.sweep_folder import in_ray_package_cache


def open_results(settings: LauncherSettings, uris: set, sweep_dir: Path, storage_key: str) -> Optional[Any]:
    """`uris`: the store each job names (hydra.launcher.storage); `storage_key`: what the user sets it with."""
    from hydra.utils import get_class

    from cluster.store import StorageError

    for uri in uris:
        relative = uri is not None and "://" not in str(uri) and not os.path.isabs(str(uri))
        if relative and in_ray_package_cache(Path.cwd()):
            raise SweepRefused(f"The store {uri} is a relative folder, and this sweep runs as a Ray job in Ray's copy "
                               f"of the checkout, which Ray deletes and no other node can reach. Set {storage_key} to "
                               f"gs://BUCKET/PREFIX, or an absolute folder every node mounts.")
    if uris == {None}:
        return None
    if not settings.results:
        raise SweepRefused(f"{storage_key} is set ({sorted(map(str, uris))}) but hydra.launcher.results names no "
                           f"class to keep the results there (see cluster/launcher/sweep_results.py).")
    try:
        keeper = get_class(settings.results)
    except Exception as error:  # noqa: BLE001 - Hydra says what could not be imported
        raise SweepRefused(f"hydra.launcher.results={settings.results!r} names no class: {error}") from None
    try:
        return keeper.check(uris, sweep_dir)
    except StorageError as error:
        raise SweepRefused(f"Storage error, so no job of this sweep was started: {error}") from error
