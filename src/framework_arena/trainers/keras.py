"""Keras 3: a functional ``keras.Model`` trained with ``model.fit`` on the tensorflow, torch or jax back end.

Keras fixes its back end at the first ``import keras``, so the runner sets ``KERAS_BACKEND`` in a
fresh process before importing this module; :meth:`KerasTrainer.setup` checks that it did.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Mapping

import keras
import numpy as np

from framework_arena import data as data_lib
from framework_arena import names, shards
from framework_arena.contracts import Callback, ModelExport
from framework_arena.data import Dataset
from framework_arena.layers import Embedding, Residual
from framework_arena.trainers._keras_layers import build_model
from framework_arena.trainers.base import EVAL_BATCH_SIZE, TENSORFLOW_DISTS, NameMap, Stopwatch, Trainer, end_epoch, pin
from framework_arena.trainers.events import EventLog, ProtoEvents

#: keras.optimizers by name, each called with the ``optim`` config. Keras adds epsilon to sqrt(v)
#: before the bias correction, PyTorch after it: equal settings, slightly different placement
#: (Keras' effective epsilon is eps / sqrt(1 - beta2**t)).
OPTIMIZERS = NameMap(
    "optim.name",
    names.OPTIMIZERS,
    {
        "adam": lambda o: keras.optimizers.Adam(learning_rate=o["lr"], beta_1=o["beta1"], beta_2=o["beta2"], epsilon=o["eps"], amsgrad=False),
        "adamw": lambda o: keras.optimizers.AdamW(
            learning_rate=o["lr"], weight_decay=o["weight_decay"], beta_1=o["beta1"], beta_2=o["beta2"], epsilon=o["eps"], amsgrad=False
        ),
        "sgd": lambda o: keras.optimizers.SGD(learning_rate=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"]),
    },
)

#: The pinned distributions an exported model needs besides keras, per back end.
BACKEND_REQUIREMENTS = NameMap(
    "framework.backend",
    names.KERAS_BACKENDS,
    {"tensorflow": lambda: [pin(*TENSORFLOW_DISTS)], "torch": lambda: [pin("torch")], "jax": lambda: [pin("jax"), pin("jaxlib")]},
)


def _optimizer(optim: Mapping[str, Any], dense_gradients: bool = False) -> keras.optimizers.Optimizer:
    """The optimizer ``optim`` names (bench/_bare.py compiles its baseline with it too).

    ``dense_gradients`` (an embedding on the tensorflow back end): the gradient of an embedding
    lookup is a ``tf.IndexedSlices`` with one row per token *occurrence*, and Keras' TF optimizers
    apply it row by row, so Adam squares each occurrence's gradient instead of the summed one: a
    token seen twice in a batch moves differently than in torch, jax or low-level TF (transformer
    loss after one step 1.325 against 1.289 everywhere else). Densified first, it is the same Adam.
    """
    optimizer = OPTIMIZERS[optim["name"]](optim)
    if dense_gradients:
        import tensorflow as tf

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
            return type(optimizer).apply(optimizer, grads, trainable_variables)

        optimizer.apply = apply  # the instance only: the saved config stays the stock optimizer's
    return optimizer


def _has_embedding(layers: Any) -> bool:
    return any(isinstance(layer, Embedding) or (isinstance(layer, Residual) and _has_embedding(layer.body)) for layer in layers)


class _Reporter(keras.callbacks.Callback):
    """Forwards Keras' epoch logs and timings to our :class:`Callback`."""

    # Keeps Keras' asynchronous batch-end dispatch on torch/jax (the default when no callback
    # overrides on_train_batch_end): the batch-end hook only counts and takes timestamps. It then
    # runs in Keras' thread pool once the step's logs are computed (so the step has finished: no
    # further device sync is needed), possibly out of order; on_epoch_end waits for them all.
    async_safe = True

    def __init__(self, callback: Callback, stopwatch: Stopwatch, sizes: list[int], log_every: int) -> None:
        super().__init__()
        self.callback, self.stopwatch, self.sizes, self.log_every = callback, stopwatch, sizes, log_every
        self.steps = len(sizes)
        self.epoch = 0
        self.last_step_end = 0.0
        self.lock = threading.Lock()
        self.signatures: dict[int, int] = {}  # step -> batch signature, when the data is streamed

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if batch == 0:
            self.stopwatch.epoch_start()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        with self.lock:
            self.stopwatch.step_end(self.sizes[batch])
            if batch == self.steps - 1:
                self.last_step_end = self.stopwatch.clock()
        if logs and "batch_signature" in logs:
            self.signatures[batch] = int(round(float(logs["batch_signature"])))
        step = self.epoch * self.steps + batch + 1
        if self.log_every and step % self.log_every == 0 and logs:
            # Keras' batch-end loss is already the running mean of the epoch.
            self.callback.on_step_end(step, {"train/loss_running": float(logs["loss"])})

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = logs or {}
        timing = self.stopwatch.epoch_end(now=self.last_step_end)
        if self.signatures:
            timing["input/order_crc"] = shards.order_crc([self.signatures[b] for b in sorted(self.signatures)])
            self.signatures = {}
        # fit has validated already (validation_data): the figures are only read from its logs.
        end_epoch(self.callback, epoch + 1, logs["loss"], logs["accuracy"], timing, lambda: (logs["val_loss"], logs["val_accuracy"]))


