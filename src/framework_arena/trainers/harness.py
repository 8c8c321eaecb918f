"""The pieces of the training harness every framework's trainer shares: the names a config may
use (:class:`NameMap`), the pinned requirements of an exported model (:func:`pin`), the epoch logs
(:func:`end_epoch`) and the running loss (:class:`RunningLoss`)."""

from __future__ import annotations

import importlib.metadata
import math
from typing import Any, Callable, Mapping, Sequence, TypeVar

from framework_arena.contracts import Callback, NonFiniteLossError

#: Distributions that install the ``tensorflow`` module (the TensorFlow trainer and Keras on it).
TENSORFLOW_DISTS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")

T = TypeVar("T")


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
    logs = {"train/loss": train_loss, "train/accuracy": float(train_accuracy), "val/loss": float(val_loss), "val/accuracy": float(val_accuracy)}
    logs.update(timing)
    callback.on_epoch_end(epoch, logs)


class RunningLoss:
    """``train/loss_running`` for ``Callback.on_step_end``: the mean training loss of the epoch so far.

    A trainer keeps each step's loss as the framework's tensor (no read-back per step), creates one
    of these per epoch and calls :meth:`report` every ``log_every_n_steps`` steps. Only the steps
    since the last report are reduced, so a report costs one read-back whatever the epoch's length.

    Args:
        callback: receives ``on_step_end``.
        loss_sum: the framework's sum of ``loss * batch size`` over some steps' losses and batch
            sizes, as a float; the trainer's epoch loss uses the same reduction, so the epoch's
            last report agrees with its ``train/loss`` (summed in parts: to rounding).
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
        self.callback.on_step_end(step, {"train/loss_running": self._total / self._seen})
