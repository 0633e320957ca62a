"""hydra.job.num of each trial of a sweep, given in the driver as Tune creates the trials (JobNumbers), from a
ledger kept in the sweep folder for searches (see JobNumbers)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Optional

from cluster.launcher.search_space import trial_overrides
from cluster.launcher.sweep_plan import SweepPlan, tune_counter


class JobNumbers:
    """hydra.job.num of each trial, given in the driver when Tune creates the trial (its name, job_<num>, is
    kept across restores). A grid's trial is numbered by its position and Tune's random search by its counter;
    a searcher's trials have random ids, so they are numbered in creation order from the sweep's ledger of
    numbers (`<sweep dir>/job_numbers.jsonl`, one line appended per number given): never from the folders on
    disk, which the trials of one burst do not create before Tune has named them all.

    Tune deep-copies and pickles its name creator with every trial it creates, and with each trial's state:
    every copy in this process shares one ledger (kept by sweep folder), and a copy holds only small values.
    A copy restored from the experiment state of this sweep run in another folder (resumed from its store on
    another machine) takes the ledger of the sweep this driver runs.

    A resumed driver reads the ledger and knows which trials the restored experiment has. A trial the
    killed driver had numbered after Tune's last save of its experiment is unknown to it; the restored searcher
    proposes the same values again under a new id, and that trial continues the lost one's job number (and so
    its folder and saved state) instead of becoming a new job."""

    LEDGER = "job_numbers.jsonl"
    _ledgers: dict[str, "_Ledger"] = {}
    _current: Optional[str] = None  # the sweep folder of the sweep this driver runs (the last one built)

    def __init__(self, plan: SweepPlan, sweep_dir: Path):
        self.grid, self.initial_job_idx, self.sweep_dir = plan.jobs is not None, plan.initial_job_idx, Path(sweep_dir)
        self.space = plan.space
        JobNumbers._ledgers[self._key] = _Ledger(self.sweep_dir / self.LEDGER, self.initial_job_idx)
        JobNumbers._current = self._key

    @property
    def _key(self) -> str:
        return str(self.sweep_dir.absolute())

    @classmethod
    def on_given(cls, sweep_dir: Path, listener: Optional[Callable[[], None]]) -> None:
        """Call `listener` (in Tune's thread: it must return at once) after each number given in the sweep
        folder's ledger; None: no longer. For a copy of the ledger kept elsewhere (driver_mirror.py)."""
        ledger = cls._ledgers.get(str(Path(sweep_dir).absolute()))
        if ledger is not None:
            ledger.listener = listener

    def resuming(self, known_trial_ids: Optional[Iterable[str]]) -> None:
        """Tune is about to restore this sweep's experiment, which knows these trials (None: not known, so
        no new trial is taken for a lost one)."""
        self._ledger.known = None if known_trial_ids is None else set(known_trial_ids)

    @property
    def _ledger(self) -> "_Ledger":
        ledger = JobNumbers._ledgers.get(self._key)
        if ledger is None and JobNumbers._current is not None:
            # A copy from the experiment state of this driver's sweep, which ran in another folder before.
            ledger = JobNumbers._ledgers[self._key] = JobNumbers._ledgers[JobNumbers._current]
        if ledger is None:  # a copy unpickled in a driver that never built the original (a read of Tune's state)
            ledger = JobNumbers._ledgers[self._key] = _Ledger(self.sweep_dir / self.LEDGER, self.initial_job_idx)
        return ledger

    def number_of(self, trial) -> int:
        counter = tune_counter(trial.trial_id)
        if self.grid:
            return self.initial_job_idx + int(trial.config["job"])
        if counter is not None:
            return self.initial_job_idx + counter
        overrides = None
        if self.space is not None:
            try:
                overrides = trial_overrides(self.space, trial.config)
            except (KeyError, TypeError):
                pass
        return self._ledger.give(trial.trial_id, overrides)

    def name_of(self, trial) -> str:
        return f"job_{self.number_of(trial)}"


class _Ledger:
    """The job numbers a search's drivers gave, appended to one file as they are given. Read once per driver."""

    def __init__(self, path: Path, initial_job_idx: int):
        self.path = path
        self.given: dict[str, int] = {}  # by trial id, every driver's
        self.overrides: dict[str, Optional[list]] = {}
        self.by_this_driver: set[str] = set()
        self.known: Optional[set[str]] = None  # set when resuming: the restored experiment's trial ids
        self.listener: Optional[Callable[[], None]] = None  # told of each number given (JobNumbers.on_given)
        for line in path.read_text().splitlines() if path.is_file() else ():
            try:
                entry = json.loads(line)
                trial_id = entry["trial_id"]
                self.given[trial_id], self.overrides[trial_id] = int(entry["job"]), entry.get("overrides")
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed driver
        # Job folders of a sweep run by a version without the ledger (read once, when the driver starts).
        folders = [int(folder.name) for folder in path.parent.glob("*") if folder.is_dir() and folder.name.isdigit()]
        self.next = max([initial_job_idx - 1, *self.given.values(), *folders]) + 1

    def _lost_twin(self, overrides: Optional[list]) -> Optional[int]:
        """In a resumed sweep, the number of a trial with these values that the restored experiment does not
        know and no trial of this driver took."""
        if self.known is None or overrides is None:
            return None
        taken = {self.given[trial_id] for trial_id in (self.known | self.by_this_driver) if trial_id in self.given}
        for trial_id, number in self.given.items():
            if (trial_id not in self.known and trial_id not in self.by_this_driver and number not in taken
                    and self.overrides.get(trial_id) == overrides):
                return number
        return None

    def give(self, trial_id: str, overrides: Optional[list]) -> int:
        if trial_id in self.given:
            return self.given[trial_id]
        number = self._lost_twin(overrides)
        if number is None:
            number, self.next = self.next, self.next + 1
        self.given[trial_id], self.overrides[trial_id] = number, overrides
        self.by_this_driver.add(trial_id)
        with open(self.path, "a") as ledger:
            ledger.write(json.dumps({"trial_id": trial_id, "job": number, "overrides": overrides}) + "\n")
            ledger.flush()
            os.fsync(ledger.fileno())
        if self.listener is not None:
            self.listener()
        return number
