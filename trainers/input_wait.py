"""How long training waits for its input: the seconds the consumer of the training batches spends blocked on
the pipeline's next batch, which ThroughputLogger (trainers/callbacks.py) turns into each epoch's
`input_wait_fraction` (that wait over the training part of the epoch).

    clock = InputWaitClock()
    model.fit(clock.timed(order.every_epoch()), ...)   # clock.seconds(): the wait so far

Why measured inside tf.data. In Keras 3 the batch is taken from the iterator inside the compiled train function
(`iterator.get_next()` in the same graph as the step), so no callback can tell waiting from computing: the time
between on_train_batch_begin and _end holds both, and the time between batches holds neither. Feeding Keras a
Python generator that times `next()` would replace the pipeline by `from_generator` (one Python thread, the GIL)
and change the speed it measures. `tf.data.experimental.StatsOptions` and its latency stats are gone from TF 2.x.
The TF profiler's input-pipeline analysis is the reference, but it traces a few steps, not every epoch. So the
timing goes at the very end of the pipeline, as two stages that run in the consumer's own `GetNext` call:

    zip(clock, batches): reads the clock when the consumer asks, then blocks on the pipeline's next batch
    map(record):         adds (now - that reading) to the wait and passes the batch on unchanged

Both are synchronous and per batch, after the pipeline's own prefetch, so the pipeline's speed is not changed:
a batch waiting in the prefetch buffer counts about 0, a pipeline slower than the model the whole gap. The clock
is Python's `time.perf_counter` through `tf.numpy_function` (`tf.timestamp` is refused under op determinism,
trainer.deterministic, the default). What it adds to a step: ~0.4 ms per batch measured on a loaded 2-core CPU
(`python -m bench.input_wait --clock-cost`), under 1 % of the benchmark CNN's ~100 ms step there, more of a
few-ms GPU step; under MirroredStrategy it is paid off the step's path (below). trainer.time_input_wait=false
leaves the clock out.

Who the consumer is: with the default strategy, the train function itself. Under MirroredStrategy, Keras gives
the dataset to `experimental_distribute_dataset`, whose multi-device iterator pulls global batches on a host
thread into a buffer of one batch per replica, which the train function reads: that thread asks for the next
batch when a replica's buffer has room, i.e. when training took one, so over an epoch its wait is the train
function's wait, give or take one step's.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import tensorflow as tf


class InputWaitClock:
    def __init__(self):
        self._seconds = 0.0
        self._lock = threading.Lock()  # tf.data may run the pipelines of two fits' iterators at once

    def seconds(self) -> float:
        """Seconds spent waiting for training batches since this clock was made."""
        with self._lock:
            return self._seconds

    @staticmethod
    def _now() -> np.ndarray:
        return np.float64(time.perf_counter())

    def _add(self, asked_at: np.ndarray) -> np.ndarray:
        waited = time.perf_counter() - float(asked_at)
        with self._lock:
            self._seconds += waited
        return np.float64(waited)

    def timed(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """`batches` as they are, each one's wait added to the clock when the consumer takes it."""
        asked = tf.data.Dataset.from_tensors(tf.constant(0, tf.int8)).repeat().map(
            lambda _: tf.numpy_function(self._now, [], tf.float64, stateful=True))

        def record(asked_at, batch):
            waited = tf.numpy_function(self._add, [asked_at], tf.float64, stateful=True)
            with tf.control_dependencies([waited]):
                return tf.nest.map_structure(tf.identity, batch)

        # zip's cardinality is the batches' own (the clock repeats forever): Keras' step count is unchanged.
        timed = tf.data.Dataset.zip((asked, batches)).map(record)
        options = tf.data.Options()
        # tf.data would otherwise put a prefetch after this last, synchronous map: the clock would then time a
        # background thread filling that buffer, not the consumer. The pipeline has its own prefetch before it.
        options.experimental_optimization.inject_prefetch = False
        return timed.with_options(options)
