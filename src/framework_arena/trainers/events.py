"""TensorBoard event files for a trial: the contract every framework's writer fills, and the callback that feeds it.

Each framework writes with its own tooling (``torch.utils.tensorboard`` in ``_torch_events.py``,
``tf.summary`` in ``_tf_events.py``); Keras on jax, whose back end has none, uses
:class:`ProtoEvents`, the TensorBoard package's own event-file writer. Keras' ``TensorBoard``
callback is not used: in Keras 3.15 it imports ``tensorflow.summary`` on every back end (a second
framework in a torch or jax trial) and names its charts ``epoch_loss`` under ``train/`` and
``validation/`` runs, so a sweep's trials would not line up on the same charts. The tags here are
the same in every framework: ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy``
per epoch, ``train/loss_running`` per step (with ``tracking.log_every_n_steps``).

Nothing is written inside the training loop: scalars and weight histograms at epoch ends, where
the trainers have stopped their timing, and the graph after training (a trace runs the model,
which must not shift the training's random stream).
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from framework_arena.contracts import Callback

#: The chart tags: the same sectioned names as the MLflow metrics (metric_names.py), so the two views agree.
EPOCH_TAGS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy")
STEP_TAGS = ("train/loss_running",)


def without_tensorflow() -> None:
    """Makes the TensorBoard package write with its own TensorFlow stub, not TensorFlow.

    Its writer resolves ``tensorboard.compat.tf`` to ``import tensorflow`` whenever TensorFlow is
    installed: ``torch.utils.tensorboard`` took 29 s to import under load on 2 cores, nearly all
    of it TensorFlow, in a trial that never uses it. ``tensorboard.compat.notf`` is TensorBoard's
    own marker for "use the stub" (its ``no_tensorflow`` build target); registered here before the
    first write, in a process where TensorFlow is not loaded already.
    """
    import sys
    import types

    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _tagged(logs: Mapping[str, float], tags: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for tag in tags:
        value = logs.get(tag)
        if value is not None and np.isfinite(value):  # val_fraction=0 leaves NaNs: no point to draw
            out[tag] = float(value)
    return out


class EventLog(ABC):
    """One trial's event files in ``logdir``, written by one framework's tool.

    Args:
        logdir: the folder the event files go to (created).
    """

    #: The tool that writes the files, as the framework names it (logged as ``arena.tensorboard_tool``).
    tool: ClassVar[str]

    def __init__(self, logdir: str) -> None:
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self.scalars = 0
        self.histograms = 0
        self.graph = False
        self.seconds = 0.0  # spent opening, writing and tracing the graph: the cost, counted rather than compared
        self.fit_seconds = 0.0  # the part spent at epoch and step ends, inside training (and fit_time_s)

    def epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        """The epoch's scalars and a histogram of every trainable weight, at step ``epoch``."""
        start = time.perf_counter()
        for tag, value in _tagged(logs, EPOCH_TAGS).items():
            self._scalar(tag, value, epoch)
            self.scalars += 1
        self.histograms += self._histograms(epoch)
        self.fit_seconds += time.perf_counter() - start

    def step_end(self, step: int, logs: Mapping[str, float]) -> None:
        start = time.perf_counter()
        for tag, value in _tagged(logs, STEP_TAGS).items():
            self._scalar(tag, value, step)
            self.scalars += 1
        self.fit_seconds += time.perf_counter() - start

    def close(self, example: np.ndarray) -> dict[str, Any]:
        """Writes the graph where the framework makes one (of the model on ``example``), closes the files.

        Returns:
            What was written: ``tool``, ``scalars``, ``histograms`` (counts), ``graph`` (bool),
            ``bytes`` (the event files' size), ``seconds`` spent in all (opening, writing, the graph)
            and ``fit_seconds``, its part at epoch and step ends, inside training.
        """
        start = time.perf_counter()
        self.graph = self._graph(example)
        self._close()
        self.seconds += time.perf_counter() - start + self.fit_seconds
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.logdir) for f in files)
        return {
            "tool": self.tool,
            "scalars": self.scalars,
            "histograms": self.histograms,
            "graph": self.graph,
            "bytes": size,
            "seconds": self.seconds,
            "fit_seconds": self.fit_seconds,
        }

    @abstractmethod
    def _scalar(self, tag: str, value: float, step: int) -> None: ...

    @abstractmethod
    def _histograms(self, step: int) -> int:
        """Writes one histogram per trainable weight; returns how many."""

    def _graph(self, example: np.ndarray) -> bool:
        """Writes the model's graph; False where the framework has none to give."""
        return False

    @abstractmethod
    def _close(self) -> None: ...


class ProtoEvents(EventLog):
    """Event files written with the TensorBoard package's own writer and protos, from numpy weights.

    Args:
        weights: the trainable weights by name, as numpy arrays, read at each epoch end.
    """

    tool = "tensorboard.EventFileWriter"

    def __init__(self, logdir: str, weights: Callable[[], Mapping[str, np.ndarray]]) -> None:
        without_tensorflow()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        super().__init__(logdir)
        self.weights = weights
        self.writer = EventFileWriter(logdir)

    def _add(self, value: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=[value])))

    def _scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._add(Summary.Value(tag=tag, simple_value=value), step)

    def _histograms(self, step: int) -> int:
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary

        weights = self.weights()
        for name, w in weights.items():
            v = np.asarray(w, dtype=np.float64).ravel()
            counts, limits = np.histogram(v, bins=30)
            histo = HistogramProto(
                min=float(v.min()),
                max=float(v.max()),
                num=float(v.size),
                sum=float(v.sum()),
                sum_squares=float(v @ v),
                bucket_limit=limits[1:].tolist(),
                bucket=counts.tolist(),
            )
            self._add(Summary.Value(tag=name, histo=histo), step)
        return len(weights)

    def _close(self) -> None:
        self.writer.close()


class Recorder:
    """The trainer's callback with the epoch and step logs also written to an :class:`EventLog`.

    The wrapped callback goes first: a metric reaches MLflow before its chart is written. A write
    that fails goes to ``on_error`` (the tracking guard: raised under test, a warning in
    production) and stops the event files; training goes on.
    """

    def __init__(self, inner: Callback, log: EventLog, on_error: Callable[[str, Exception], None]) -> None:
        self.inner = inner
        self.log: EventLog | None = log
        self.on_error = on_error

    def _write(self, what: str, write: Callable[[], None]) -> None:
        if self.log is None:
            return
        try:
            write()
        except Exception as e:  # noqa: BLE001 - the policy is on_error's
            self.log = None
            self.on_error(f"write the TensorBoard {what}", e)

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        self.inner.on_train_begin(info)

    def on_step_end(self, step: int, logs: Mapping[str, float]) -> None:
        self.inner.on_step_end(step, logs)
        self._write("step scalars", lambda: self.log.step_end(step, logs))  # type: ignore[union-attr]

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.inner.on_epoch_end(epoch, logs)
        self._write("epoch scalars and histograms", lambda: self.log.epoch_end(epoch, logs))  # type: ignore[union-attr]

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        self.inner.on_train_end(logs)
