"""Low-level TensorFlow: tf.Variables in a tf.Module, tf.nn ops, GradientTape and a tf.function step.

No Keras anywhere: the layers, the loss and the optimizer (``_tf_optim``) are written out with
``tf.nn`` / ``tf.linalg`` ops, as in the article's "low-level TensorFlow" column.
"""

from __future__ import annotations

import itertools
import random
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from framework_arena import data as d
from framework_arena import models as m
from framework_arena import shards
from framework_arena.contracts import Callback, ModelExport
from framework_arena.trainers._tf_data import block_batches
from framework_arena.trainers._tf_layers import forward, variables
from framework_arena.trainers._tf_optim import make_optimizer
from framework_arena.trainers.base import EVAL_BATCH_SIZE, TENSORFLOW_DISTS, RunningLoss, Trainer, end_epoch, pin
from framework_arena.trainers.events import EventLog


class _Net(tf.Module):
    """The spec's layers as tf.Variables (Keras layout is TF's own: no transposes).

    With ``compute_dtype=tf.bfloat16`` (mixed precision) the variables stay float32 and are cast
    for the forward pass, whose logits come back as float32 for the loss.
    """

    def __init__(self, spec: m.ModelSpec, weights: Sequence[Sequence[Any]], compute_dtype: tf.DType = tf.float32) -> None:
        super().__init__(name=spec.name)
        self._spec = spec
        self._dtype = compute_dtype
        self.params = variables(spec.layers, spec.shapes, weights)

    def _cast(self, v: Any) -> tf.Tensor:
        return v if self._dtype == tf.float32 else tf.cast(v, self._dtype)

    def forward(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        spec = self._spec
        # Token ids stay float32 into an embedding: bfloat16 holds integers exactly only up to 256.
        tokens = isinstance(spec.layers[0], m.Embedding)
        logits = forward(spec.layers, spec.shapes, self.params, x if tokens else self._cast(x), training, self._cast)
        return logits if self._dtype == tf.float32 else tf.cast(logits, tf.float32)


def _serving_module(net: _Net, input_shape: Sequence[int]) -> tf.Module:
    """A module whose ``__call__`` is the inference-mode forward pass for any batch size.

    MLflow's tensorflow flavor saves a tf.Module with ``tf.saved_model.save`` and its pyfunc
    calls the loaded object, so ``__call__`` must be a tf.function; the input shape is only
    known per spec, hence the class is made here.
    """

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="serving")
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32, name="x")], autograph=False)
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return self.net.forward(x, training=False)

    return Serving()