class _Batches(keras.utils.PyDataset):
    """One epoch's batches of a sharded dataset as a Keras ``PyDataset``: item ``i`` is batch ``i``.

    Keras' own supported way to stream from Python on torch and jax (on tensorflow the trainer
    gives fit a ``tf.data`` pipeline: :meth:`KerasTrainer.py_dataset`). ``workers`` threads read
    batches ahead; Keras' ordered enqueuer keeps their order.
    """

    def __init__(self, batches: shards.EpochBatches, workers: int) -> None:
        super().__init__(workers=max(1, workers), use_multiprocessing=False, max_queue_size=8)
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batches[index]


class _BatchSignature(keras.metrics.Metric):
    """``shards.batch_signature`` of the labels of the batch just trained on, computed inside the step.

    What Keras really fed the model, in the order it did: the reporter turns the per-step values
    into the epoch's ``input/order_crc``, which the other frameworks compute on their own batches.
    """

    def __init__(self, name: str = "batch_signature") -> None:
        super().__init__(name=name)
        self.value = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="value")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "float32")
        position = keras.ops.cast(keras.ops.mod(keras.ops.arange(keras.ops.shape(y)[0]), 97) + 1, "float32")
        self.value.assign(keras.ops.sum((y + 1.0) * position))

    def result(self) -> Any:
        return self.value

    def reset_state(self) -> None:
        self.value.assign(0.0)


