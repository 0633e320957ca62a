"""How a distribution strategy splits a job's datasets among its input pipelines: the tf.data auto-shard policy,
set on purpose for every dataset the job feeds to Keras.

Under MirroredStrategy on one machine (the GPUs of a trial, or logical CPU devices) there is one input pipeline:
`experimental_distribute_dataset` rebatches each global batch into one part per replica, and the policy is not
used. It decides what each worker reads under a multi-worker strategy, whose default AUTO tries FILE (each worker
reads its own files, found by tf.data's rewrite at a file-reader source such as TFRecordDataset), logs a warning
and falls back to DATA when there are no such files.

    DATA  every dataset built from examples in memory (numpy splits through from_tensor_slices), from a list of
          file paths read in a map (image folders: tf.data sees a list of strings, not a file reader), or cut
          from a series (time series): each worker runs the pipeline and keeps its share of the elements.
          Also the training order (trainers/epoch_order.py): its batches come out of a flat_map, which hides the
          source from the rewrite, whatever the loader chose.
    FILE  a loader whose source reads files (data=tfrecord, trainers/tfrecord.py) sets it on its own streams;
          `by_examples` leaves a policy a loader chose as it is.
"""

from __future__ import annotations

import tensorflow as tf

AutoShardPolicy = tf.data.experimental.AutoShardPolicy


def with_policy(dataset: tf.data.Dataset, policy: AutoShardPolicy) -> tf.data.Dataset:
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def by_examples(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` sharded by its elements (DATA), unless its source already chose a policy (FILE for files)."""
    if dataset.options().experimental_distribute.auto_shard_policy != AutoShardPolicy.AUTO:
        return dataset
    return with_policy(dataset, AutoShardPolicy.DATA)
