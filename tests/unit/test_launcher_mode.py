"""The launcher receives min or max, never auto: conf/config.yaml hands it `mode` through the
`raylaunch_mode` resolver, so Keras' rule for auto is written once (trainers.schema.resolve_mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from trainers.schema import MODE_RESOLVER, register_schemas

CONF = Path(__file__).resolve().parents[2] / "conf"
register_schemas()


def launcher_mode(*overrides: str) -> str:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    mode = cfg.hydra.launcher.mode
    return getattr(mode, "value", mode)  # the launcher's schema may type it as an enum


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["metric=val_accuracy", "mode=auto"], "max"),
        (["metric=val_auc"], "max"),  # mode is auto unless set
        (["metric=val_loss", "mode=auto"], "min"),
        (["metric=val_mae"], "min"),
        (["metric=val_loss", "mode=max"], "max"),  # an explicit mode passes through
        (["metric=val_accuracy", "mode=min"], "min"),
    ],
)
def test_the_launcher_receives_the_mode_resolved(overrides, expected):
    assert launcher_mode(*overrides) == expected


def test_the_resolved_mode_reaches_a_plain_container():
    """What the launcher reads: the `hydra.launcher` node turned into plain values."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["metric=val_accuracy"], return_hydra_config=True)
    plain = OmegaConf.to_container(cfg.hydra.launcher, resolve=True, enum_to_str=True)
    assert plain["mode"] == "max"


def test_registering_twice_is_harmless():
    register_schemas()
    register_schemas()
    assert OmegaConf.has_resolver(MODE_RESOLVER)
    assert launcher_mode("metric=val_accuracy") == "max"
