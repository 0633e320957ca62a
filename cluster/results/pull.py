"""`python launch.py pull`: list the sweeps in a store, download the best trial's model (or the top k).

    python launch.py pull --list gs://my-bucket/experiments              # sweeps, their trials, best metric
    python launch.py pull gs://my-bucket/experiments/SWEEP --to ./best   # best model + config + metrics
    python launch.py pull gs://my-bucket/experiments/SWEEP --top 3 --to ./top

The command line only: pull_listing.py lists, pull_download.py downloads (checked in a staging folder, then
installed all at once by pull_install.py, or not at all).
"""

from __future__ import annotations

import argparse
import sys

from cluster.results.pull_download import MODEL_FILE, PullRefused, pull_command
from cluster.results.pull_listing import list_command, list_sweeps_in
from cluster.results.pull_paths import safe_join, split_sweep_uri
from cluster.store import StorageError

# The names callers and tests import from here, wherever they are defined.
__all__ = ["EPILOG", "MODEL_FILE", "PullRefused", "build_parser", "list_command", "list_sweeps_in", "main",
           "pull_command", "safe_join", "split_sweep_uri"]

EPILOG = """\
Files of one trial: best.keras (its best checkpoint), resolved_config.yaml, metrics.json (once the trial
finished), best.json (metric value, epoch, checksums), and with --tensorboard its event files. --top 1
(default) puts them in DIR; --top K puts each trial's in DIR/<trial>/. A sweep still running (no best.json
at its top yet) is ranked from its trials' own best.json records.
Everything is downloaded and checked (checksums, the safe-mode load) in a staging folder beside DIR, outside
it, and moved into DIR only once all of it passed: a refused pull leaves DIR exactly as it was.
Exit status: 0 done, 1 a download or check failed (DIR left as it was), 2 bad arguments."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py pull",
        description="List sweeps in a store (local folder or gs://bucket/prefix) or download a sweep's best model(s).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("uri", help="with --list: the store (storage.uri) or one sweep in it; otherwise STORE/SWEEP")
    parser.add_argument("--list", action="store_true", help="list sweeps, their trials and best metric values")
    parser.add_argument("--to", metavar="DIR",
                        help="target folder (created if missing, once every check passed); required unless --list")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="download the K best trials (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist in DIR")
    parser.add_argument("--tensorboard", action="store_true", help="also download the trials' TensorBoard event files")
    parser.add_argument("--no-load-check", dest="load_check", action="store_false",
                        help="skip loading the model with keras.models.load_model(safe_mode=True)")
    parser.add_argument("--keep-staging", action="store_true",
                        help="when a check refuses the pull, keep the files downloaded so far in the staging folder "
                             "(outside DIR: beside it, or in the system's temporary folder if nothing beside it is "
                             "writable; its path is printed) instead of deleting it")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be at least 1, received {args.top}")
    if not args.list and not args.to:
        parser.error("--to DIR is required to download (or pass --list to list sweeps)")
    try:
        if args.list:
            return list_command(args.uri)
        return pull_command(args.uri, args.to, args.top, args.overwrite, args.tensorboard, args.load_check,
                            args.keep_staging)
    except (StorageError, FileExistsError, ValueError) as error:
        print(f"pull: error: {error}", file=sys.stderr)
        return 1