class KerasTrainer(Trainer):
    framework = "keras"

    model: keras.Model
    # Keras' name for keras.device(). Plain "cpu", not "cpu:0": on torch, Keras 3.15 creates each
    # variable as Parameter(...).to(device), and .to("cpu:0") copies it into a non-leaf tensor
    # that never receives gradients ("No gradients provided for any variable").
    _device: str = "cpu"
    _gpu = False

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return keras.device(self._device)

    def _check_backend(self) -> None:
        if self.backend not in names.KERAS_BACKENDS:
            raise ValueError(f"Expected framework.backend in {names.KERAS_BACKENDS}. Received: framework.backend={self.backend!r}")
        actual = keras.backend.backend()
        if actual != self.backend:
            raise RuntimeError(
                f"Keras runs on the {actual!r} back end but framework.backend={self.backend!r} was requested: "
                f"set KERAS_BACKEND={self.backend} before the first `import keras`, in a fresh process per back end"
            )

    def _set_threads(self, threads: int) -> None:
        if self.backend == "tensorflow":
            import tensorflow as tf  # thread pools are a TF runtime setting Keras does not expose

            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError as err:  # the TF runtime already started in this process
                raise RuntimeError(f"Cannot set TensorFlow threads={threads}: call setup() before any op runs ({err})") from err
        elif self.backend == "torch":
            import torch  # Keras has no thread setting; torch's intra-op pool is what matters

            torch.set_num_threads(threads)
        # jax: XLA has no runtime thread setting; only XLA_FLAGS read at import can limit it (the runner's job).

    def _gpu_available(self) -> bool:
        if self.backend == "torch":
            import torch  # keras.distribution.list_devices is not implemented for torch

            return torch.cuda.is_available()
        return any(d.startswith("gpu") for d in keras.distribution.list_devices())

    def _jit_compile(self) -> bool | str:
        # jax runs only under jax.jit ("auto" resolves to True there); eager jax is no baseline.
        if self.backend == "jax":
            return "auto"
        return bool(self.settings.compile)

    def setup(self) -> dict[str, str]:
        self._check_backend()
        s = self.settings
        self._set_threads(s.threads)  # first: TF refuses once its runtime has started
        keras.utils.set_random_seed(s.seed)
        # Mixed precision: layers compute in bf16 and keep float32 weights; set before building.
        keras.config.set_dtype_policy("mixed_bfloat16" if s.precision == "bf16" else "float32")
        gpu = self._use_gpu(self._gpu_available, f"is a GPU build of {self.backend} installed?")
        self._device = "gpu:0" if gpu else "cpu"
        self._gpu = gpu
        if self.backend == "jax":
            mode = "xla"  # keras on jax always compiles with XLA
        else:
            mode = ("torch.compile" if self.backend == "torch" else "xla") if s.compile else "off"
        return {"framework_version": keras.__version__, "device": "cuda:0" if gpu else "cpu", "precision": s.precision, "compile": mode}

    def _build(self) -> int:
        self._check_backend()
        spec = self.spec
        with self._scope():
            self.model = build_model(spec, self.weights)
            self.model.compile(
                optimizer=_optimizer(self.settings.optim, self.backend == "tensorflow" and _has_embedding(spec.layers)),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), *([_BatchSignature()] if self.settings.streamed else [])],
                jit_compile=self._jit_compile(),
            )
        return sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)

    def py_dataset(self, split: shards.StreamedSplit, epoch: int) -> Any:
        """The 0-based epoch's batches as the input ``model.fit`` takes on this back end.

        On tensorflow, the ``tf.data`` pipeline of low-level TensorFlow (``_tf_data``): Keras'
        compiled train function then pulls batches inside the graph, as it does from in-memory
        arrays (a ``tf.data`` pipeline from tensors), where a ``PyDataset`` would go through
        ``from_generator`` and Python threads per batch. On torch and jax, which have no
        ``tf.data``, a ``PyDataset`` with ``data.workers`` threads.
        """
        s = self.settings
        if self.backend == "tensorflow":
            from framework_arena.trainers._tf_data import block_dataset

            return block_dataset(split, s.batch_size, s.seed, [epoch])
        return _Batches(split.batches(s.batch_size, s.seed, epoch), s.input_workers)

    def input_pipeline(self, split: shards.StreamedSplit, epoch: int) -> Any:
        if self.backend == "tensorflow":
            return iter(self.py_dataset(split, epoch))
        # The adapter model.fit wraps a PyDataset in, with its worker threads (Keras has no public iterator).
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        return PyDatasetAdapter(self.py_dataset(split, epoch)).get_numpy_iterator()

    def _fit_streamed(self, data: Dataset, callback: Callback) -> None:
        s = self.settings
        n = len(data.train)
        plan = data.train.batches(s.batch_size, s.seed, 0).plan
        stopwatch = self._stopwatch(n)
        reporter = _Reporter(callback, stopwatch, plan.sizes(), s.log_every_n_steps)
        with self._scope():
            for epoch in range(s.epochs):
                # One fit call per epoch, each on that epoch's input (the shared order: fit must not shuffle).
                self.model.fit(
                    self.py_dataset(data.train, epoch),
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    validation_data=(data.val.x, data.val.y),
                    validation_batch_size=EVAL_BATCH_SIZE,
                    shuffle=False,
                    callbacks=[reporter],
                    verbose=0,
                )
        callback.on_train_end(stopwatch.end_logs())

    def fit(self, data: Dataset, callback: Callback) -> None:
        if data.streamed:
            return self._fit_streamed(data, callback)
        s = self.settings
        x, y = data.train.x, data.train.y
        n = len(y)
        sizes = [min(s.batch_size, n - i) for i in range(0, n, s.batch_size)]
        stopwatch = self._stopwatch(n)  # no sync: the batch-end hooks see finished steps
        reporter = _Reporter(callback, stopwatch, sizes, s.log_every_n_steps)
        with self._scope():
            for epoch in range(s.epochs):
                # One fit call per epoch, on numpy arrays in the shared order: Keras' array adapter
                # batches natively (on tensorflow a tf.data pipeline from tensors). A PyDataset
                # stream of the same batches cost 16% of the throughput on the tensorflow back end
                # (bench/overhead.py); the order is ours, so fit must not shuffle.
                order = data_lib.epoch_order(n, s.seed, epoch)
                self.model.fit(
                    x[order],
                    y[order],
                    batch_size=s.batch_size,
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    validation_data=(data.val.x, data.val.y),
                    validation_batch_size=EVAL_BATCH_SIZE,
                    shuffle=False,
                    callbacks=[reporter],
                    verbose=0,
                )
        callback.on_train_end(stopwatch.end_logs())

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        with self._scope():
            logs = self.model.evaluate(x, y, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True)
        return float(logs["loss"]), float(logs["accuracy"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._scope():
            return np.asarray(self.model.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0))

    def forward_train(self, x: np.ndarray) -> np.ndarray:
        with self._scope():
            return keras.ops.convert_to_numpy(self.model(x, training=True))

    def inference_fn(self) -> Callable[[np.ndarray], Any]:
        model = self.model
        # predict_on_batch runs the compiled predict function on one batch, without predict()'s
        # per-call data adapter and callbacks; it returns numpy, so the work is done.
        return lambda xb: model.predict_on_batch(xb)

    def summary(self) -> str:
        lines: list[str] = []
        self.model.summary(print_fn=lambda text, line_break=True: lines.append(str(text)), line_length=110)
        return "\n".join(lines).rstrip() + "\n"

    def event_log(self, logdir: str) -> EventLog:
        model = self.model
        if self.backend == "tensorflow":
            from framework_arena.trainers._tf_events import TfEvents

            return TfEvents(logdir, lambda: ((w.path, w.value) for w in model.trainable_weights), lambda x: model(x, training=False), self.spec.input_shape)
        if self.backend == "torch":
            from framework_arena.trainers._torch_events import TorchEvents

            return TorchEvents(logdir, lambda: ((w.path, w.value) for w in model.trainable_weights))
        return ProtoEvents(logdir, lambda: {w.path: keras.ops.convert_to_numpy(w) for w in model.trainable_weights})

    def gpu_peak_mem_mb(self) -> float | None:
        if not self._gpu:
            return None
        if self.backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20

    def export(self) -> ModelExport:
        # The .keras file holds numpy weights and a back-end-neutral config: it loads under any back
        # end, but a fresh process needs KERAS_BACKEND (default tensorflow) and that back end installed.
        return ModelExport(
            flavor="keras",
            model_kwarg="model",
            model=self.model,
            pip_requirements=[f"keras=={keras.__version__}", *BACKEND_REQUIREMENTS[self.backend]()],
            extra={"save_exported_model": False},
        )
