"""What `-m` does with each override form, decided before Ray starts (no Ray, no TensorFlow: seconds):
Hydra's own grid unless a search is asked for; which forms a searcher or PBT can take; the same seed
proposing the same first trials; one composition per combination of config-group choices."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cluster.launcher.job_configs import SweepError
from cluster.launcher.search_space import asks_for_search, build_search_space
from cluster.launcher.sweep_spec import SearchSettings, search_spec
from tests import ports
from tests.conftest import LAUNCH, PROJECT_ROOT

OPTUNA = {"_target_": "ray.tune.search.optuna.OptunaSearch", "seed": 0}
PBT = {"_target_": "ray.tune.schedulers.PopulationBasedTraining", "time_attr": "epoch", "perturbation_interval": 2}
MUTABLE = ["lr", "optimizer.*", "model.dropout"]


@pytest.mark.parametrize("arguments, num_samples, search_alg, scheduler, search", [
    (["seed=range(0,16)"], None, None, None, False),  # Hydra's meaning: 16 jobs
    (["model=choice(cnn,lstm)", "lr=1e-3,1e-4"], None, None, None, False),
    (["seed=range(0,16)"], 4, None, None, True),  # num_samples asks for a search
    (["lr=interval(1e-4,1e-2)"], None, None, None, True),  # an interval can only be sampled
    (["lr=tag(log,interval(1e-4,1e-2))"], None, None, None, True),
    (["model=choice(cnn,lstm)"], None, OPTUNA, None, True),
    (["model=cnn,lstm"], None, None, PBT, True),
])
def test_a_search_is_run_only_when_asked_for(arguments, num_samples, search_alg, scheduler, search):
    assert asks_for_search(arguments, num_samples, search_alg, scheduler) is search


def test_every_override_form_in_a_random_search():
    space = build_search_space(["model=cnn,lstm", "lr=tag(log,interval(1e-4,1e-2))", "model.dropout=interval(0,0.5)",
                                "trainer.batch_size=tag(int,interval(16,64))", "seed=range(0,3)",
                                "optimizer=choice(adam,sgd)", "trainer.epochs=2"])
    assert space.fixed == ["trainer.epochs=2"]
    assert space.grid == {"model": ["cnn", "lstm"]}
    assert set(space.sampled) == {"lr", "model.dropout", "trainer.batch_size", "seed", "optimizer"}
    assert space.extremes["trainer.batch_size"] == ["16", "64"] and space.extremes["seed"] == ["0", "1", "2"]
    assert space.num_trials(3) == 6
    spec = search_spec(["model=cnn,lstm", "lr=tag(log,interval(1e-4,1e-2))"], SearchSettings(num_samples=3, seed=1))
    assert spec.summary.startswith("Search: 6 trials on Ray Tune (2 grid points (model) x 3 samples), random draws")


def test_a_grid_list_under_a_model_based_searcher_is_searched_as_a_choice():
    """As Hydra's Optuna sweeper does: the searcher proposes every value itself (it cannot run a grid), so
    `model=cnn,lstm` becomes a choice, every value checked before launch, and the first line says so."""
    spec = search_spec(["lr=interval(1e-4,1e-2)", "model=cnn,lstm"], SearchSettings(num_samples=24, search_alg=OPTUNA))
    assert spec.space.grid == {} and set(spec.space.sampled) == {"lr", "model"}
    assert spec.space.extremes["model"] == ["cnn", "lstm"]
    assert spec.summary.startswith("Search: 24 trials on Ray Tune (24 samples), OptunaSearch")
    assert "model=cnn,lstm: searched as a choice, OptunaSearch proposes every value itself" in spec.summary
    same = search_spec(["lr=interval(1e-4,1e-2)", "model=choice(cnn,lstm)"],
                       SearchSettings(num_samples=24, search_alg=OPTUNA))
    assert same.summary.startswith("Search: 24 trials on Ray Tune (24 samples), OptunaSearch")


@pytest.mark.parametrize("arguments, message", [
    (["lr=interval(1e-4,1e-2)", "model=cnn,lstm"], "`model=cnn,lstm`: PopulationBasedTraining changes hyperparameters"),
    (["lr=interval(1e-4,1e-2)", "model=choice(cnn,lstm)"], "model cannot change mid-training"),
    (["seed=0,1", "lr=interval(1e-4,1e-2)"],
     "seed cannot change mid-training (what can: lr, optimizer.*, model.dropout)"),
    (["trainer.epochs=4"], "needs hyperparameters to explore"),
])
def test_pbt_over_what_cannot_change_mid_training_is_refused(arguments, message):
    with pytest.raises(SweepError) as error:
        search_spec(arguments, SearchSettings(num_samples=4, scheduler=PBT, mutable=MUTABLE))
    assert message in str(error.value)


def test_pbt_mutates_the_sampled_keys_it_may_change():
    spec = search_spec(["lr=tag(log,interval(1e-4,1e-2))", "optimizer.beta_1=interval(0.8,0.99)", "trainer.epochs=4"],
                       SearchSettings(num_samples=4, scheduler=PBT, mutable=MUTABLE))
    assert set(spec.mutations) == {"lr", "optimizer.beta_1"}
    with pytest.raises(SweepError, match="cannot be combined with OptunaSearch"):
        search_spec(["lr=interval(1e-4,1e-2)"], SearchSettings(num_samples=4, scheduler=PBT, search_alg=OPTUNA,
                                                                 mutable=MUTABLE))


def test_an_unknown_target_lists_where_the_ready_ones_are():
    with pytest.raises(SweepError, match="names no class"):
        search_spec(["lr=interval(1e-4,1e-2)"], SearchSettings(search_alg={"_target_": "ray.tune.search.NoSuchSearch"}))


def test_the_same_seed_proposes_the_same_first_trials_with_optuna():
    """The searcher the optuna config builds, asked for its first trials twice with one seed, once with another."""
    from ray.tune.search.optuna import OptunaSearch

    space = build_search_space(["lr=tag(log,interval(1e-4,1e-2))", "model.dropout=interval(0,0.5)",
                                "model=choice(cnn,lstm)", "trainer.batch_size=tag(int,interval(16,64))"])

    def first_trials(seed: int) -> list[dict]:
        searcher = OptunaSearch(seed=seed, metric="val_loss", mode="min")
        searcher.set_search_properties("val_loss", "min", space.param_space())
        return [searcher.suggest(f"t{index}") for index in range(3)]

    assert first_trials(7) == first_trials(7)
    assert first_trials(7) != first_trials(8)


def _launch(*arguments: str) -> subprocess.CompletedProcess:
    # Nothing answers at a port of the test session's own (tests/ports.py): the sweep stops right after its
    # checks, before any trial.
    return subprocess.run([sys.executable, str(LAUNCH), "-m", *arguments,
                           f"hydra.launcher.address=127.0.0.1:{ports.port()}",
                           "hydra.launcher.connect_timeout_s=1", "storage.uri=null"],
                          cwd=str(PROJECT_ROOT), capture_output=True, text=True, timeout=300)


def test_the_first_line_says_grid_or_search_and_how_many_trials(tmp_path):
    grid = _launch("seed=range(0,16)", f"hydra.sweep.dir={tmp_path / 'g'}")
    assert grid.stdout.splitlines()[0].startswith("Grid: 16 jobs on Ray Tune"), grid.stdout[:2000]
    search = _launch("seed=range(0,16)", "hydra.sweeper.num_samples=5", f"hydra.sweep.dir={tmp_path / 's'}")
    assert search.stdout.splitlines()[0].startswith("Search: 5 trials on Ray Tune (5 samples), random draws"), \
        search.stdout
    optuna = _launch("hparams_search=optuna_asha", "lr=tag(log,interval(1e-4,1e-2))",
                     f"hydra.sweep.dir={tmp_path / 'o'}")
    assert optuna.stdout.splitlines()[0].startswith("Search: 16 trials on Ray Tune (16 samples), OptunaSearch with "
                                                    "ASHAScheduler"), optuna.stdout


def test_an_unknown_searcher_or_scheduler_lists_the_options(tmp_path):
    result = _launch("hparams_search=optna", "lr=interval(1e-4,1e-2)", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode != 0
    # Hydra refuses the option while composing, before any connection to Ray.
    assert result.returncode == 2 and "hparams_search=optna: there is no such option" in result.stderr, result.stderr
    options = result.stderr.split("Allowed: ")[1].split(".")[0].split(", ")
    assert options == ["asha", "hyperband", "none", "optuna", "optuna_asha", "pbt", "random"], result.stderr
    assert "No Ray cluster answers" not in result.stderr


def test_an_interval_the_job_refuses_at_one_end_stops_the_search(tmp_path):
    result = _launch("hparams_search=optuna", "model.dropout=interval(0,1)", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode != 0
    assert "`model.dropout=interval(0,1)` can draw model.dropout=1.0" in result.stderr
    assert "Invalid value for `model.dropout`" in result.stderr and "Traceback" not in result.stderr
