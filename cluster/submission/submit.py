"""A sweep submitted from outside the cluster, through Ray Jobs (Ray's supported route; Ray Client is no
longer developed and does not suit Tune).

    python launch.py -m model=cnn,lstm storage.uri=gs://B/exp hydra.launcher.submit=http://127.0.0.1:8265
    RAY_ADDRESS=http://127.0.0.1:8265 python launch.py -m ...          # the same

Before anything is uploaded: every job of the sweep is composed and validated here, the results must go
somewhere the user can reach (a bucket; a folder on the head would sit in Ray's package cache), and the
checkout must fit Ray's upload limit. Then this checkout (launch.py's folder, `.gitignore`/`.rayignore`
honoured) is shipped as the job's working dir, so the cluster runs exactly this code; the command line
is passed on as typed, with the sweep folder moved to `hydra.launcher.cluster_dir` on the head (outside
Ray's package cache) under the same name, so the sweep has the same name in the bucket as here. The
command then follows the job's output; its exit status is the sweep's. Ctrl-C detaches.

Credentials never leave this machine: the cluster uses its nodes' own. The Ray token is read the way
Ray reads it (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token) and is never printed. The only
environment variables the job gets from here are those named in `hydra.launcher.job_env`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from hydra.errors import CompactHydraException

# Never forwarded, even when named: credentials stay where they are (the cluster has its own).
NEVER_FORWARDED = ("GOOGLE_APPLICATION_CREDENTIALS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# What `python launch.py jobs` lists: the sweeps this tool submitted.
METADATA_KEY = "raylaunch_sweep"


# Set while the jobs of a sweep about to be submitted are checked on the submitting machine: a check that cannot
# reach something here (no credentials, no permission) says nothing of the cluster's nodes, whose driver checks
# again before any trial starts.
_checking_before_submission = contextvars.ContextVar("checking_before_submission", default=False)


@contextlib.contextmanager
def checking_before_submission():
    token = _checking_before_submission.set(True)
    try:
        yield
    finally:
        _checking_before_submission.reset(token)


def is_checking_before_submission() -> bool:
    """Whether the app's job check runs on the submitting machine, not where the jobs will run."""
    return _checking_before_submission.get()


class SubmitError(CompactHydraException):
    """The sweep cannot be submitted (nothing was uploaded)."""


def submission_address(configured: Optional[str]) -> Optional[str]:
    """hydra.launcher.submit, else an http(s) address in RAY_API_SERVER_ADDRESS or RAY_ADDRESS (ray.init
    cannot attach to one: it is a dashboard, the Jobs API). None: run the sweep from this process."""
    if configured:
        return configured
    for variable in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(variable, "")
        if value.startswith(("http://", "https://")):
            return value
    return None


