"""The Trainer interface and the harness every framework shares, written once.

A trainer lives in a fresh child process (see ``runner.py``) and imports only its own framework.
It builds the :class:`~framework_arena.models.ModelSpec` with the initial weights from
:func:`~framework_arena.models.init_weights`, trains it with the framework's idiomatic loop on the
batch order of :func:`~framework_arena.data.epoch_order`, and reports through a :class:`Callback`.
It never talks to MLflow: ``tracking/`` turns the callback's plain dicts into runs.

As in Keras 3 (``keras/src/trainers/trainer.py`` beside ``keras/src/backend/*/trainer.py``), the
framework modules hold only their framework's part: building, the step, evaluation, export. What
every trainer does the same way lives here: the parameter-count check (:meth:`Trainer.build`),
the device choice (:meth:`Trainer._use_gpu`), timing (:class:`Stopwatch`), the running loss
(:class:`RunningLoss`), the epoch logs (:func:`end_epoch`), the names a config may use
(:class:`NameMap`) and the pinned requirements of an exported model (:func:`pin`); the last four
live in ``harness.py`` and the Stopwatch in ``timing.py``, one job each.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from framework_arena.contracts import Callback, ModelExport
from framework_arena.data import Dataset, num_batches
from framework_arena.models import ModelSpec, count_params
from framework_arena.names import label
from framework_arena.trainers.events import EventLog
from framework_arena.trainers.harness import TENSORFLOW_DISTS, NameMap, RunningLoss, end_epoch, pin
from framework_arena.trainers.timing import MIN_WINDOW_STEPS, WINDOWS_PER_EPOCH, Stopwatch

__all__ = ["EVAL_BATCH_SIZE", "TENSORFLOW_DISTS", "NameMap", "RunningLoss", "Stopwatch", "TrainSettings", "Trainer", "end_epoch", "pin"]

#: Batch size for validation, test and prediction passes, the same in every framework.
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class TrainSettings:
    """The ``trainer`` and ``optim`` config groups, resolved (threads is a real count here)."""

    epochs: int
    batch_size: int
    seed: int
    threads: int
    device: str  # "auto" | "cpu" | "cuda"
    optim: Mapping[str, Any]  # name, lr, beta1, beta2, eps, weight_decay, momentum, nesterov
    warmup_steps: int | None = None  # steps left out of throughput; None: the whole first epoch
    precision: str = "fp32"  # "fp32" | "bf16" (mixed: bf16 compute, fp32 weights)
    compile: bool = False  # torch.compile / XLA (tf.function(jit_compile=True), Keras jit_compile)
    log_every_n_steps: int = 0  # on_step_end every n steps; 0: never
    input_workers: int = 0  # data.workers: the input pipeline's workers when the data is streamed (data=shards)
    streamed: bool = False  # the training split comes from disk through the framework's input pipeline


class Trainer(ABC):
    """One framework's way to build, train, evaluate and export the shared model spec.

    Args:
        spec: the architecture, shapes inferred.
        weights: initial weights per layer in the Keras layout (``models.init_weights``).
        settings: epochs, batch size, seed, threads, device and optimizer.
        backend: the Keras back end; ``None`` for the other frameworks.
    """

    #: The ``framework`` config name this trainer implements.
    framework: ClassVar[str]

    def __init__(self, spec: ModelSpec, weights: Sequence[Sequence[np.ndarray]], settings: TrainSettings, backend: str | None = None) -> None:
        self.spec = spec
        self.weights = weights
        self.settings = settings
        self.backend = backend

    @abstractmethod
    def setup(self) -> dict[str, str]:
        """Applies threads, seeds, device, precision and compile mode before anything runs.

        Returns:
            ``framework_version``, ``device`` (what is actually used, e.g. ``cpu``, ``cuda:0``),
            ``precision`` and ``compile`` (``off``, ``torch.compile`` or ``xla``: what really runs).
        """

    def build(self) -> int:
        """Builds the model from the spec, loads the initial weights and makes the optimizer.

        Returns:
            The number of trainable parameters.

        Raises:
            RuntimeError: the framework counts other than ``models.count_params(spec)``: a layer
                was translated into something else than the spec describes.
        """
        count = self._build()
        expected = count_params(self.spec)
        if count != expected:
            raise RuntimeError(
                f"Expected the {self.label} {self.spec.name} to have models.count_params(spec)={expected} trainable parameters. Received: {count}"
            )
        return count

    @abstractmethod
    def _build(self) -> int:
        """The framework's part of :meth:`build`; returns the trainable parameters it counts."""

    @abstractmethod
    def fit(self, data: Dataset, callback: Callback) -> None:
        """Trains for ``settings.epochs`` epochs with the framework's own loop.

        Times it with :meth:`_stopwatch`; reports ``on_step_end`` every ``log_every_n_steps``
        steps, each epoch through :func:`end_epoch` (which raises :class:`NonFiniteLossError` as
        soon as an epoch's training loss is not finite), and ``on_train_end`` at the end.
        """

    @abstractmethod
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy loss and accuracy on ``(x, y)``, in inference mode (no dropout)."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits for ``x`` as a numpy array of shape ``(N, num_classes)``."""

    @abstractmethod
    def forward_train(self, x: np.ndarray) -> np.ndarray:
        """Logits of one batch in training mode: dropout on, BatchNormalization on the batch's
        statistics and updating its running ones (as a training step's forward pass does).

        The conformance suite's view of training mode; no gradient, no optimizer step.
        """

    @abstractmethod
    def export(self) -> ModelExport:
        """The trained model and how to log it with its MLflow flavor."""

    @abstractmethod
    def inference_fn(self) -> Callable[[np.ndarray], Any]:
        """The framework's fastest idiomatic call for logits of one batch, in inference mode.

        The callable takes a float32 numpy batch and returns only once the result is on the host
        (so a timer around it measures the work, not the queueing), in the compile mode trained with.
        """

    def input_pipeline(self, split: Any, epoch: int) -> Iterator[tuple[Any, Any]]:
        """The framework's input pipeline over a streamed split's 0-based ``epoch``, as ``fit`` reads it.

        Args:
            split: a ``shards.StreamedSplit``.
        """
        raise NotImplementedError(f"{self.label} has no input pipeline for streamed data")

    def measure_input(self, split: Any, seconds: float = 2.0) -> float:
        """Samples per second of :meth:`input_pipeline` alone, no model: what training could reach at most.

        The first batch (workers starting, tracing) is left out; at most ``seconds`` of the first epoch are read.
        """
        batches = self.input_pipeline(split, 0)
        next(batches, None)
        samples, start = 0, time.perf_counter()
        for _, y in batches:
            samples += len(y)
            if time.perf_counter() - start >= seconds:
                break
        elapsed = time.perf_counter() - start
        del batches  # stops the pipeline's workers
        return samples / elapsed if samples else math.nan

    def summary(self) -> str:
        """The built model in the framework's own words (``model_summary.txt``): torch's module
        printout with parameter counts, Keras' ``model.summary()``, the ``tf.Module``'s variables."""
        raise NotImplementedError(f"{self.label} has no model summary")

    def event_log(self, logdir: str) -> EventLog:
        """A TensorBoard :class:`~framework_arena.trainers.events.EventLog` in ``logdir``, written
        with the framework's own tooling (``trainers/events.py``); call after :meth:`build`."""
        raise NotImplementedError(f"{self.label} writes no TensorBoard events")

    def gpu_peak_mem_mb(self) -> float | None:
        """Peak memory the framework allocated on the GPU, in MiB; ``None`` when not on a GPU."""
        return None

    @property
    def label(self) -> str:
        """``torch``, ``tensorflow`` or ``keras-<backend>``, for messages."""
        return label(self.framework, self.backend)

    def _use_gpu(self, gpu_visible: Callable[[], bool], why_none: str) -> bool:
        """Whether to train on the GPU for ``settings.device`` (``auto`` takes one if there is one).

        Args:
            gpu_visible: whether the framework sees a GPU; not asked when the device is ``cpu``.
            why_none: what to check when ``cuda`` is asked for and there is none (which build).

        Raises:
            RuntimeError: ``trainer.device=cuda`` and the framework sees no GPU.
        """
        device = self.settings.device
        if device == "cpu":
            return False
        if gpu_visible():
            return True
        if device == "cuda":
            raise RuntimeError(f"trainer.device=cuda but {self.label} sees no GPU ({why_none}): use trainer.device=auto or cpu")
        return False

    def _stopwatch(self, num_samples: int, sync: Callable[[], Any] | None = None) -> Stopwatch:
        """A started :class:`Stopwatch` for training on ``num_samples`` samples.

        Its warm-up is ``settings.warmup_steps``, or the whole first epoch when that is ``None``.
        Windows: a quarter of an epoch, at least :data:`MIN_WINDOW_STEPS` steps.
        """
        warmup = self.settings.warmup_steps
        steps = num_batches(num_samples, self.settings.batch_size)
        window = max(MIN_WINDOW_STEPS, math.ceil(steps / WINDOWS_PER_EPOCH))
        stopwatch = Stopwatch(steps if warmup is None else warmup, sync, window)
        stopwatch.start()
        return stopwatch

    def measure_inference(self, x: np.ndarray, runs: int, batch_size: int) -> dict[str, float]:
        """Latency at batch 1 and throughput at ``batch_size``, after a warm-up at each shape.

        Args:
            x: samples to predict; rows are cycled for the batch-1 calls and tiled up to
                ``batch_size`` for the large batch.
            runs: timed batch-1 calls; the large batch runs ``max(3, runs // 4)`` times.
            batch_size: the large batch.

        Returns:
            ``infer/latency_ms_p50``, ``infer/latency_ms_p95`` and ``infer/samples_per_s``.
        """
        fn = self.inference_fn()
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows = [x[i % len(x) : i % len(x) + 1] for i in range(runs)]
        for row in rows[:3]:  # first calls trace / compile for this shape
            fn(row)
        latencies = []
        for row in rows:
            start = time.perf_counter()
            fn(row)
            latencies.append(time.perf_counter() - start)
        big = np.ascontiguousarray(np.resize(x, (batch_size, *x.shape[1:])))
        fn(big)
        reps = max(3, runs // 4)
        start = time.perf_counter()
        for _ in range(reps):
            fn(big)
        elapsed = time.perf_counter() - start
        return {
            "infer/latency_ms_p50": float(np.percentile(latencies, 50)) * 1e3,
            "infer/latency_ms_p95": float(np.percentile(latencies, 95)) * 1e3,
            "infer/samples_per_s": reps * batch_size / elapsed,
        }
