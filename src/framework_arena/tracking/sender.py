"""The training metrics, sent from the launching process in a thread of its own."""

from __future__ import annotations

import threading
from typing import Mapping

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import metric_batch


class MetricSender:
    """Sends one run's training metrics from the launching process, in a thread of its own.

    The child reports every epoch's (and, with ``tracking.log_every_n_steps``, every n-th step's)
    metrics over its pipe; the runner hands them to :meth:`add`. Requests go at most once per
    ``SEND_EVERY_S`` (and at :meth:`close`), so short epochs share one. A request costs ~4 ms of
    Python plus ~0.1 ms per metric on SQLite: made in the training process, by MLflow's
    asynchronous thread, that work competed with the training loop for the GIL
    (``bench/overhead.py``); here it runs beside it, in another process.

    When the server stops answering, no further request is made (the relay keeps every metric
    for its offline copy, see :class:`~framework_arena.tracking.relay.RunRelay`).
    """

    #: MLflow's limit of metrics in one log_batch request.
    MAX_BATCH = 1000
    SEND_EVERY_S = 1.0

    def __init__(self, uri: str, run_id: str) -> None:
        self.client = MlflowClient(uri)
        self.uri, self.run_id = uri, run_id
        self.guard = Guard(uri, run_id)
        self.error: BaseException | None = None  # strict mode: raised by close()
        self._queue: list[Metric] = []
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # one request at a time, from the thread or flush()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"arena-metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> BaseException | None:
        """The error that showed the server unreachable, or None."""
        return self.guard.lost

    def add(self, metrics: Mapping[str, float], step: int) -> None:
        batch = metric_batch(metrics, step)
        with self._lock:
            self._queue.extend(batch)

    def _loop(self) -> None:
        while True:
            closing = self._closing.wait(self.SEND_EVERY_S)
            self.flush()
            if closing:
                return

    def flush(self) -> None:
        """Sends what is queued now, in the caller's thread (the runner, before the child trains:
        a request during training runs on the trial's cores and counts as contention)."""
        with self._sending:
            with self._lock:
                batch, self._queue = self._queue, []
            for i in range(0, len(batch), self.MAX_BATCH):
                self._send(batch[i : i + self.MAX_BATCH])

    def _send(self, batch: list[Metric]) -> None:
        if self.error is not None:
            return
        try:
            self.guard.call("log metrics", self.client.log_batch, self.run_id, metrics=batch)
        except Exception as e:  # noqa: BLE001 - strict mode: raised in the caller's thread by close()
            self.error = e

    def close(self) -> None:
        """Sends what is queued, waits for it, and stops the thread; raises in strict mode what failed."""
        self._closing.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
