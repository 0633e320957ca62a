"""`python launch.py jobs`: the sweeps submitted to a Ray cluster (list, follow their output, stop them).

    python launch.py jobs                               # list (address: --address, else RAY_ADDRESS=http://...)
    python launch.py jobs logs raylaunch-2026-12-01_10-00-00-ab12cd --follow
    python launch.py jobs stop raylaunch-2026-12-01_10-00-00-ab12cd
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from cluster.submission.submit import METADATA_KEY, SubmitError, client_for, follow, submission_address

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python launch.py jobs",
        description="Sweeps submitted to a Ray cluster through Ray Jobs (hydra.launcher.submit=URL).",
        epilog="The address: --address, else an http:// RAY_API_SERVER_ADDRESS or RAY_ADDRESS, else "
               f"{DEFAULT_ADDRESS} (the head's dashboard through `ray dashboard CLUSTER.yaml`). The Ray token is "
               "read from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.",
    )
    address_help = f"the cluster's Jobs API (default: see below, or {DEFAULT_ADDRESS})"
    parser.add_argument("--address", help=address_help)
    # Also after the subcommand, where `ray job logs ID --address URL` users put it; SUPPRESS keeps the
    # subcommand from overwriting an --address given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--address", default=argparse.SUPPRESS, help=address_help)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("list", parents=[after], help="submitted sweeps, newest first (the default)")
    logs = commands.add_parser("logs", parents=[after], help="a sweep's output (its progress view and leaderboard)")
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep printing until the sweep ends (Ctrl-C detaches)")
    stop = commands.add_parser("stop", parents=[after], help="stop a sweep: its driver and every trial, on every node")
    stop.add_argument("job_id")
    return parser.parse_args(argv)


def _list(client) -> int:
    jobs = [job for job in client.list_jobs() if METADATA_KEY in (job.metadata or {})]
    if not jobs:
        print("No sweeps submitted to this cluster.")
        return 0
    for job in sorted(jobs, key=lambda job: job.start_time or 0, reverse=True):
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime((job.start_time or 0) / 1000))
        print(f"{job.submission_id}  {job.status.value:<9}  started {started}  sweep {job.metadata[METADATA_KEY]}  "
              f"results {job.metadata.get('storage', '-')}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    address = args.address or submission_address(None) or DEFAULT_ADDRESS
    try:
        client = client_for(address)
        if args.command in (None, "list"):
            return _list(client)
        if args.command == "logs":
            if args.follow:
                try:
                    return follow(client, args.job_id)
                except KeyboardInterrupt:
                    print("\nDetached: the sweep goes on.", file=sys.stderr)
                    return 130
            sys.stdout.write(client.get_job_logs(args.job_id))
            return 0
        stopped = client.stop_job(args.job_id)
        print(f"Stopping {args.job_id}: its driver and trials end within seconds." if stopped
              else f"{args.job_id} had already ended.")
        return 0
    except SubmitError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # e.g. no such job
        print(f"Error: {str(error).splitlines()[0][:300]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.exit(main())