def enable_token_auth() -> None:
    """Ray's Jobs client sends the token only when RAY_AUTH_MODE=token. When a token is where Ray looks
    for one, turn that on for this process, so the user need not export it for every command."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def client_for(address: str):
    """A Jobs client, or a one-line SubmitError (no cluster there, no token, a wrong token)."""
    enable_token_auth()
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except AuthenticationError as error:
        raise SubmitError(auth_message(address, str(error))) from None
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise SubmitError(f"No Ray Jobs API answers at {address} ({str(error).splitlines()[0][:200]}). Open the "
                          f"tunnel to the head first (`ray dashboard cluster/gcp-gpu.yaml` or `kubectl port-forward "
                          f"svc/raylaunch-head-svc 8265:8265`) and submit to http://127.0.0.1:8265.") from None


def auth_message(address: str, error: str) -> str:
    """One line for Ray's multi-line authentication errors (HTTP 403: a token that is not the cluster's)."""
    if "invalid" in error.lower() or "Forbidden" in error:
        return (f"The Ray cluster at {address} refused the token found here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                f"~/.ray/auth_token): it is not this cluster's.")
    return (f"The Ray cluster at {address} requires its token and none was found here: set RAY_AUTH_TOKEN or "
            f"RAY_AUTH_TOKEN_PATH, or put the cluster's token in ~/.ray/auth_token.")


# ---------------------------------------------------------------- what is shipped
def entry_script() -> Path:
    """The script that started this process (the app's, e.g. launch.py)."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if not script:
        raise SubmitError("Submitting needs the app started as a script (python SCRIPT.py -m ...), not from an "
                          "interactive session.")
    return Path(script).resolve()


def project_dir() -> Path:
    """The checkout to ship: the folder of the script that started."""
    return entry_script().parent


def app_command() -> str:
    """How this app is started, as typed in its checkout: `python <script>`."""
    return f"python {shlex.quote(entry_script().name)}"


def package_size(directory: Path) -> tuple[int, list[tuple[int, str]]]:
    """Bytes Ray would upload from `directory` (its own exclusion rules: defaults, .gitignore,
    .rayignore) and the largest top-level entries, for a message on what to exclude."""
    from cluster.private_apis import package_files

    sizes: dict[str, int] = {}

    def count(path: Path) -> None:
        if path.is_file():
            top = path.relative_to(directory).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size

    package_files(directory, count)
    return sum(sizes.values()), sorted(((size, name) for name, size in sizes.items()), reverse=True)


def check_package_size(directory: Path) -> int:
    from cluster.private_apis import max_package_bytes

    limit = max_package_bytes()
    total, largest = package_size(directory)
    if total >= limit:
        biggest = ", ".join(f"{name} ({size / 2**20:.0f} MiB)" for size, name in largest[:5])
        raise SubmitError(
            f"{directory} holds {total / 2**20:.0f} MiB to upload, over Ray's limit of {limit / 2**20:.0f} "
            f"MiB for a job's working dir. Largest: {biggest}. List what the cluster does not need (data, "
            f"checkpoints, outputs) in {directory / '.rayignore'} (or .gitignore); data belongs in a bucket."
        )
    return total


def check_results_reachable(uris: set, address: str, key: str = "hydra.launcher.storage") -> None:
    """Refuse stores that would leave the results on the cluster's disks. `key`: what the user sets the
    store with (named in the messages)."""
    from cluster.store import StorageError, parse_uri

    for uri in uris:
        if uri is None:
            raise SubmitError(f"Not submitted to {address}: with {key}=null the sweep's checkpoints and logs would "
                              f"stay on the cluster's disks. Set {key}=gs://BUCKET/PREFIX (the cluster's nodes "
                              f"use their own credentials).")
        if str(uri).startswith("gs://"):
            try:
                parse_uri(str(uri))
            except StorageError as error:
                raise SubmitError(str(error)) from None
            _refuse_a_missing_bucket(str(uri), address)
            continue
        if not os.path.isabs(str(uri).removeprefix("file://")):
            raise SubmitError(
                f"Not submitted to {address}: with {key}={uri} a relative folder would be inside the job's copy "
                f"of this checkout on the head node, which Ray deletes, and no other node could reach it. Set "
                f"{key}=gs://BUCKET/PREFIX (the cluster's nodes use their own credentials; none are sent from "
                f"here), or an absolute folder every node mounts."
            )


def _refuse_a_missing_bucket(uri: str, address: str) -> None:
    """With credentials here, a bucket that does not exist is refused before anything is uploaded (else the
    cluster finds out after its start-up). A read only: this machine may lack the write permission the
    cluster's nodes have; no credentials or no permission here says nothing about the cluster's."""
    from cluster.store import StorageError, open_store
    from cluster.store.errors import BucketMissing

    try:
        open_store(uri, request_timeout=10, retry_deadline=10).list_dirs("")
    except BucketMissing as error:
        raise SubmitError(f"Not submitted to {address}: {error}") from None
    except StorageError:
        return


def forwarded_env(names: Sequence[str]) -> dict[str, str]:
    refused = sorted(set(names) & set(NEVER_FORWARDED))
    if refused:
        raise SubmitError(f"hydra.launcher.job_env names {refused}: credentials are never sent to the cluster, which "
                          f"uses its own (application-default credentials of its nodes, its own Ray token).")
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise SubmitError(f"hydra.launcher.job_env names {missing}, which are not set here.")
    return {name: os.environ[name] for name in names}


# ---------------------------------------------------------------- the command run on the cluster
def cluster_command(argv: Sequence[str], sweep_dir: str, cluster_dir: str, app: str = "") -> str:
    """The job's entrypoint: this command line as typed (quoted for the job's shell), without the
    submission, with the sweep folder under `cluster_dir` on the head. A relative sweep folder keeps its
    path below it (same name in the store); an absolute one keeps its last two parts (`<date>/<time>`).
    `app`: how the app starts (default: app_command())."""
    kept = [arg for arg in argv if not arg.startswith(("hydra.launcher.submit=", "hydra.sweep.dir="))]
    relative = Path(sweep_dir)
    if relative.is_absolute():
        relative = Path(*relative.parts[-2:])
    root = cluster_dir.rstrip("/")
    # "$HOME" is expanded by the job's shell on the head, where the sweep runs.
    root = '"$HOME"' + shlex.quote(root[1:]) if root.startswith("~") else shlex.quote(root)
    return " ".join([
        app or app_command(), *(shlex.quote(arg) for arg in kept),
        f"hydra.sweep.dir={root}/{shlex.quote(str(relative))}", "hydra.launcher.submit=null",
    ])


def submit(address: str, command: str, sweep_name: str, env: dict, metadata: dict) -> tuple[object, str]:
    """Upload the checkout and start the job; returns (client, submission id)."""
    directory = project_dir()
    size = check_package_size(directory)
    client = client_for(address)
    submission_id = f"raylaunch-{sweep_name}-{secrets.token_hex(3)}".replace("_", "-")
    print(f"Submitting to {address}: this checkout ({directory}, {size / 2**20:.1f} MiB before compression)",
          flush=True)
    from ray.exceptions import AuthenticationError

    try:
        client.submit_job(
            entrypoint=command,
            submission_id=submission_id,
            runtime_env={"working_dir": str(directory), "env_vars": {"PYTHONUNBUFFERED": "1", **env}},
            metadata={METADATA_KEY: sweep_name, **metadata},
        )
    except AuthenticationError as error:
        raise SubmitError(auth_message(address, str(error))) from None
    except RuntimeError as error:
        raise SubmitError(f"The cluster at {address} refused the job: {str(error)[:500]}") from None
    return client, submission_id


def follow(client, submission_id: str) -> int:
    """Print the job's output until it ends; return its exit status (the sweep's)."""
    async def stream() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    asyncio.run(stream())
    return exit_status(client, submission_id)


def exit_status(client, submission_id: str) -> int:
    from ray.job_submission import JobStatus

    info = client.get_job_info(submission_id)
    if info.driver_exit_code is not None:
        return int(info.driver_exit_code)
    return 0 if info.status == JobStatus.SUCCEEDED else 1


def follow_hint(submission_id: str) -> str:
    app = app_command()
    return f"Follow it: {app} jobs logs {submission_id} --follow    Stop it: {app} jobs stop {submission_id}"


# ---------------------------------------------------------------- from the launcher
@dataclass(frozen=True)
class SweepToShip:
    """A sweep the launcher checked (every job composed and validated), as submission needs it."""

    address: str
    argv: list  # the command line as typed, after the script's name
    sweep_dir: str
    cluster_dir: str  # hydra.launcher.cluster_dir
    job_env: list  # hydra.launcher.job_env
    stores: set  # each job's hydra.launcher.storage
    storage_key: str  # what the user sets the store with, named in messages
    num_jobs: int
    watch_line: Callable[[str], str]  # how to watch the sweep, given its URI or folder


def ship_sweep(sweep: SweepToShip) -> None:
    """Refuse stores the user could not reach, ship the checkout, follow the job; exits with the sweep's status."""
    from cluster.store.layout import sweep_name_of

    check_results_reachable(sweep.stores, sweep.address, sweep.storage_key)
    env = forwarded_env(list(sweep.job_env))
    sweep_name = sweep_name_of(sweep.sweep_dir)
    command = cluster_command(sweep.argv, sweep.sweep_dir, sweep.cluster_dir)
    store = str(next(iter(sweep.stores))).rstrip("/")
    client, submission_id = submit(sweep.address, command, sweep_name, env, {"storage": store})
    print(f"Submitted sweep {sweep_name} ({sweep.num_jobs} job(s) checked here) as job {submission_id}\n"
          f"Dashboard: {sweep.address.rstrip('/')}/#/jobs/{submission_id}\n"
          f"{sweep.watch_line(f'{store}/{sweep_name}' if store.startswith('gs://') else store)}\n"
          f"{follow_hint(submission_id)}\n", flush=True)
    try:
        status = follow(client, submission_id)
    except KeyboardInterrupt:
        print(f"\nDetached: the sweep goes on on the cluster. {follow_hint(submission_id)}", file=sys.stderr,
              flush=True)
        sys.exit(130)
    if status != 0:
        print(f"The sweep's job {submission_id} ended with status {status}.", file=sys.stderr, flush=True)
    sys.exit(status)
