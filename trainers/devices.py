"""Device set-up, distribution strategy and mixed-precision policy.

Device settings are process-wide and fixed once TensorFlow's runtime starts, so `configure_devices`
runs before anything else touches TensorFlow.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from .schema import ConfigError

log = logging.getLogger(__name__)


def configure_devices(cpu_replicas: int | None) -> None:
    """Grow GPU memory on demand (several trials can share a GPU) and split the CPU into logical
    devices when asked, so MirroredStrategy gets real replicas without a GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if cpu_replicas and not gpus:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    except RuntimeError as error:
        # The runtime already started in this process: acceptable only if it matches what we need.
        have = len(tf.config.list_logical_devices("CPU"))
        if cpu_replicas and not gpus and have != cpu_replicas:
            raise ConfigError(
                f"distribution.cpu_replicas={cpu_replicas}, but TensorFlow already started in this "
                f"process with {have} CPU device(s); run each job in its own process."
            ) from error


def build_strategy(cpu_replicas: int | None) -> tf.distribute.Strategy:
    """MirroredStrategy over every visible GPU when there are several, over the logical CPU devices
    when the CPU was split, otherwise the default single-device strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in gpus])
    if not gpus and cpu_replicas and cpu_replicas > 1:
        cpus = tf.config.list_logical_devices("CPU")[:cpu_replicas]
        return tf.distribute.MirroredStrategy([device.name for device in cpus])
    return tf.distribute.get_strategy()


def resolve_precision(precision: str) -> str:
    """`auto` is mixed_float16 when every visible GPU has tensor cores (compute capability >= 7.0)."""
    if precision != "auto":
        return str(precision)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "float32"
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) for gpu in gpus]
    return "mixed_float16" if all(cap >= (7, 0) for cap in capabilities) else "float32"


def apply_precision(precision: str) -> str:
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
