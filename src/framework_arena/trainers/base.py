"""The Trainer interface and the callback contract shared by every framework.

A trainer lives in a fresh child process (see ``runner.py``) and imports only its own framework.
It builds the :class:`~framework_arena.models.ModelSpec` with the initial weights from
:func:`~framework_arena.models.init_weights`, trains it with the framework's idiomatic loop on the
batch order of :func:`~framework_arena.data.epoch_order`, and reports through a :class:`Callback`.
It never talks to MLflow: ``tracking.py`` turns the callback's plain dicts into runs.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from framework_arena.contracts import Callback, ModelExport, NonFiniteLossError
from framework_arena.data import Dataset
from framework_arena.models import ModelSpec

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


def check_finite(epoch: int, loss: float) -> None:
    """Raises :class:`NonFiniteLossError` when ``loss`` is NaN or infinite."""
    if not math.isfinite(loss):
        raise NonFiniteLossError(epoch, loss)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == y))


class Stopwatch:
    """Step and epoch timing with the warm-up left out of throughput.

    A trainer calls :meth:`start` before anything of the training runs, then around each epoch's
    steps :meth:`epoch_start`, :meth:`step_end` after every optimizer step, and :meth:`epoch_end`.
    ``sync`` waits until the device has finished the work queued so far (``cuda.synchronize`` or
    reading a value back); it is called only where a timestamp is taken that must be true: at
    each epoch's start and end, after the first step and after the last warm-up step, never per
    step.

    Args:
        warmup_steps: optimizer steps from the start of training whose time and samples are not
            counted in ``train_samples_per_s`` (tracing, compilation, caches, allocator).
        sync: waits for the device; nothing to wait for on a CPU.
    """

    #: The clock read at every mark. ``bench/overhead.py --clock cpu`` sets ``time.process_time``
    #: (CPU seconds of the process) to measure work rather than wall time on a shared machine.
    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, warmup_steps: int, sync: Callable[[], Any] | None = None) -> None:
        self.warmup_steps = warmup_steps
        self.sync = sync or (lambda: None)
        self.fit_start = 0.0
        self.first_step_end: float | None = None
        self.step = 0  # optimizer steps done, over all epochs
        self.epoch_begin = 0.0
        self._epoch_steps = 0
        self._steady_from: float | None = None  # where this epoch's timed part starts
        self._steady_samples = self._steady_steps = 0
        self._first_step_s = 0.0
        self._after_first: tuple[float, int] | None = None  # first epoch after its first step
        self._steady_time, self._steady_steps_total = 0.0, 0

    def start(self) -> None:
        self.fit_start = self.clock()

    def is_mark(self, step: int) -> bool:
        """Whether ``step`` (1-based) ends where :meth:`step_end` syncs: the first or last warm-up step."""
        return step == 1 or step == self.warmup_steps

    def epoch_start(self) -> None:
        self.sync()
        self.epoch_begin = self.clock()
        self._steady_from = self.epoch_begin if self.step >= self.warmup_steps else None
        self._steady_samples = self._steady_steps = self._epoch_steps = 0

    def step_end(self, samples: int) -> None:
        """Counts one optimizer step of ``samples`` samples (cheap: a sync only at the marks)."""
        self.step += 1
        self._epoch_steps += 1
        if self._steady_from is not None:
            self._steady_samples += samples
            self._steady_steps += 1
        if self.step == 1 or self.step == self.warmup_steps:
            self.sync()
            now = self.clock()
            if self.step == 1:
                self.first_step_end = now
                self._first_step_s = now - self.epoch_begin
            if self.step == self.warmup_steps:  # the warm-up ends here; the timed part starts
                self._steady_from = now

    def epoch_end(self, now: float | None = None) -> dict[str, float]:
        """``epoch_time_s``, and ``train_samples_per_s`` over the steps past the warm-up, if any.

        Args:
            now: when the epoch's last step ended, if it was taken earlier (Keras takes it in its
                batch-end hook, before validation); the device is synced and the clock read otherwise.
        """
        if now is None:
            self.sync()
            now = self.clock()
        logs = {"epoch_time_s": now - self.epoch_begin}
        if self._steady_from is not None and self._steady_samples:
            logs["train_samples_per_s"] = self._steady_samples / (now - self._steady_from)
            self._steady_time += now - self._steady_from
            self._steady_steps_total += self._steady_steps
        if self._after_first is None and self.first_step_end is not None:
            self._after_first = (now - self.first_step_end, self._epoch_steps - 1)
        return logs

    def end_logs(self) -> dict[str, float]:
        """``time_to_first_step_s``, ``compile_time_s`` and ``fit_time_s``.

        ``compile_time_s`` is what the first step took beyond a steady step: tracing, graph
        compilation and first-call initialisation, whatever the framework does lazily. A steady
        step is the mean step past the warm-up, or else the mean of the first epoch's later steps.
        """
        now = self.clock()
        first = self.first_step_end if self.first_step_end is not None else now
        t, n = self._steady_time, self._steady_steps_total
        t1, n1 = self._after_first or (0.0, 0)
        steady_step = t / n if n else (t1 / n1 if n1 else 0.0)
        return {
            "time_to_first_step_s": first - self.fit_start,
            "compile_time_s": max(0.0, self._first_step_s - steady_step),
            "fit_time_s": now - self.fit_start,
        }


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

    @abstractmethod
    def build(self) -> int:
        """Builds the model from the spec and loads the initial weights.

        Returns:
            The number of trainable parameters, which must equal ``models.count_params(spec)``.
        """

    @abstractmethod
    def fit(self, data: Dataset, callback: Callback) -> None:
        """Trains for ``settings.epochs`` epochs with the framework's own loop.

        Calls ``callback.on_epoch_end`` after every epoch and ``on_train_end`` at the end;
        raises :class:`NonFiniteLossError` as soon as an epoch's training loss is not finite.
        """

    @abstractmethod
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy loss and accuracy on ``(x, y)``, in inference mode (no dropout)."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits for ``x`` as a numpy array of shape ``(N, num_classes)``."""

    @abstractmethod
    def export(self) -> ModelExport:
        """The trained model and how to log it with its MLflow flavor."""

    @abstractmethod
    def inference_fn(self) -> Callable[[np.ndarray], Any]:
        """The framework's fastest idiomatic call for logits of one batch, in inference mode.

        The callable takes a float32 numpy batch and returns only once the result is on the host
        (so a timer around it measures the work, not the queueing), in the compile mode trained with.
        """

    def gpu_peak_mem_mb(self) -> float | None:
        """Peak memory the framework allocated on the GPU, in MiB; ``None`` when not on a GPU."""
        return None

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """``settings.warmup_steps``, or the whole first epoch when it is ``None``."""
        w = self.settings.warmup_steps
        return steps_per_epoch if w is None else w

    def measure_inference(self, x: np.ndarray, runs: int, batch_size: int) -> dict[str, float]:
        """Latency at batch 1 and throughput at ``batch_size``, after a warm-up at each shape.

        Args:
            x: samples to predict; rows are cycled for the batch-1 calls and tiled up to
                ``batch_size`` for the large batch.
            runs: timed batch-1 calls; the large batch runs ``max(3, runs // 4)`` times.
            batch_size: the large batch.

        Returns:
            ``infer_latency_ms_p50``, ``infer_latency_ms_p95`` and ``infer_samples_per_s``.
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
            "infer_latency_ms_p50": float(np.percentile(latencies, 50)) * 1e3,
            "infer_latency_ms_p95": float(np.percentile(latencies, 95)) * 1e3,
            "infer_samples_per_s": reps * batch_size / elapsed,
        }
