"""The ``tf.data`` pipeline over a streamed split, shared by low-level TensorFlow and Keras on tensorflow.

Blocks of rows (``shards.Blocks``: about 4 MiB each, within one shard) are read in parallel
(``num_parallel_calls=AUTOTUNE``; one ``numpy_function`` per block gathers its rows from the
memory-mapped shard), kept in order (``deterministic=True``: the shared order), cut into batches
by ``rebatch`` (the sizes cycle once per epoch, so no batch spans two epochs) and prefetched
(``AUTOTUNE``): Keras' input (:func:`block_dataset`). Low-level TensorFlow's eager loop cuts the
blocks in Python instead (:func:`block_batches`). The order is the shared plan's rather than
``Dataset.shuffle().batch()``'s, whose buffer-based shuffle no other framework could reproduce.

Why blocks: a ``numpy_function`` call per batch (each holding the GIL, each handed over by
``tf.data``) made streamed training half as fast as in memory (bench/input_pipeline.py: 0.50).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow as tf

from framework_arena import shards


def _read_blocks(split: shards.StreamedSplit, batch_size: int, seed: int, epochs: Sequence[int]) -> tuple[shards.Blocks, tf.data.Dataset]:
    """The epochs' blocks, and a pipeline of their rows ``(x, y)``, read in parallel and in order."""
    blocks = split.blocks(batch_size, seed, epochs)
    x_shape = [None, *split.sample_shape]

    def read(block: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(blocks.read, [block], (tf.float32, tf.int64), stateful=False)
        return tf.ensure_shape(x, x_shape), tf.ensure_shape(y, [None])

    return blocks, tf.data.Dataset.from_tensor_slices(blocks.table).map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def block_dataset(split: shards.StreamedSplit, batch_size: int, seed: int, epochs: Sequence[int]) -> tf.data.Dataset:
    """The batches of the 0-based ``epochs`` of ``split``, end to end, as one ``tf.data`` pipeline (Keras' input)."""
    blocks, pipeline = _read_blocks(split, batch_size, seed, epochs)
    pipeline = pipeline.rebatch(np.asarray(blocks.batch_sizes, np.int64))
    # rebatch's cardinality is unknown: Keras would read past the end, warn "Your input ran out of
    # data" and only then know the epoch's steps. Stated here, and checked by tf.data as it runs.
    pipeline = pipeline.apply(tf.data.experimental.assert_cardinality(len(blocks.batch_sizes) * len(epochs)))
    return pipeline.prefetch(tf.data.AUTOTUNE)


def block_batches(split: shards.StreamedSplit, batch_size: int, seed: int, epochs: Sequence[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The same batches as :func:`block_dataset`, as numpy arrays cut from the blocks in Python.

    For a loop that calls its train step eagerly (low-level TensorFlow): ``tf.data`` still reads
    the blocks in parallel and ahead, but the loop pulls one block (about 64 batches of the default
    MLP) from the iterator instead of one batch, and slices it as the in-memory loop slices its
    arrays. Pulling every batch through ``rebatch`` cost an eager iterator call per step: streamed
    training ran at 0.86 of in memory (bench/input_pipeline.py --quick).
    """
    blocks, pipeline = _read_blocks(split, batch_size, seed, epochs)
    arrays: Any = ((x.numpy(), y.numpy()) for x, y in pipeline.prefetch(tf.data.AUTOTUNE))
    return shards.rebatch(arrays, list(blocks.batch_sizes) * len(epochs), np.concatenate)
