"""TensorBoard events with TensorFlow's own ``tf.summary`` (TensorFlow and Keras on tensorflow)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from framework_arena.trainers.events import EventLog


class TfEvents(EventLog):
    """Scalars with ``tf.summary.scalar``, histograms with ``tf.summary.write`` (the histogram plugin's
    format, 30 buckets as ``tf.summary.histogram``), the graph with ``tf.summary.graph``.

    Args:
        variables: the named trainable variables, read at each epoch end.
        forward: the inference-mode forward pass, traced once as a ``tf.function`` for the graph.
        input_shape: one sample's shape (the graph takes any batch size).
    """

    tool = "tf.summary"

    def __init__(
        self, logdir: str, variables: Callable[[], Iterable[tuple[str, Any]]], forward: Callable[[tf.Tensor], tf.Tensor], input_shape: Sequence[int]
    ) -> None:
        super().__init__(logdir)
        # tf.summary.scalar imports TensorBoard's summary ops on first use (1.7 s at a load average
        # of 14 on 2 cores, 2026-11-30): done here, before training, not at the first epoch's end.
        import tensorboard.summary  # noqa: F401

        self.writer = tf.summary.create_file_writer(logdir)
        self.variables = variables
        self.forward = forward
        self.input_shape = tuple(input_shape)

    def _scalar(self, tag: str, value: float, step: int) -> None:
        with self.writer.as_default():
            tf.summary.scalar(tag, value, step=step)

    def _histograms(self, step: int) -> int:
        # tf.summary.write with the histogram plugin's own metadata and layout ([left, right, count]
        # per bucket), the buckets counted in numpy: tf.summary.histogram builds them with eager
        # ops, 0.5-3.5 s per epoch for the mlp's six weights at a load average of 20 (2026-11-30),
        # 0.08-0.13 s this way; under a tf.function the first trace took 15.7 s.
        from tensorboard.plugins.histogram.metadata import create_summary_metadata

        n = 0
        with self.writer.as_default():
            for name, v in self.variables():
                values = np.asarray(v, dtype=np.float64).ravel()
                counts, edges = np.histogram(values, bins=30)
                buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
                tf.summary.write(
                    name.replace(":", "_"), tf.constant(buckets, tf.float64), step=step, metadata=create_summary_metadata(display_name=None, description=None)
                )
                n += 1
        return n

    def _graph(self, example: np.ndarray) -> bool:
        fn = tf.function(self.forward, input_signature=[tf.TensorSpec([None, *self.input_shape], tf.float32, name="x")], autograph=False)
        with self.writer.as_default():
            tf.summary.graph(fn.get_concrete_function().graph)
        return True

    def _close(self) -> None:
        self.writer.close()
