"""The training split's batches in an order that depends on the job's seed and the epoch's number only.

A job resumed in the middle of epoch k (a state saved after step s: trainer.save_every_steps, or on SIGTERM)
must see epoch k's batches in the order the interrupted process saw them and skip the s it trained on. A
`shuffle(seed=..., reshuffle_each_iteration=True)` gives each epoch the next order of the process's own
sequence: a new process starts that sequence again, so its epoch k would be shuffled as epoch 1 was. Here
epoch k is shuffled with a seed made of (seed, k): the same in every process, on every node.

    order = TrainingOrder(examples, num_examples, global_batch_size, shuffle_buffer, seed)
    model.fit(order.every_epoch(), callbacks=[...set_epoch(epoch + 1) in on_epoch_begin...])
    model.fit(order.rest_of_epoch(k, s), epochs=k, initial_epoch=k - 1)   # a resumed epoch's remaining batches

`every_epoch()` reads the epoch number from a variable each time Keras starts the epoch's iteration (after
`on_epoch_begin`, where trainers/callbacks.py StepState sets it), so one `fit` covers many epochs, each with
its own order, and the dataset's size stays known (Keras' progress bar, no "ran out of data").
"""

from __future__ import annotations

import math

import tensorflow as tf

from .sharding import AutoShardPolicy, with_policy

# tf.data refuses a tensor seed when the graph's seed is 0: the order's functions set a graph seed of
# their own (1 + the job's seed), the epoch's number is the op's.
_MAX_SEED = 2**31 - 1


class TrainingOrder:
    def __init__(self, examples: tf.data.Dataset, size: int, batch_size: int, shuffle_buffer: int | None, seed: int):
        """`examples`: the training split, one example per element (cached already if asked)."""
        self.examples, self.size, self.batch_size = examples, size, batch_size
        self.buffer = min(shuffle_buffer, size) if shuffle_buffer else 0
        self.seed = int(seed)
        self.steps = max(1, math.ceil(size / batch_size))
        with tf.device("/cpu:0"):  # read by tf.data, which runs on the CPU
            self._epoch = tf.Variable(1, dtype=tf.int64, trainable=False, name="training_epoch")

    def set_epoch(self, epoch: int) -> None:
        """The epoch (counted from 1) whose order `every_epoch()`'s next iteration gives."""
        self._epoch.assign(epoch)

    def _batches(self, epoch: tf.Tensor, skip: int) -> tf.data.Dataset:
        examples = self.examples
        if self.buffer:
            tf.random.set_seed(self.seed % (_MAX_SEED - 1) + 1)  # this function's graph only
            examples = examples.shuffle(self.buffer, seed=epoch, reshuffle_each_iteration=False)
        # Skipping examples, not batches: the same batches, without batching those skipped.
        return examples.skip(skip * self.batch_size).batch(self.batch_size)

    def epoch_batches(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """Epoch `epoch`'s batches after its first `skip`, as `every_epoch()` gives them for that epoch."""
        start = tf.data.Dataset.from_tensors(tf.constant(epoch, tf.int64))
        batches = start.flat_map(lambda number: self._batches(number, skip))
        return _sized(batches, self.steps - skip)

    def every_epoch(self) -> tf.data.Dataset:
        """One epoch's batches per iteration, in the order of the epoch `set_epoch` named last."""
        batches = tf.data.Dataset.from_tensors(0).flat_map(lambda _: self._batches(self._epoch.read_value(), 0))
        return _sized(batches, self.steps)

    def rest_of_epoch(self, epoch: int, skip: int) -> tf.data.Dataset:
        """What a job resumed after step `skip` of epoch `epoch` trains on to end that epoch."""
        if not 0 <= skip < self.steps:
            raise ValueError(f"step {skip} is not within an epoch of {self.steps} steps")
        return self.epoch_batches(epoch, skip)


def _sized(batches: tf.data.Dataset, count: int) -> tf.data.Dataset:
    # DATA: the flat_map hides the examples' source from tf.data's auto-shard rewrite (trainers/sharding.py).
    sized = batches.apply(tf.data.experimental.assert_cardinality(count)).prefetch(tf.data.AUTOTUNE)
    return with_policy(sized, AutoShardPolicy.DATA)
