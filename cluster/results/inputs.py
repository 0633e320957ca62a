"""Inputs read from a bucket: `data.path=gs://...` (every data set read from a file or folder, and the offline
.npz of the keras.datasets kinds) and `model.weights=gs://...` (model=transfer), with the credentials of
storage.uri (application-default; STORAGE_EMULATOR_HOST in tests).

The trainers never see a bucket. The app checks each URI before anything starts (`validate_job`, the sweep's
hydra.launcher.validate: the driver checks every job before Ray starts) and, in the job, swaps each URI for the
node's local copy (`local_inputs`, through cluster/results/data_cache.py) before training.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from typing import Optional

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from cluster.results.data_cache import DataCache, Listing, RemoteFile
from cluster.store import StorageError, parse_uri
from cluster.store.errors import BucketMissing
from cluster.store.uri import StorageURI
from cluster.submission.submit import is_checking_before_submission
from trainers.class_folders import IMAGE_EXTENSIONS, TEXT_EXTENSIONS
from trainers.csv_files import header_of
from trainers.schema import TFRECORD_GLOB_FIELDS, ConfigError, glob_matching
from trainers.schema import validate_job as validate_trainer_job

SCHEME = "gs://"
# Data sets whose data.path is a folder of class sub-folders, and the files each class folder must hold.
FOLDERS = {"image_folder": IMAGE_EXTENSIONS, "text_folder": TEXT_EXTENSIONS, "imdb_text": TEXT_EXTENSIONS}
CSV_KINDS = ("csv", "timeseries")
# data=tfrecord: data.path is a prefix; data.files (and val_files, test_files) pick files in it, and only those are
# downloaded (a prefix often holds other splits or the raw data the records were made from).
GLOBBED = ("tfrecord",)
HEADER_BYTES = 1 << 16  # the header of a CSV is read from its first 64 KiB
PUSH_HINT = "python launch.py push LOCAL_FOLDER_OR_FILE {uri}"

# Listings made in this process, by URI: a sweep's driver validates many jobs with the same data.path.
_listings: dict[tuple[str, bool], Listing] = {}


def is_bucket_uri(value) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def bucket_inputs(cfg: DictConfig) -> list[tuple[str, str, bool]]:
    """(config key, URI, is a folder) of every input of the job that names a bucket."""
    found = []
    data = cfg.get("data")
    if data is not None and is_bucket_uri(data.get("path")):
        found.append(("data.path", data.path, data.name in FOLDERS or data.name in GLOBBED))
    model = cfg.get("model")
    if model is not None and is_bucket_uri(model.get("weights")):
        found.append(("model.weights", model.weights, False))
    return found


def validate_job(cfg: DictConfig) -> None:
    """The app's check of one job (hydra.launcher.validate, and launch.py before anything starts): the
    trainers' own validation (which leaves bucket URIs alone), then every bucket input: it exists, can be read,
    and has the shape its loader needs. Raises ConfigError naming the URI and the fix."""
    validate_trainer_job(cfg)
    for key, uri, is_folder in bucket_inputs(cfg):
        listing = list_input(key, uri, is_folder)
        if listing is None:
            continue
        if key == "data.path" and cfg.data.name in FOLDERS:
            _check_class_folders(listing, cfg.data)
        if key == "data.path" and cfg.data.name in CSV_KINDS:
            _check_csv_header(listing, cfg.data)
        if key == "data.path" and cfg.data.name in GLOBBED:
            _check_globs(listing, cfg.data)


def local_inputs(cfg: DictConfig, cache: Optional[DataCache] = None) -> DictConfig:
    """A copy of `cfg` with each bucket input replaced by this node's local copy (downloaded once per node);
    `cfg` itself keeps the URIs (what resolved_config.yaml records). The same object when nothing names a bucket."""
    inputs = bucket_inputs(cfg)
    if not inputs:
        return cfg
    cache = cache or DataCache.on_this_node()
    local = copy.deepcopy(cfg)
    with read_write(local), open_dict(local):
        for key, uri, is_folder in inputs:
            listing = list_input(key, uri, is_folder, fresh=True)
            if key == "data.path" and cfg.data.name in GLOBBED:
                listing = _globbed_files_only(listing, cfg.data)
            path = cache.fetch(listing)
            OmegaConf.update(local, key, str(path))
    return local


def list_input(key: str, uri: str, is_folder: bool, fresh: bool = False) -> Optional[Listing]:
    """The objects behind one input URI: one object, or every object under a folder-like prefix. None only while
    a sweep is checked before submission on a machine that cannot read the bucket (the cluster checks it)."""
    if not fresh and (uri, is_folder) in _listings:
        return _listings[(uri, is_folder)]
    try:
        parsed = parse_uri(uri)
    except StorageError as error:
        raise ConfigError(f"{key}={uri}: {error}") from None
    from cluster.store.gcs import GCSStore

    try:
        infos = GCSStore(StorageURI("gs", parsed.bucket, ""), read_only=True).list(parsed.prefix)
    except BucketMissing as error:
        raise ConfigError(f"{key}={uri} cannot be read: {error}") from None
    except StorageError as error:
        if is_checking_before_submission():  # this machine's credentials say nothing of the cluster's
            print(f"[raylaunch] {key}={uri} not checked here ({error}); the sweep's driver on the cluster checks "
                  "it before any trial starts.", file=sys.stderr, flush=True)
            return None
        raise ConfigError(f"{key}={uri} cannot be read: {error}") from None
    name = parsed.prefix
    exact = [info for info in infos if info.key == name]
    below = [info for info in infos if name == "" or info.key.startswith(name + "/")]
    below = [info for info in below if not info.key.endswith("/")]  # "folder" placeholder objects
    if is_folder:
        if not below:
            raise ConfigError(_nothing_there(key, uri, "a folder (objects under this prefix)"))
        files = [_remote(info, info.key[len(name) + 1:] if name else info.key) for info in below]
    else:
        if not exact:
            what = "a folder, not one object" if below else "no such object"
            raise ConfigError(_nothing_there(key, uri, "one object (a file)", what))
        files = [_remote(exact[0], name.rsplit("/", 1)[-1])]
    for file in files:
        parts = file.relative.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\\" in file.relative:
            raise ConfigError(f"{key}={uri}: refusing the object name gs://{parsed.bucket}/{file.name} (empty, '.' "
                              "or '..' parts cannot be copied to a local folder). Rename it.")
    listing = Listing(str(parsed), parsed.bucket, is_folder, tuple(files))
    _listings[(uri, is_folder)] = listing
    return listing


def _remote(info, relative: str) -> RemoteFile:
    return RemoteFile(info.key, relative, info.size, info.crc32c, info.md5, info.generation)


def _nothing_there(key: str, uri: str, expected: str, found: str = "no objects at or under it") -> str:
    return (f"{key}={uri}: {found}; expected {expected}. Check the name (`gcloud storage ls {uri}`), or upload the "
            f"data first: `{PUSH_HINT.format(uri=uri)}`.")


def _check_class_folders(listing: Listing, data) -> None:
    """What trainers/class_folders.py would refuse, from the listing alone: too few class folders, a class folder
    without files of the kind the loader reads."""
    extensions = FOLDERS[data.name]
    roots = [""]
    tops = {file.relative.split("/", 1)[0] for file in listing.files if "/" in file.relative}
    if {"train", "test"} <= tops:
        roots = ["train/", "test/"]
    for root in roots:
        classes: dict[str, int] = {}
        for file in listing.files:
            if file.relative.startswith(root) and "/" in file.relative[len(root):]:
                name = file.relative[len(root):].split("/", 1)[0]
                classes[name] = classes.get(name, 0) + file.relative.lower().endswith(extensions)
        wanted = list(data.class_names) if data.get("class_names") else sorted(classes)
        where = f"{listing.uri}/{root}".rstrip("/")
        if not data.get("class_names") and len(wanted) < 2:
            raise ConfigError(f"data.path={listing.uri}: {where} has {len(wanted)} class sub-folder(s) "
                              f"({', '.join(wanted) or 'none'}); expected one sub-folder per class, at least two, "
                              f"e.g. {where}/cat/1{extensions[0]} and {where}/dog/1{extensions[0]}.")
        for name in wanted:
            if not classes.get(name):
                found = "no such sub-folder" if name not in classes else f"no {'/'.join(extensions)} files in it"
                raise ConfigError(f"Empty class folder {where}/{name}: {found}. Add examples of class {name!r} "
                                  f"(`{PUSH_HINT.format(uri=listing.uri)}`) or list the classes to use in "
                                  "data.class_names.")


def _check_globs(listing: Listing, data) -> None:
    """data=tfrecord: each of data.files, val_files, test_files matches objects under the prefix (as the trainers
    match them against the node's copy)."""
    relatives = [file.relative for file in listing.files]
    for key in TFRECORD_GLOB_FIELDS:
        pattern = data.get(key)
        if pattern is not None and not glob_matching(relatives, pattern):
            names = ", ".join(sorted(relatives)[:8]) + (f" and {len(relatives) - 8} more" if len(relatives) > 8 else "")
            raise ConfigError(f"Invalid value for `data.{key}`: received {pattern!r}, which matches no object under "
                              f"{listing.uri}. Allowed: a glob relative to data.path matching TFRecord files; the "
                              f"prefix holds {names}. Fix the glob, or upload the files: "
                              f"`{PUSH_HINT.format(uri=listing.uri)}`.")


def _globbed_files_only(listing: Listing, data) -> Listing:
    """The part of a prefix that data.files, val_files and test_files match: what the job reads. Another set of
    globs on the same prefix is another cache entry."""
    relatives = [file.relative for file in listing.files]
    wanted = {relative for key in TFRECORD_GLOB_FIELDS if data.get(key) is not None
              for relative in glob_matching(relatives, data.get(key))}
    return dataclasses.replace(listing, files=tuple(file for file in listing.files if file.relative in wanted))


def _check_csv_header(listing: Listing, data) -> None:
    """The target column(s) must be in the CSV's header, read from the object's first bytes."""
    from cluster.store.gcs import make_client

    file = listing.files[0]
    blob = make_client().bucket(listing.bucket).blob(file.name, generation=file.generation)
    try:
        head = blob.download_as_bytes(start=0, end=min(file.size, HEADER_BYTES) - 1) if file.size else b""
    except Exception as error:  # noqa: BLE001 - any failure to read is reported with the URI
        raise ConfigError(f"data.path={listing.uri} cannot be read: {type(error).__name__}: {str(error)[:300]}") \
            from None
    text = head.decode("utf-8-sig", errors="replace")
    if file.size > HEADER_BYTES:
        text = text.rsplit("\n", 1)[0]  # a line cut off at the read's end would spoil the delimiter's detection
    if not text.strip():
        raise ConfigError(f"data.path={listing.uri} is empty; expected a CSV file with a header row.")
    header = header_of(text, data.get("delimiter"))  # split by the delimiter the job will read it with
    targets = data.target if OmegaConf.is_list(data.target) else ([data.target] if data.target is not None else [])
    if not targets and data.name == "csv":
        raise ConfigError(f"data=csv needs data.target, the column to predict. Columns in {listing.uri}: "
                          f"{', '.join(header)}.")
    missing = [str(name) for name in targets if str(name) not in header]
    if missing:
        raise ConfigError(f"data.target={','.join(missing)}: no such column in {listing.uri}. Columns: "
                          f"{', '.join(header)}. Fix data.target, or push the right file.")
