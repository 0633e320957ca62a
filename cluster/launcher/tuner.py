"""The Ray Tune experiment of a sweep: built new, or restored from the sweep folder when the same sweep is
run again (the searcher's and scheduler's state with it: Tune saves both in the experiment folder), with the
settings every sweep shares (one process per trial, retries, the sweep's own progress view, no Tune
checkpoints except under population-based training). The folder may not be the one the experiment started in
(a sweep restored from its store on another machine, driver_state.py): Tune restores it there."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

from ray.tune import Callback

from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.settings import LauncherSettings, Objective
from cluster.launcher.sweep_folder import EXPERIMENT, resumes
from cluster.launcher.sweep_spec import SweepSpec
from cluster.launcher.trial_failures import count_only_crashes

log = logging.getLogger(__name__)

# PBT: Tune checkpoints (copies of a job's state, one per epoch) kept per trial. Tune hands an exploiting
# trial the donor's latest and a resumed driver each trial's latest its snapshot named: both are read within
# an epoch or two, and a trial that finds one already rotated away resumes from its own state instead.
PBT_CHECKPOINTS_KEPT = 4


def _quiet_tune() -> None:
    # A final report may carry no metric (a job that had already finished reports its return value only).
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Jobs write their own TensorBoard runs (with HParams); Tune's automatic TensorBoard logger would add a
    # second run per trial whose HParams experiment (only the trial's config) hides them. Its CSV and JSON
    # loggers, which Tune's results rely on, are passed explicitly.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Tune's classic output honours a custom reporter; its newer output prints a table per trial.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # One state snapshot per epoch report is what resume needs; Tune's warning about it is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def _trial_ids(experiment: Path) -> Optional[set[str]]:
    """The trials a saved experiment knows (None if it cannot be read: then no trial is taken for a lost one)."""
    from ray import tune

    try:
        return {trial.trial_id for trial in tune.ExperimentAnalysis(str(experiment)).trials}
    except Exception as error:  # noqa: BLE001 - Tune's restore will say what is wrong with it
        log.warning("The trials of %s could not be listed before resuming: %s", experiment, error)
        return None


# This driver's experiment folder, for the trials that name another (TrialsInThisFolder).
_experiment_folder: Optional[str] = None


class TrialsInThisFolder(Callback):
    """Trials that the searcher of an experiment restored in another folder than the one it started in (a sweep
    resumed from its store on another machine) creates name the old folder as their experiment's: Tune moves only
    the trials it restores. Each is pointed at this driver's folder, where Tune writes their results, so the
    sweep's results are read from there. Holds nothing: it is pickled with the experiment."""

    def _move(self, trials) -> None:
        from cluster.private_apis import move_trial_to

        if _experiment_folder is not None:
            for trial in trials:
                move_trial_to(trial, _experiment_folder)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._move([trial])

    def on_step_end(self, iteration, trials, **info):
        self._move(trials)

    def on_experiment_end(self, trials, **info):
        self._move(trials)


def build_tuner(sweep_dir: Path, trainable: Any, spec: SweepSpec, settings: LauncherSettings, objective: Objective,
                algorithms: tuple[Any, Any], job_numbers: JobNumbers, progress_reporter: Any):
    """`algorithms`: (scheduler, search_alg), None where the sweep uses none. Trials use no Tune checkpoints,
    except under PBT: a job resumes from its own saved state, and after a killed driver Tune would restore
    from a checkpoint its last snapshot named, which rotation may have deleted. PBT needs them to copy one
    trial into another: PBT_CHECKPOINTS_KEPT per trial, all deleted when the sweep ends."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    global _experiment_folder

    _quiet_tune()
    count_only_crashes()  # a trial preempted, stopped by SIGTERM or on a lost node is retried without counting
    _experiment_folder = str(Path(sweep_dir).absolute() / EXPERIMENT)
    if resumes(sweep_dir, spec.record):
        log.info("Resuming the sweep in %s: finished trials are kept, unfinished ones continue", sweep_dir)
        job_numbers.resuming(_trial_ids(sweep_dir / EXPERIMENT))
        return tune.Tuner.restore(str(sweep_dir / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True,
                                  param_space=spec.param_space)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    scheduler, search_alg = algorithms
    if search_alg is None and spec.seed is not None:
        # A generator of its own: with the global numpy RNG, whatever else draws from it between trials (the
        # scheduler, Ray's internals) shifts the samples; its own RandomState makes a seed name one list of trials.
        # Tune applies max_concurrent_trials to Searchers only: this generator takes it itself.
        search_alg = BasicVariantGenerator(random_state=spec.seed, max_concurrent=settings.max_concurrent_trials or 0)
    return tune.Tuner(
        trainable,
        param_space=spec.param_space,
        tune_config=tune.TuneConfig(
            metric=objective.metric,
            mode=objective.mode if objective.metric else None,
            num_samples=spec.num_samples,
            search_alg=search_alg,
            scheduler=scheduler,
            max_concurrent_trials=settings.max_concurrent_trials,
            # Each trial in a fresh process: TensorFlow's devices are fixed once it starts.
            reuse_actors=False,
            trial_name_creator=job_numbers.name_of,
            trial_dirname_creator=job_numbers.name_of,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=str(sweep_dir),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=PBT_CHECKPOINTS_KEPT if spec.mutations else None),
            # Tune calls the progress view only when verbose: it must see the end, even when it prints nothing.
            verbose=max(settings.verbose, 1),
            progress_reporter=progress_reporter,
            callbacks=[CSVLoggerCallback(), JsonLoggerCallback(), TrialsInThisFolder()],
        ),
    )
