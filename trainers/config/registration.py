"""`register_schemas`: the schemas in Hydra's ConfigStore, and the `raylaunch_mode` resolver."""

from __future__ import annotations

from omegaconf import OmegaConf

from .augmentation import AugmentationConfig
from .data import DataConfig
from .job import MODE_RESOLVER, JobConfig, resolve_mode
from .lr_schedule import LRScheduleConfig
from .model import CNNConfig, MLPConfig, RNNConfig, TransferConfig
from .optimizer import AdamConfig, AdamWConfig, RMSpropConfig, SGDConfig
from .storage import StorageConfig


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore, where config files name them in their defaults lists, and
    register the `raylaunch_mode` resolver (`resolve_mode`) the config's `hydra.launcher.mode` calls.

    Call it before composing a config, as often as you like: launch.py and tests call it at import.

    Example:
        >>> register_schemas()
        >>> with initialize_config_dir(config_dir="/path/to/conf", version_base="1.3"):
        ...     cfg = compose("config", overrides=["metric=val_accuracy"], return_hydra_config=True)
        >>> cfg.hydra.launcher.mode
        <Mode.max: 'max'>
    """
    from hydra.core.config_store import ConfigStore

    # replace=True: a second call re-registers the same function instead of raising.
    OmegaConf.register_new_resolver(MODE_RESOLVER, resolve_mode, replace=True)

    store = ConfigStore.instance()
    store.store(name="job_schema", node=JobConfig)
    # In their own group, so `model=...` and its error messages list only real models.
    store.store(group="schema/model", name="mlp", node=MLPConfig)
    store.store(group="schema/model", name="cnn", node=CNNConfig)
    store.store(group="schema/model", name="rnn", node=RNNConfig)
    store.store(group="schema/model", name="transfer", node=TransferConfig)
    store.store(group="schema/lr_schedule", name="lr_schedule", node=LRScheduleConfig)
    store.store(group="schema/data", name="data", node=DataConfig)
    store.store(group="schema/augmentation", name="augmentation", node=AugmentationConfig)
    store.store(group="schema/optimizer", name="adam", node=AdamConfig)
    store.store(group="schema/optimizer", name="adamw", node=AdamWConfig)
    store.store(group="schema/optimizer", name="sgd", node=SGDConfig)
    store.store(group="schema/optimizer", name="rmsprop", node=RMSpropConfig)
    store.store(group="schema/storage", name="storage", node=StorageConfig)
