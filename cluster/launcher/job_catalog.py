"""Every job of a sweep checked before anything runs, at a cost that does not grow with the number of jobs
sharing the same config-group choices.

Hydra composes a job in about 0.2 s (its defaults tree, files, schemas); a 1,000-job grid composed job by
job waits minutes before its first trial. But a job's overrides are of two kinds: config-group choices
(`model=cnn`, which change what is composed) and values (`lr=0.01`, set on the composed config). So:

- one representative job per distinct combination of group choices is composed in full, as the launcher
  will run it, and checked by the app's validator (hydra.launcher.validate) and its `hydra.launcher` resolved;
- every distinct value override is checked once per combination: swapped into that combination's
  representative (a copy of its config, the override applied as Hydra applies it), then validated;
- a job's `hydra.launcher` settings (resources, metric, storage) are its representative's, unless the job
  sets a key those settings interpolate (`resources.gpus=2`): then that variant is built once and cached.

A value that is only wrong in combination with another value (each one right on its own) is not caught
here: its trial fails when it starts, with the app's message in its trial.log.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from cluster.launcher.job_configs import (
    SweepError,
    SweepRefused,
    compose_job,
    job_label,
    launcher_references,
    validator,
)
from cluster.launcher.resources import TrialResources, trial_resources
from cluster.launcher.settings import LauncherSettings
from cluster.private_apis import apply_overrides, overrides_dirname


class _Group:
    """The composed representative of one combination of config-group choices."""

    def __init__(self, config: DictConfig, values: dict[str, str], relevant: Optional[set[str]]):
        self.config = config
        self.values = values  # key -> override line of the representative's value overrides
        # Keys hydra.launcher interpolates (transitively); None: could not tell, every value is relevant.
        self.relevant = relevant
        self.settings: dict[tuple, LauncherSettings] = {}
        self.resources: dict[tuple, TrialResources] = {}
        self.checked: set[str] = set()
        # The task's part of the config (no `hydra` node), into which each value to check is swapped and back.
        self.task: Optional[DictConfig] = None


def launcher_settings(sweep_config: DictConfig) -> LauncherSettings:
    """The job's `hydra.launcher` node resolved against that job's config."""
    return LauncherSettings.of(sweep_config.hydra.launcher)


class JobCatalog:
    """The sweep's jobs, composed once per combination of config-group choices (see the module doc)."""

    def __init__(self, launcher, first_num: int = 0):
        self.launcher = launcher
        self.first_num = first_num
        loader = launcher.hydra_context.config_loader
        self._repository = getattr(loader, "repository", None)
        self._parser = OverridesParser.create()
        self._parsed: dict[str, Override] = {}
        self._groups: dict[tuple, _Group] = {}
        self._validate = validator(launcher.settings.validate)
        self.num_composed = 0  # full Hydra compositions so far (the costly part)

    def __getstate__(self) -> dict:
        # Shipped with the trainable (Tune asks it for each trial's resources): the parser is rebuilt on demand.
        state = dict(self.__dict__)
        state["_parser"], state["_parsed"] = None, {}
        return state

    # ------------------------------------------------------------ overrides
    def _parse(self, line: str) -> Override:
        parsed = self._parsed.get(line)
        if parsed is None:
            if self._parser is None:
                self._parser = OverridesParser.create()
            parsed = self._parsed[line] = self._parser.parse_overrides([line])[0]
        return parsed

    def _is_group(self, override: Override) -> bool:
        if override.package is not None or isinstance(override.value(), dict):
            return override.package is not None
        if self._repository is None:
            return True  # cannot tell: compose every job in full
        return self._repository.group_exists(override.key_or_group)

    def _split(self, overrides: Sequence[str]) -> tuple[tuple, dict[str, str]]:
        """(group choices, {key: value override line}); a value override Hydra deletes or appends to
        counts as a choice (its job is composed in full, never patched)."""
        groups, values = [], {}
        for line in overrides:
            override = self._parse(line)
            if self._is_group(override) or override.is_delete() or override.is_hydra_override():
                groups.append(line)
            else:
                values[override.key_or_group] = line
        return tuple(groups), values

    # ------------------------------------------------------------ composition
    def _group(self, overrides: Sequence[str], num: int) -> tuple[_Group, dict[str, str]]:
        choices, values = self._split(overrides)
        group = self._groups.get(choices)
        if group is None:
            config = self._compose_checked(list(overrides), num)
            group = self._groups[choices] = _Group(config, values, launcher_references(config))
            group.checked.update(values.values())
        return group, values

    def _compose_checked(self, overrides: list[str], num: int) -> DictConfig:
        try:
            config = compose_job(self.launcher, overrides, num)
            self.num_composed += 1
            self._check(config)
        except (SweepError, MissingConfigException):  # an unknown group option is the same for every job
            raise
        except Exception as error:  # composition errors and the app's own alike: name the job, start nothing
            raise SweepRefused(f"Job {job_label(num, overrides)} cannot run, so no job of this sweep was started: "
                             f"{error}") from error
        return config

    def _check(self, sweep_config: DictConfig) -> None:
        launcher_settings(sweep_config)  # its interpolations must resolve
        if self._validate is not None:
            task = copy.deepcopy(sweep_config)
            with read_write(task), open_dict(task):
                del task["hydra"]
            self._validate(task)

    def _variant(self, group: _Group, lines: Sequence[str]) -> DictConfig:
        """The representative's config with these value overrides applied as Hydra applies them."""
        config = copy.deepcopy(group.config)
        forced = [self._parse("++" + line.lstrip("+")) for line in lines]
        with read_write(config):
            apply_overrides(forced, config)
        return config

    def _differing(self, group: _Group, values: dict[str, str]) -> list[str]:
        return [line for key, line in values.items() if group.values.get(key) != line] + \
            [f"~{key}" for key in group.values if key not in values]

    # ------------------------------------------------------------ public
    def check(self, jobs: Sequence[Sequence[str]], labels: Optional[Sequence[str]] = None,
              extra_values: Sequence[tuple[str, str, str]] = ()) -> None:
        """Compose one representative per combination of group choices and check every distinct value
        override against it, plus `extra_values`: (key, value, override as typed) that sampled trials may
        draw (an interval's bounds, each choice), swapped into every representative.
        Raises SweepRefused naming the job (its number, or its label) and the problem."""
        for index, overrides in enumerate(jobs):
            num = self.first_num + index
            group, values = self._group(overrides, num)
            label = labels[index] if labels else None
            for line in values.values():
                if line not in group.checked:
                    group.checked.add(line)
                    self._check_value(group, line, num, overrides, label)
            for key, value, typed in extra_values:
                line = f"{key}={value}"
                if line in group.checked:
                    continue
                group.checked.add(line)
                swapped = [item for item in overrides if self._parse(item).key_or_group != key] + [line]
                try:
                    if self._is_group(self._parse(line)):
                        self._group(swapped, num)
                    else:
                        self._check_swapped(group, line)
                except Exception as error:  # noqa: BLE001 - the app's message, with the override named
                    message = error.args[0] if isinstance(error, SweepError) else str(error)
                    raise SweepRefused(f"`{typed}` can draw {line}, with which the job cannot run ({message}), so no "
                                     f"job of this sweep was started. Narrow the range.") from error

    def _check_swapped(self, group: _Group, line: str) -> None:
        """Validate the representative with this one value override swapped in: in place on the group's task
        config (and back), a few milliseconds, not a copy of the whole config per value."""
        key = self._parse(line).key_or_group
        if key.startswith("hydra.") or group.relevant is None or self._relevant(group, [line]):
            self._check(self._variant(group, [line]))  # it changes hydra.launcher's settings: check those too
            return
        if group.task is None:
            group.task = copy.deepcopy(group.config)
            with read_write(group.task), open_dict(group.task):
                del group.task["hydra"]
        task = group.task
        restore = group.values.get(key)
        try:
            with read_write(task):
                apply_overrides([self._parse("++" + line.lstrip("+"))], task)
            if self._validate is not None:
                self._validate(task)
        finally:
            with read_write(task), open_dict(task):
                if restore is not None:
                    apply_overrides([self._parse("++" + restore.lstrip("+"))], task)
                else:
                    parent, _, leaf = key.rpartition(".")
                    node = OmegaConf.select(task, parent) if parent else task
                    if node is not None and leaf in node:
                        del node[leaf]

    def _check_value(self, group: _Group, line: str, num: int, overrides: Sequence[str], label: Optional[str]) -> None:
        try:
            self._check_swapped(group, line)
        except Exception as error:  # noqa: BLE001 - the app's message, with the job named
            where = f"Trial {label}" if label else f"Job {job_label(num, overrides)}"
            raise SweepRefused(
                f"{where} cannot run with {line}, so no job of this sweep was started: {error}") from error

    def _relevant(self, group: _Group, differing: list[str]) -> tuple:
        if group.relevant is None:
            return tuple(differing)
        keep = []
        for line in differing:
            key = self._parse(line.lstrip("~")).key_or_group if not line.startswith("~") else line[1:]
            if key.startswith("hydra.") or any(ref == key or ref.startswith(key + ".") or key.startswith(ref + ".")
                                               for ref in group.relevant):
                keep.append(line)
        return tuple(keep)

    def settings(self, overrides: Sequence[str], num: int = 0) -> LauncherSettings:
        """The job's resolved `hydra.launcher` node (cached per the values it depends on)."""
        group, values = self._group(overrides, num)
        key = self._relevant(group, self._differing(group, values))
        if key not in group.settings:
            group.settings[key] = launcher_settings(self._variant(group, key) if key else group.config)
        return group.settings[key]

    def resources(self, overrides: Sequence[str], num: int = 0) -> TrialResources:
        group, values = self._group(overrides, num)
        key = self._relevant(group, self._differing(group, values))
        if key not in group.resources:
            group.resources[key] = trial_resources(self._variant(group, key) if key else group.config)
        return group.resources[key]

    def representative(self, overrides: Sequence[str], num: int = 0) -> DictConfig:
        return self._group(overrides, num)[0].config

    def job_view(self, overrides: Sequence[str], num: int):
        """The job's folder, overrides and name now; its full config when first asked for (trial_results)."""
        from cluster.launcher.trial_results import JobView

        group, _ = self._group(overrides, num)
        task = [line for line in overrides if not self._parse(line).is_hydra_override()]
        return JobView(task, self.job_dir(overrides, num), str(group.config.hydra.job.name),
                       lambda: self.job_config(overrides, num))

    def job_dir(self, overrides: Sequence[str], num: int) -> str:
        """The job's folder: the sweep's folder as the driver placed it (absolute; under cluster_dir when it
        runs as a Ray job, as the trials use it) / hydra.sweep.subdir, without building the job's whole config
        when the subdir is Hydra's default `${hydra.job.num}`."""
        group, _ = self._group(overrides, num)
        sweep_dir = self.launcher.config.hydra.sweep.dir
        raw = OmegaConf.to_container(group.config.hydra.sweep, resolve=False)
        if raw.get("subdir") == "${hydra.job.num}":
            return f"{sweep_dir}/{num}"
        return f"{sweep_dir}/{self.job_config(overrides, num).hydra.sweep.subdir}"

    def job_config(self, overrides: Sequence[str], num: int) -> DictConfig:
        """The job's full config as the launcher composes it (hydra.overrides.task, hydra.job.num and
        override_dirname its own), built from its representative without composing it again."""
        group, values = self._group(overrides, num)
        differing = self._differing(group, values)
        try:
            config = self._variant(group, differing) if differing else copy.deepcopy(group.config)
        except Exception:  # noqa: BLE001 - patched values that Hydra would compose differently: compose it
            config = compose_job(self.launcher, list(overrides), num)
        task = [line for line in overrides if not self._parse(line).is_hydra_override()]
        with read_write(config), open_dict(config):
            config.hydra.overrides.task = task
            config.hydra.job.num = num
            config.hydra.job.id = str(num)
            dirname = config.hydra.job.config.override_dirname
            config.hydra.job.override_dirname = overrides_dirname(
                [self._parse(line) for line in task], exclude_keys=list(dirname.exclude_keys),
                item_sep=dirname.item_sep, kv_sep=dirname.kv_sep)
        return config
