"""Which keys become HParams columns in TensorBoard: the standard ones and every overridden hyperparameter,
with their composed values, but not the settings that only say where and how a job runs."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from tests.conftest import PROJECT_ROOT
from trainers.hparams import job_hparams
from trainers.schema import register_schemas

register_schemas()

OVERRIDES = ["model=lstm", "lr=1e-4", "trainer.epochs=3", "storage.uri=null", "trainer.verbose=2",
             "resources.cpus=2", "hydra.run.dir=/tmp/x"]


def test_overridden_hyperparameters_are_columns_and_run_settings_are_not():
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[o for o in OVERRIDES if not o.startswith("hydra.")])
    hparams = job_hparams(cfg, OVERRIDES)
    assert hparams["model"] == "lstm"
    assert hparams["lr"] == 1e-4  # the composed number, not the typed string
    assert hparams["trainer.epochs"] == 3
    assert (hparams["data"], hparams["optimizer"], hparams["seed"]) == ("digits", "adam", 0)
    assert not {"storage.uri", "trainer.verbose", "resources.cpus", "hydra.run.dir"} & set(hparams)
