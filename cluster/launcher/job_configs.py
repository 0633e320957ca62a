"""Each Hydra job of a sweep composed as the launcher will run it, and checked before anything runs.

What the launcher needs of a job is in that job's own `hydra.launcher` node, which an app fills in by
interpolation (`metric: ${metric}`, `resources: {cpus: ${resources.cpus}}`): so the launcher reads no key
of the app's config, and a model config can still ask its own trials for more GPUs.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional, Sequence

from hydra.core.utils import filter_overrides
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write


class SweepError(CompactHydraException):
    """Some of the sweep's trials failed or were interrupted, or its books do not agree: the sweep ran and did
    not succeed. Hydra prints only the message, no traceback."""


class SweepRefused(SweepError):
    """The sweep cannot start with what it was given (a job's config, the store, the search settings):
    nothing was launched. An app may exit with a status of its own for bad input (this project's: 2)."""


def compose_job(launcher, overrides: Sequence[str], num: int) -> DictConfig:
    """The job's full config (its `hydra` node included), as Hydra's basic launcher would compose it."""
    sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.num = num
        sweep_config.hydra.job.id = str(num)
    return sweep_config


def task_config(sweep_config: DictConfig) -> DictConfig:
    """What the task function receives: the job's config without the `hydra` node."""
    task = copy.deepcopy(sweep_config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def job_label(num: int, overrides: Sequence[str]) -> str:
    return f"#{num} ({' '.join(filter_overrides(overrides)) or 'no overrides'})"


def validator(name: Optional[str]):
    """The app's check of one job config (hydra.launcher.validate: the dotted name of a callable), or None."""
    if not name:
        return None
    from hydra.utils import get_method

    try:
        return get_method(str(name))
    except Exception as error:  # noqa: BLE001 - Hydra says what could not be imported
        raise SweepRefused(f"hydra.launcher.validate={name!r} names no callable: {error}") from None


def launcher_setting(sweep_config: DictConfig, key: str, default: Optional[Any] = None) -> Any:
    """One of the job's own `hydra.launcher` values (resolved against that job's config)."""
    value = OmegaConf.select(sweep_config, f"hydra.launcher.{key}", default=default)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


# `${a.b}` or `${oc.select:a.b,default}`: the app's key a setting is taken from.
_SOURCE = re.compile(r"^\$\{(?:oc\.select:)?([A-Za-z_][\w.]*)(?:,[^}]*)?\}$")


def setting_key(sweep_config: DictConfig, path: str) -> str:
    """The key a user sets `hydra.launcher.<path>` with: the app's own key when the launcher's setting
    interpolates it (so messages name what to change), else `hydra.launcher.<path>`."""
    parent, _, leaf = f"hydra.launcher.{path}".rpartition(".")
    node = OmegaConf.select(sweep_config, parent, default=None)
    raw = OmegaConf.to_container(node, resolve=False).get(leaf) if OmegaConf.is_dict(node) else None
    match = _SOURCE.match(raw) if isinstance(raw, str) else None
    return match.group(1) if match else f"hydra.launcher.{path}"


_INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")
_KEY = re.compile(r"^[A-Za-z_][\w.]*$")


def launcher_references(config: DictConfig) -> Optional[set[str]]:
    """Every key of the config that `hydra.launcher`'s interpolations read, following interpolations
    through the keys they name; None when one cannot be followed (then every value override is relevant)."""
    raw = OmegaConf.to_container(config, resolve=False)

    def at(key: str) -> Any:
        node = raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def strings(node: Any):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)

    found: set[str] = set()
    pending = ["hydra.launcher"]
    while pending:
        for text in strings(at(pending.pop())):
            for inner in _INTERPOLATION.findall(text):
                resolver, _, arguments = inner.partition(":")
                candidates = [part.strip() for part in arguments.split(",")] if arguments else [resolver.strip()]
                for candidate in candidates:
                    if candidate.startswith("."):
                        return None  # relative interpolation: do not guess
                    if _KEY.match(candidate) and candidate not in found:
                        found.add(candidate)
                        pending.append(candidate)
    return found