class TensorFlowTrainer(Trainer):
    framework = "tensorflow"
    _gpu = False

    def setup(self) -> dict[str, str]:
        s = self.settings
        # Threads and visible devices can only change before the TF runtime starts, which is why
        # the runner gives each trial a fresh process; a second trainer in one process (tests)
        # with another count keeps the first one rather than failing.
        try:
            tf.config.threading.set_intra_op_parallelism_threads(s.threads)
            tf.config.threading.set_inter_op_parallelism_threads(s.threads)
        except RuntimeError as err:
            warnings.warn(f"trainer.threads={s.threads} ignored: TensorFlow already runs in this process ({err})", stacklevel=2)
        gpus = tf.config.list_physical_devices("GPU")
        self._gpu = self._use_gpu(lambda: bool(gpus), "tensorflow-cpu, or no CUDA libraries: tensorflow[and-cuda] installs them")
        if gpus and not self._gpu:
            tf.config.set_visible_devices([], "GPU")
        random.seed(s.seed)
        np.random.seed(s.seed)
        tf.random.set_seed(s.seed)
        if self._gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
        return {
            "framework_version": tf.__version__,
            "device": "gpu:0" if self._gpu else "cpu",
            "precision": s.precision,
            "compile": "xla" if s.compile else "off",
        }

    def _build(self) -> int:
        spec = self.spec
        self.net = _Net(spec, self.weights, tf.bfloat16 if self.settings.precision == "bf16" else tf.float32)
        self.serving = _serving_module(self.net, spec.input_shape)
        variables = self.net.trainable_variables
        self.optimizer = make_optimizer(self.settings.optim, variables)
        x_spec = tf.TensorSpec([None, *spec.input_shape], tf.float32)
        y_spec = tf.TensorSpec([None], tf.int64)
        # A None batch axis: the last, smaller batch reuses the same graph instead of retracing.
        # Traced lazily in fit()/evaluate(), so speed/time_to_first_step_s includes the tracing.
        # framework.compile=true: XLA compiles the step (once per batch shape, at its first call).
        jit = bool(self.settings.compile)
        self._train_fn = tf.function(self._train_step_fn, input_signature=[x_spec, y_spec], autograph=False, jit_compile=jit)
        self._eval_fn = tf.function(self._eval_step_fn, input_signature=[x_spec, y_spec], autograph=False, jit_compile=jit)
        # Inference in the trained compile mode; the exported serving module stays a plain graph.
        self._predict_fn = tf.function(lambda x: self.net.forward(x, training=False), input_signature=[x_spec], autograph=False, jit_compile=jit)
        return sum(int(np.prod(v.shape)) for v in variables)

    def _train_step_fn(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.net.forward(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        self.optimizer.apply(tape.gradient(loss, variables))
        # Loss and logits come back as they are; the epoch's loss and accuracy are reduced once at
        # its end. Accumulating them in variables here added ops to every step: 6% of the step's
        # time on the 64-wide MLP (bench/overhead.py, harness_ratio).
        return loss, logits

    def _eval_step_fn(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = self.net.forward(x, training=False)
        loss_sum = tf.reduce_sum(tf.cast(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits), tf.float64))
        return loss_sum, tf.math.count_nonzero(tf.argmax(logits, axis=1) == y)

    @staticmethod
    def _loss_sum(losses: Sequence[tf.Tensor], sizes: Sequence[int]) -> float:
        """Sum of each step's mean loss times its batch size, in float64: one read-back."""
        return float(np.dot(tf.stack(losses).numpy().astype(np.float64), sizes))

    def dataset(self, split: shards.StreamedSplit, epochs: Sequence[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of the 0-based ``epochs`` of a streamed split, end to end: ``_tf_data.block_batches``.

        One pipeline for the whole fit: built per epoch, its map was traced again each time
        (0.1-0.4 s, inside the timed epochs past the first).
        """
        s = self.settings
        return block_batches(split, s.batch_size, s.seed, epochs)

    def input_pipeline(self, split: shards.StreamedSplit, epoch: int) -> Any:
        return self.dataset(split, [epoch])

    def _fit_streamed(self, data: d.Dataset, callback: Callback) -> None:
        s = self.settings
        n = len(data.train)
        losses: list[tf.Tensor] = []

        def sync() -> None:
            if losses:
                losses[-1].numpy()

        stopwatch = self._stopwatch(n, sync)
        train_step = self._train_fn.get_concrete_function()
        log_every = s.log_every_n_steps
        batches = iter(self.dataset(data.train, range(s.epochs)))
        steps = d.num_batches(n, s.batch_size)
        for epoch in range(1, s.epochs + 1):
            losses, sizes, signatures = [], [], []
            outputs: list[tf.Tensor] = []
            labels: list[tf.Tensor] = []
            correct = 0
            running = RunningLoss(callback, self._loss_sum)
            stopwatch.epoch_start()
            for xb, yb in itertools.islice(batches, steps):
                signatures.append(shards.batch_signature(yb))
                loss, logits = train_step(xb, yb)
                losses.append(loss)
                outputs.append(logits)
                labels.append(yb)
                sizes.append(len(yb))
                stopwatch.step_end(sizes[-1])
                if len(outputs) == 256:  # the accuracy is reduced in blocks: memory stays flat however long the epoch
                    correct += self._correct(outputs, labels)
                if log_every and stopwatch.step % log_every == 0:
                    running.report(stopwatch.step, losses, sizes)
            timing = {**stopwatch.epoch_end(), "input/order_crc": shards.order_crc(signatures)}
            correct += self._correct(outputs, labels)
            train_loss = self._loss_sum(losses, sizes) / n
            end_epoch(callback, epoch, train_loss, correct / n, timing, lambda: self.evaluate(data.val.x, data.val.y))
        callback.on_train_end(stopwatch.end_logs())

    @staticmethod
    def _correct(outputs: list[tf.Tensor], labels: list[tf.Tensor]) -> int:
        """Correct predictions in the kept steps' logits, which are then dropped."""
        if not outputs:
            return 0
        predicted = tf.argmax(tf.concat(outputs, axis=0), axis=1)
        count = int(tf.math.count_nonzero(predicted == tf.concat(labels, axis=0)))
        outputs.clear()
        labels.clear()
        return count

    def fit(self, data: d.Dataset, callback: Callback) -> None:
        if data.streamed:
            return self._fit_streamed(data, callback)
        s = self.settings
        x_train, y_train = data.train.x.astype(np.float32, copy=False), data.train.y.astype(np.int64, copy=False)
        n = len(y_train)
        losses: list[tf.Tensor] = []

        def sync() -> None:
            # Reading a value back is TF's only wait for the device: the step has really finished then.
            if losses:
                losses[-1].numpy()

        stopwatch = self._stopwatch(n, sync)
        train_step = None
        log_every = s.log_every_n_steps
        for epoch in range(1, s.epochs + 1):
            order = d.epoch_order(n, s.seed, epoch - 1)
            losses, outputs, sizes = [], [], []
            running = RunningLoss(callback, self._loss_sum)
            stopwatch.epoch_start()
            if train_step is None:
                # Calling the one concrete function skips tf.function's per-call dispatch (argument
                # binding, signature matching): about half the Python cost of a call, which matters
                # on small models. Traced here so the first epoch includes it, as a first call would.
                train_step = self._train_fn.get_concrete_function()
            # numpy batches go straight into the step: on digits this beat a per-epoch
            # tf.data.Dataset.from_tensor_slices(...).batch() pipeline (mlp 28 vs 36 ms/epoch, cnn 77
            # vs 149 ms), whose iterator costs more per batch and whose threads compete for the cores.
            for idx in d.batches(order, s.batch_size):
                loss, logits = train_step(x_train[idx], y_train[idx])
                losses.append(loss)
                outputs.append(logits)
                sizes.append(len(idx))
                stopwatch.step_end(len(idx))
                if log_every and stopwatch.step % log_every == 0:
                    running.report(stopwatch.step, losses, sizes)
            timing = stopwatch.epoch_end()
            train_loss = self._loss_sum(losses, sizes) / n
            predicted = tf.argmax(tf.concat(outputs, axis=0), axis=1).numpy()
            correct = int(np.count_nonzero(predicted == y_train[order]))
            end_epoch(callback, epoch, train_loss, correct / n, timing, lambda: self.evaluate(data.val.x, data.val.y))
        callback.on_train_end(stopwatch.end_logs())

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        x, y = x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)
        eval_step = self._eval_fn.get_concrete_function()
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), EVAL_BATCH_SIZE):
            batch_loss, batch_correct = eval_step(x[start : start + EVAL_BATCH_SIZE], y[start : start + EVAL_BATCH_SIZE])
            loss_sum += float(batch_loss)
            correct += int(batch_correct)
        return loss_sum / len(y), correct / len(y)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        parts = [self.serving(x[start : start + EVAL_BATCH_SIZE]).numpy() for start in range(0, len(x), EVAL_BATCH_SIZE)]
        return np.concatenate(parts) if parts else np.zeros((0, self.spec.num_classes), np.float32)

    def forward_train(self, x: np.ndarray) -> np.ndarray:
        return self.net.forward(tf.constant(x, tf.float32), training=True).numpy()

    def inference_fn(self) -> Callable[[np.ndarray], Any]:
        predict = self._predict_fn.get_concrete_function()
        return lambda xb: predict(xb).numpy()  # .numpy() waits for the result

    def summary(self) -> str:
        rows = [(v.name, str(tuple(v.shape)), v.dtype.name, "yes" if v.trainable else "no") for v in self.net.variables]
        widths = [max(len(r[i]) for r in [("variable", "shape", "dtype", "trainable"), *rows]) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [("variable", "shape", "dtype", "trainable"), *rows]]
        trainable = sum(int(np.prod(v.shape)) for v in self.net.trainable_variables)
        total = sum(int(np.prod(v.shape)) for v in self.net.variables)
        return (
            f"tf.Module {self.net.name!r}: {len(self.net.variables)} tf.Variables, in creation order\n\n"
            + "\n".join(lines)
            + f"\n\nTrainable parameters: {trainable:,}\nNon-trainable parameters: {total - trainable:,}\n"
        )

    def event_log(self, logdir: str) -> EventLog:
        from framework_arena.trainers._tf_events import TfEvents

        net = self.net
        return TfEvents(logdir, lambda: ((v.name, v) for v in net.trainable_variables), lambda x: net.forward(x, training=False), self.spec.input_shape)

    def gpu_peak_mem_mb(self) -> float | None:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if self._gpu else None

    def export(self) -> ModelExport:
        return ModelExport(flavor="tensorflow", model_kwarg="model", model=self.serving, pip_requirements=[pin(*TENSORFLOW_DISTS)], extra={})
