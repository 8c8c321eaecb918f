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
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, Sequence

import numpy as np

from framework_arena.data import Dataset
from framework_arena.models import ModelSpec

#: Keys every ``on_epoch_end`` ``logs`` dict carries.
EPOCH_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s")
#: Batch size for validation, test and prediction passes, the same in every framework.
EVAL_BATCH_SIZE = 1024


class Callback(Protocol):
    """What a trainer reports, in the manner of Keras callbacks: ``logs`` is the whole contract."""

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        """Called once the model is built, before the first step.

        Args:
            info: ``num_params``, ``framework_version``, ``device`` and ``backend`` (Keras).
        """

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Called after each epoch's training and validation.

        Args:
            epoch: 1-based epoch number.
            logs: the :data:`EPOCH_KEYS`; ``epoch_time_s`` covers the training steps only,
                from the first batch to the end of the last one, validation excluded.
        """

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        """Called once after the last epoch.

        Args:
            logs: ``time_to_first_step_s`` (start of training to the end of the first optimizer
                step, tracing and compilation included) and ``fit_time_s``.
        """


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the trial fails with this reason."""

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"train_loss became {value} at epoch {epoch}: lower optim.lr or check the data")
        self.epoch = epoch
        self.value = value


@dataclass(frozen=True)
class TrainSettings:
    """The ``trainer`` and ``optim`` config groups, resolved (threads is a real count here)."""

    epochs: int
    batch_size: int
    seed: int
    threads: int
    device: str  # "auto" | "cpu" | "cuda"
    optim: Mapping[str, Any]  # name, lr, beta1, beta2, eps, weight_decay, momentum, nesterov


def check_finite(epoch: int, loss: float) -> None:
    """Raises :class:`NonFiniteLossError` when ``loss`` is NaN or infinite."""
    if not math.isfinite(loss):
        raise NonFiniteLossError(epoch, loss)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == y))


@dataclass
class ModelExport:
    """What ``tracking.py`` needs to log a trained model with its MLflow flavor.

    ``Model.log(name="model", flavor=mlflow.<flavor>, **{model_kwarg: model}, pip_requirements=...,
    signature=..., input_example=..., **extra)`` must give a model that ``mlflow.pyfunc.load_model``
    loads back and that predicts the trainer's logits for a float32 array of any batch size.
    """

    flavor: str  # "pytorch" | "tensorflow" | "keras"
    model_kwarg: str  # the keyword mlflow.<flavor>.save_model takes the model by
    model: Any
    pip_requirements: list[str]  # pinned framework packages; tracking adds mlflow itself
    extra: dict[str, Any] = field(default_factory=dict)


class Stopwatch:
    """Wall-clock timestamps for the callback contract's timing keys."""

    def __init__(self) -> None:
        self.fit_start = 0.0
        self.first_step_end: float | None = None

    def start(self) -> None:
        self.fit_start = time.perf_counter()
        self.first_step_end = None

    def step_done(self) -> None:
        if self.first_step_end is None:
            self.first_step_end = time.perf_counter()

    def end_logs(self) -> dict[str, float]:
        now = time.perf_counter()
        first = self.first_step_end if self.first_step_end is not None else now
        return {"time_to_first_step_s": first - self.fit_start, "fit_time_s": now - self.fit_start}


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
        """Applies threads, seeds and device before anything runs.

        Returns:
            ``framework_version`` and ``device`` (what is actually used, e.g. ``cpu``, ``cuda:0``).
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
