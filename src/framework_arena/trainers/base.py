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
(:class:`NameMap`) and the pinned requirements of an exported model (:func:`pin`).
"""

from __future__ import annotations

import importlib.metadata
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

import numpy as np

from framework_arena.contracts import Callback, ModelExport, NonFiniteLossError
from framework_arena.data import Dataset, num_batches
from framework_arena.models import ModelSpec, count_params
from framework_arena.names import label

#: Batch size for validation, test and prediction passes, the same in every framework.
EVAL_BATCH_SIZE = 1024

#: Distributions that install the ``tensorflow`` module (the TensorFlow trainer and Keras on it).
TENSORFLOW_DISTS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")

T = TypeVar("T")

#: Timed windows per epoch for the median throughput, and the fewest steps in one (a window of a
#: few milliseconds would measure the scheduler's tick more than the training).
WINDOWS_PER_EPOCH = 4
MIN_WINDOW_STEPS = 10


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


class NameMap(dict[str, T]):
    """A framework's objects by the arena's names for them (``framework_arena.names``).

    Checked when the framework module is imported: it must hold exactly the names the config
    accepts, so a name added to the vocabulary fails every framework that lacks it at once, not a
    trial in the middle of a sweep. A name it lacks raises "Expected <key> in [...]".

    Args:
        key: the config key the names are values of, e.g. ``optim.name``.
        names: the vocabulary, e.g. ``names.OPTIMIZERS``.
        table: the framework's object (or factory) per name.
    """

    def __init__(self, key: str, names: Sequence[str], table: Mapping[str, T]) -> None:
        if set(table) != set(names):
            raise TypeError(f"Expected the names {sorted(names)} for {key}. Received: {sorted(table)}")
        super().__init__(table)
        self.key = key

    def __missing__(self, name: str) -> T:
        raise ValueError(f"Expected {self.key} in {sorted(self)}. Received: {self.key}={name!r}")


def pin(*dists: str) -> str:
    """``dist==version`` for the first of ``dists`` installed, for an exported model's requirements.

    Several distributions install the same module (``tensorflow``, ``tensorflow-cpu``, ...): the
    one here is pinned. A local version label such as torch's ``+cpu`` is dropped: pip cannot
    install ``torch==2.13.0+cpu`` from PyPI.

    Raises:
        RuntimeError: none of ``dists`` is installed (the framework runs from a source tree).
    """
    for dist in dists:
        try:
            return f"{dist}=={importlib.metadata.version(dist).split('+')[0]}"
        except importlib.metadata.PackageNotFoundError:
            continue
    raise RuntimeError(f"Expected one of the distributions {list(dists)} installed, to pin the model's requirements. Received: none of them")


def end_epoch(
    callback: Callback,
    epoch: int,
    train_loss: float,
    train_accuracy: float,
    timing: Mapping[str, float],
    validate: Callable[[], tuple[float, float]],
) -> None:
    """Checks the epoch's training loss, validates and sends the epoch's logs.

    Args:
        callback: receives ``on_epoch_end(epoch, logs)`` with the :data:`~framework_arena.contracts.EPOCH_KEYS`.
        epoch: 1-based.
        train_loss: the epoch's mean training loss; train_accuracy likewise.
        timing: :meth:`Stopwatch.epoch_end`'s logs.
        validate: returns ``(val_loss, val_accuracy)``; called only once the loss is finite.

    Raises:
        NonFiniteLossError: ``train_loss`` is NaN or infinite.
    """
    train_loss = float(train_loss)
    if not math.isfinite(train_loss):
        raise NonFiniteLossError(epoch, train_loss)
    val_loss, val_accuracy = validate()
    logs = {"train_loss": train_loss, "train_accuracy": float(train_accuracy), "val_loss": float(val_loss), "val_accuracy": float(val_accuracy)}
    logs.update(timing)
    callback.on_epoch_end(epoch, logs)


class RunningLoss:
    """``train_loss_running`` for ``Callback.on_step_end``: the mean training loss of the epoch so far.

    A trainer keeps each step's loss as the framework's tensor (no read-back per step), creates one
    of these per epoch and calls :meth:`report` every ``log_every_n_steps`` steps. Only the steps
    since the last report are reduced, so a report costs one read-back whatever the epoch's length.

    Args:
        callback: receives ``on_step_end``.
        loss_sum: the framework's sum of ``loss * batch size`` over some steps' losses and batch
            sizes, as a float; the trainer's epoch loss uses the same reduction, so the epoch's
            last report agrees with its ``train_loss`` (summed in parts: to rounding).
    """

    def __init__(self, callback: Callback, loss_sum: Callable[[Sequence[Any], Sequence[int]], float]) -> None:
        self.callback = callback
        self.loss_sum = loss_sum
        self._total, self._summed, self._seen = 0.0, 0, 0  # loss sum and samples of the first `_summed` steps

    def report(self, step: int, losses: Sequence[Any], sizes: Sequence[int]) -> None:
        """Sends the running loss at optimizer ``step`` (1-based, over the whole training).

        Args:
            losses: the epoch's step losses so far.
            sizes: the epoch's batch sizes, at least as many as ``losses``.
        """
        done, k = self._summed, len(losses)
        self._total += self.loss_sum(losses[done:k], sizes[done:k])
        self._seen += sum(sizes[done:k])
        self._summed = k
        self.callback.on_step_end(step, {"train_loss_running": self._total / self._seen})


class Stopwatch:
    """Step and epoch timing with the warm-up left out of throughput, and a robust steady figure.

    Past the warm-up, the steps are timed in windows of ``window_steps`` steps (a window ends at
    an epoch's end too; a last window shorter than half of that is dropped, validation is never in
    one). ``train_samples_per_s`` (:meth:`end_logs`) is the median over the windows, with their
    10th and 90th percentiles beside it: one burst or stall cannot decide it. Each epoch's own
    figure is ``epoch_samples_per_s``.

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
        window_steps: steps per timed window; a sync at each window's end (none on a CPU).
    """

    #: The clock read at every mark. ``bench/overhead.py --clock cpu`` sets ``time.process_time``
    #: (CPU seconds of the process) to measure work rather than wall time on a shared machine.
    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, warmup_steps: int, sync: Callable[[], Any] | None = None, window_steps: int = 10) -> None:
        self.warmup_steps = warmup_steps
        self.window_steps = max(1, window_steps)
        self.windows: list[float] = []  # samples/s of each timed window
        self._window: tuple[float, int, int] | None = None  # (start, steps, samples) of the open window
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

    def epoch_start(self) -> None:
        self.sync()
        self.epoch_begin = self.clock()
        self._steady_from = self.epoch_begin if self.step >= self.warmup_steps else None
        self._window = (self.epoch_begin, 0, 0) if self._steady_from is not None else None
        self._steady_samples = self._steady_steps = self._epoch_steps = 0

    def step_end(self, samples: int) -> None:
        """Counts one optimizer step of ``samples`` samples (cheap: a sync only at the marks)."""
        self.step += 1
        self._epoch_steps += 1
        if self._steady_from is not None:
            self._steady_samples += samples
            self._steady_steps += 1
            begin, steps, counted = self._window  # type: ignore[misc]
            if steps + 1 < self.window_steps:
                self._window = (begin, steps + 1, counted + samples)
            else:  # the window is full: one sync, one clock read
                self.sync()
                now = self.clock()
                self.windows.append((counted + samples) / max(now - begin, 1e-12))
                self._window = (now, 0, 0)
        if self.step == 1 or self.step == self.warmup_steps:
            self.sync()
            now = self.clock()
            if self.step == 1:
                self.first_step_end = now
                self._first_step_s = now - self.epoch_begin
            if self.step == self.warmup_steps:  # the warm-up ends here; the timed part starts
                self._steady_from = now
                self._window = (now, 0, 0)

    def epoch_end(self, now: float | None = None) -> dict[str, float]:
        """``epoch_time_s``, and ``epoch_samples_per_s`` over the steps past the warm-up, if any.

        Args:
            now: when the epoch's last step ended, if it was taken earlier (Keras takes it in its
                batch-end hook, before validation); the device is synced and the clock read otherwise.
        """
        if now is None:
            self.sync()
            now = self.clock()
        logs = {"epoch_time_s": now - self.epoch_begin}
        if self._window is not None and self._window[1] * 2 >= self.window_steps and now > self._window[0]:
            self.windows.append(self._window[2] / (now - self._window[0]))  # the epoch's last window
        self._window = None
        if self._steady_from is not None and self._steady_samples:
            logs["epoch_samples_per_s"] = self._steady_samples / (now - self._steady_from)
            self._steady_time += now - self._steady_from
            self._steady_steps_total += self._steady_steps
        if self._after_first is None and self.first_step_end is not None:
            self._after_first = (now - self.first_step_end, self._epoch_steps - 1)
        return logs

    def end_logs(self) -> dict[str, float]:
        """``time_to_first_step_s``, ``compile_time_s``, ``fit_time_s`` and, once a window was
        timed, ``train_samples_per_s`` (median of the windows), ``train_samples_per_s_p10`` /
        ``_p90`` and ``train_windows``.

        ``compile_time_s`` is what the first step took beyond a steady step: tracing, graph
        compilation and first-call initialisation, whatever the framework does lazily. A steady
        step is the mean step past the warm-up, or else the mean of the first epoch's later steps.
        """
        now = self.clock()
        first = self.first_step_end if self.first_step_end is not None else now
        t, n = self._steady_time, self._steady_steps_total
        t1, n1 = self._after_first or (0.0, 0)
        steady_step = t / n if n else (t1 / n1 if n1 else 0.0)
        logs = {
            "time_to_first_step_s": first - self.fit_start,
            "compile_time_s": max(0.0, self._first_step_s - steady_step),
            "fit_time_s": now - self.fit_start,
        }
        if self.windows:
            p10, p50, p90 = np.percentile(self.windows, [10, 50, 90])
            logs.update({"train_samples_per_s": float(p50), "train_samples_per_s_p10": float(p10), "train_samples_per_s_p90": float(p90)})
            logs["train_windows"] = float(len(self.windows))
        return logs


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
