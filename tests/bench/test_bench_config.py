"""`experiment=bench_mnist` builds exactly the plain baseline's CNN (bench/plain_keras.py): same output
shapes of every weighted and pooling layer, same parameter count. Guards the benchmark against drift in
trainers/models.py."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from trainers.schema import register_schemas, validate

ROOT = Path(__file__).resolve().parents[2]
register_schemas()


def test_bench_experiment_builds_the_plain_scripts_model():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=bench_mnist", "data.path=/tmp/mnist.npz"])
    validate(cfg)
    assert (cfg.model.name, cfg.data.name, cfg.trainer.batch_size) == ("cnn", "mnist", 128)

    from bench.plain_keras import build_model as build_plain_model
    from trainers.models import build_model
    from trainers.pipeline import DataSpec

    spec = DataSpec((28, 28, 1), "image", "multiclass", 10, 0, 54_000)
    launcher_model = build_model(cfg.model, spec)
    plain_model = build_plain_model()

    def shapes(model):
        kept = ("Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout")
        return [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers
                if type(layer).__name__ in kept]

    assert shapes(launcher_model) == shapes(plain_model)
    assert launcher_model.count_params() == plain_model.count_params() == 241_546
