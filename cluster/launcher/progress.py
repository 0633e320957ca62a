"""One sweep-level progress view for the console, in place of Tune's per-trial tables.

Each trial's own output (Keras progress bars included) goes to its trial.log; the console shows
how many trials are pending, running, done and failed, the best so far, and what each running trial
is at, printed when a trial changes state or every `interval_s` seconds.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from ray.tune import ProgressReporter

from cluster.launcher.trial_results import failures_of

STATUS_WORDS = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused", "TERMINATED": "done", "ERROR": "failed"}


class SweepProgress(ProgressReporter):
    """`quiet`: print nothing (hydra.launcher.verbose=0); the statuses are still recorded."""

    def __init__(self, metric: Optional[str], mode: str, describe: Callable[[dict], str], interval_s: float = 15.0,
                 quiet: bool = False):
        self.metric, self.mode, self.describe, self.interval_s = metric, mode, describe, interval_s
        self.quiet = quiet
        self._started = time.monotonic()
        self._last_printed = 0.0
        self._last_statuses: tuple = ()
        # Each trial's status when the run ended, before Tune stops what still runs: an interrupted run
        # (Ctrl-C) leaves trials RUNNING or PENDING here, which a resume continues.
        self.final_statuses: dict[str, str] = {}

    def setup(self, start_time: Optional[float] = None, *args, **kwargs) -> None:
        self._started = time.monotonic()

    def should_report(self, trials, done: bool = False) -> bool:
        statuses = tuple((trial.trial_id, trial.status) for trial in trials)
        changed = statuses != self._last_statuses
        self._last_statuses = statuses
        return done or changed or time.monotonic() - self._last_printed >= self.interval_s

    def report(self, trials, done: bool, *sys_info) -> None:
        if done:
            self.final_statuses = {trial.trial_id: trial.status for trial in trials}
        self._last_printed = time.monotonic()
        if not self.quiet:
            print(self.render(trials), flush=True)

    def interrupted(self, trial_id: str) -> bool:
        return self.final_statuses.get(trial_id, "TERMINATED") not in ("TERMINATED", "ERROR")

    def _best_value(self, trial) -> Optional[float]:
        # Best epoch so far, not the last one: Tune keeps min/max of every reported metric.
        analysis = getattr(getattr(trial, "run_metadata", None), "metric_analysis", None) or {}
        value = analysis.get(self.metric, {}).get(self.mode)
        return value if value is not None else (trial.last_result or {}).get(self.metric)

    def render(self, trials) -> str:
        counts = {word: 0 for word in ("pending", "running", "done", "failed")}
        for trial in trials:
            word = STATUS_WORDS.get(trial.status, trial.status.lower())
            counts[word] = counts.get(word, 0) + 1
        elapsed = int(time.monotonic() - self._started)
        head = f"[sweep {elapsed // 60}:{elapsed % 60:02d}] {len(trials)} trials: " + ", ".join(
            f"{number} {word}" for word, number in counts.items()
        )
        # A crash Tune retried is not a failure of the sweep, but never goes unmentioned.
        retried = sum(1 for trial in trials if failures_of(trial) and trial.status != "ERROR")
        if retried:
            head += f" ({retried} retried after a crash)"
        scored = [(value, trial) for trial in trials if (value := self._best_value(trial)) is not None]
        if scored:
            value, trial = (min if self.mode == "min" else max)(scored, key=lambda pair: pair[0])
            head += f" | best {self.metric} {value:.4f}: {self.describe(trial.config)}"
        lines = [head]
        for trial in trials:
            if trial.status == "RUNNING":
                result = trial.last_result or {}
                reported = self.metric in result and "epoch" in result
                at = f"epoch {result['epoch']}, {self.metric} {result[self.metric]:.4f}" if reported else "starting"
                lines.append(f"    running {self.describe(trial.config)}: {at}")
        return "\n".join(lines)
