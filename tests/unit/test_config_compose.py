"""Every config composes against its schema, and bad values are refused with a message that names the
field, the value and what is allowed, before TensorFlow is imported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from trainers.schema import MODEL_INPUTS, ConfigError, ModelName, composition_error_message, register_schemas, validate

CONF = Path(__file__).resolve().parents[2] / "conf"
register_schemas()


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def compose_job(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def refusal(*overrides: str) -> str:
    """What launch.py says of a job it refuses: a value OmegaConf refused while composing (a field's type
    or enum), worded by composition_error_message, or what validate() raises."""
    try:
        cfg = compose_job(*overrides)
    except ConfigCompositionException as error:
        message = composition_error_message(error)
        assert message is not None, f"not a refused value: {error} ({error.__cause__})"
        return message
    with pytest.raises(ConfigError) as refused:
        validate(cfg)
    return str(refused.value)


@pytest.mark.parametrize(
    "group,option",
    [
        (group, option)
        for group in (
            "model", "data", "optimizer", "trainer", "augmentation", "lr_schedule", "storage", "experiment",
            "hparams_search",
        )
        for option in group_options(group)
    ],
)
def test_every_group_option_composes(group, option):
    cfg = compose_job(f"{group}={option}")
    if group in ("experiment", "hparams_search"):  # `# @package _global_` overlays
        validate(cfg)
        return
    assert OmegaConf.select(cfg, group) is not None
    if group == "model":
        assert cfg.model.name == option
    if group in ("data", "optimizer"):
        assert cfg[group].name == option


def test_default_config_is_valid_and_offline():
    cfg = compose_job()
    validate(cfg)
    assert (cfg.model.name, cfg.data.name, cfg.optimizer.name) == ("cnn", "digits", "adam")
    assert cfg.data.path is None  # digits ship with scikit-learn: nothing to download


def test_the_model_names_are_the_model_options():
    assert sorted(ModelName) == sorted(MODEL_INPUTS) == group_options("model")


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_accepts_the_default_image_data(model):
    validate(compose_job(f"model={model}"))


def test_an_experiment_overlay_overrides_root_values(tmp_path):
    # config.yaml's own values come first in its defaults list, so an overlay's lr must win over them.
    conf_copy = tmp_path / "conf"
    shutil.copytree(CONF, conf_copy)
    (conf_copy / "experiment" / "fast_lr.yaml").write_text("# @package _global_\nlr: 0.05\nseed: 11\n")
    with initialize_config_dir(config_dir=str(conf_copy), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=fast_lr"])
    assert (cfg.lr, cfg.seed) == (0.05, 11)


def test_top_level_lr_and_seed_reach_the_job():
    cfg = compose_job("lr=3e-4", "seed=7", "optimizer=sgd")
    assert cfg.lr == pytest.approx(3e-4) and cfg.seed == 7 and cfg.optimizer.momentum == 0.9


@pytest.mark.parametrize(
    "override,field,allowed",
    [
        ("lr=0", "lr", "greater than 0"),
        ("lr=-1e-3", "lr", "greater than 0"),
        ("trainer.batch_size=0", "trainer.batch_size", "at least 1"),
        ("trainer.epochs=0", "trainer.epochs", "at least 1"),
        ("data.val_fraction=1.5", "data.val_fraction", "strictly between 0 and 1"),
        ("data.val_fraction=0", "data.val_fraction", "strictly between 0 and 1"),
        ("precision=float8", "precision", "auto, float32, mixed_float16, mixed_bfloat16"),
        ("distribution.cpu_replicas=0", "distribution.cpu_replicas", "at least 1"),
        ("mode=biggest", "mode", "auto, min, max"),
        ("model.dropout=1.0", "model.dropout", "[0, 1)"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_allowed(override, field, allowed):
    message = refusal(override)
    received = override.split("=", 1)[1]
    assert f"`{field}`" in message and allowed in message
    assert received in message or str(float(received)) in message


def test_wrong_type_is_refused_while_composing():
    with pytest.raises((ConfigCompositionException, ValidationError)) as refused:
        compose_job("lr=fast")
    assert "lr" in str(refused.value) and "fast" in str(refused.value)


@pytest.mark.parametrize(
    "group", [path.name for path in sorted(CONF.iterdir()) if path.is_dir() and path.name != "hydra"]
)
def test_unknown_group_option_lists_the_valid_ones(group):
    """Every group, including those a job may leave out (experiment, hparams_search: their `none`)."""
    with pytest.raises(ConfigCompositionException) as refused:
        compose_job(f"{group}=nonexistent")
    message = str(refused.value)
    assert f"Could not find '{group}/nonexistent'" in message
    for option in group_options(group):
        assert option in message


def test_experiment_and_hparams_search_default_to_none_which_changes_nothing():
    cfg = compose_job()
    assert cfg == compose_job("experiment=none", "hparams_search=none")
    assert OmegaConf.to_container(cfg) == OmegaConf.to_container(compose_job("experiment=none"))


@pytest.mark.parametrize(
    "overrides,field,choices",
    [
        (["precision=fp8"], "precision", "auto, float32, mixed_float16, mixed_bfloat16"),
        (["mode=biggest"], "mode", "auto, min, max"),
        (["data.task=ranking"], "data.task", "binary, multiclass, multilabel, regression"),
        (["data.input_kind=audio"], "data.input_kind", "image, tokens, text, tabular, sequence"),
        (["model.name=transformer"], "model.name", "mlp, cnn, lstm, gru, text_lstm, transfer"),
        (["optimizer.name=adagrad"], "optimizer.name", "adam, adamw, sgd, rmsprop"),
        (["model=transfer", "model.backbone=vgg16"], "model.backbone", "efficientnet_b0, mobilenet_v2, resnet50"),
        (["model=transfer", "model.pooling=min"], "model.pooling", "avg, max"),
        (["lr_schedule.name=step"], "lr_schedule.name", "constant, cosine, exponential, warmup"),
        (["augmentation=light", "augmentation.flip=diagonal"], "augmentation.flip",
         "horizontal, vertical, horizontal_and_vertical, or null"),
        (["trainer.callbacks.tensorboard.update_freq=step"], "trainer.callbacks.tensorboard.update_freq",
         "epoch, batch"),
    ],
)
def test_a_value_outside_a_fixed_set_is_refused_by_omegaconf_with_the_set(overrides, field, choices):
    with pytest.raises(ConfigCompositionException) as refused:  # OmegaConf itself refuses it, while composing
        compose_job(*overrides)
    message = composition_error_message(refused.value)
    received = overrides[-1].split("=", 1)[1]
    assert message.startswith(f"Invalid value for `{field}`: received {received!r}. Allowed: one of {choices}. ")
    example = message.rpartition(f"e.g. `{field}=")[2].rstrip("`.")
    assert example in choices.split(", "), message


def test_a_value_of_the_wrong_type_is_worded_like_the_others():
    message = refusal("trainer.epochs=1.5")
    assert message == ("Invalid value for `trainer.epochs`: received 1.5. Allowed: an integer. "
                       "Fix it on the command line or in the config, e.g. `trainer.epochs=10`.")
    assert "`trainer.resume`: received 'maybe'. Allowed: true or false" in refusal("trainer.resume=maybe")


def test_a_key_the_schema_does_not_have_is_named_with_the_keys_it_has():
    assert refusal("trainer.epoch=3") == (
        "Unknown key `trainer.epoch`: trainer (TrainerConfig) has no `epoch`. Its keys: epochs, batch_size, verbose, "
        "resume, save_every_steps, deterministic, jit_compile, steps_per_execution, time_input_wait, callbacks. Check "
        "the spelling, or "
            "choose the group "
        "option that has it.")


def test_an_unknown_group_option_is_left_to_hydras_message():
    with pytest.raises(ConfigCompositionException) as refused:
        compose_job("model=transformer")
    assert composition_error_message(refused.value) is None  # Hydra's lists the options


def test_a_setting_of_one_optimizer_is_refused_for_another():
    assert "(AdamConfig) has no `momentum`" in refusal("optimizer=adam", "optimizer.momentum=0.9")
    assert compose_job("optimizer=sgd", "optimizer.momentum=0.5").optimizer.momentum == 0.5


def test_a_model_that_cannot_serve_the_data_is_refused():
    cfg = compose_job("model=cnn", "data=breast_cancer")
    with pytest.raises(
        ConfigError, match="model=cnn cannot serve data=breast_cancer.*Models that accept 'tabular' data: mlp"
    ):
        validate(cfg)


def test_a_list_of_targets_is_refused_outside_forecasting():
    with pytest.raises(
        ConfigError,
        match=r"Invalid value for `data.target`: received \['price', 'area'\]. Allowed: one column name \(data=csv",
    ):
        validate(compose_job("data=csv", "model=mlp", "data.target=[price,area]"))
    validate(compose_job("data=timeseries", "model=lstm", "data.target=[T,p]"))
