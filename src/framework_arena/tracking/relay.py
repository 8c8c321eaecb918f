"""The launcher's side of the child's logging: what the trial reports, written to its run.

The child does not open the store (``framework_arena/outbox.py`` says why); it sends every tag,
metric, text, artifact folder and its saved model on its channel, and :class:`RunRelay` logs them
here, in the launching process, which has MLflow loaded and the run open already. It is also the
one owner of the trial's offline copy: when the server stops answering, nothing more is asked of
it, and :meth:`RunRelay.close` writes what the store missed to ``offline_dir`` (``metrics.json``
with every metric and tag, the model, the artifacts) for ``arena-sync``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from framework_arena.secrets import redact_text
from framework_arena.tracking.flavors import complete_model
from framework_arena.tracking.models import log_saved_model
from framework_arena.tracking.sender import MetricSender

log = logging.getLogger(__name__)


def warm_up(plots: bool, model: bool, stop: Callable[[], bool] = lambda: False) -> None:
    """Does the one-time work of the trial's last steps before the child trains, step by step
    until ``stop()`` (the child is ready to train and must not wait): MLflow's map of installed
    packages for the model's requirements (``complete_model``), then matplotlib's import and
    first render for the learning curves. Measured on a 1-epoch trial: the model upload 0.8 s
    and the plots 1.0 s, serial after the child's last message, against ~0.15 s and ~0.4 s warm.
    Never while the child trains: this process runs on the trial's cores, and its work there
    counts as contention (a thread doing it flagged a fresh install's first trial CONTENDED,
    41% of its cores)."""
    steps = []
    if model:
        from framework_arena.tracking.flavors import warm_up as model_warm_up

        steps.append(model_warm_up)
    if plots:
        from framework_arena.tracking.curves import warm_up as plots_warm_up

        steps.append(plots_warm_up)
    for step in steps:
        if stop():
            return
        try:
            step()
        except Exception as e:  # noqa: BLE001 - only a head start: the real call meets the same error under the guard
            log.debug("warm-up failed: %s", e)


class RunRelay:
    """One trial's run, as the child reports it.

    Args:
        handle: the launcher's :class:`~framework_arena.tracking.RunHandle` on the run (created).
        offline_dir: where the results go if the server is lost.
        system_metrics: sample MLflow's ``system/*`` metrics while the trial runs
            (``tracking.system_metrics``).

    Attributes:
        model_id: the LoggedModel's id once the model is logged.
        sender: the :class:`~framework_arena.tracking.MetricSender` every metric goes through.
    """

    def __init__(self, handle: Any, offline_dir: str, system_metrics: bool = False) -> None:
        self.handle = handle
        self.run_id: str = handle.run_id
        self.offline_dir = Path(offline_dir)
        self.guard = handle.guard
        self.guard.kept = f"this trial's results go to {self.offline_dir}"
        self.sender = MetricSender(handle.uri, self.run_id)
        self.model_id: str | None = None
        self.kept: dict[str, Any] = {"run_id": self.run_id, "tracking_uri": redact_text(handle.uri), "metrics": [], "tags": {}}
        self._artifacts: list[str] = []
        self._model: dict[str, Any] | None = None
        self._monitor: Any = None
        self._kept: str | None = None  # what keep_offline wrote, in words, once it has
        if system_metrics:
            self._start_system_metrics()

    @property
    def lost(self) -> BaseException | None:
        """The error that showed the server unreachable (to the relay or its sender), or None."""
        return self.guard.lost or self.sender.lost

    def handle_message(self, msg: list[Any]) -> bool:
        """Logs one of the child's messages; False when it is not a logging message."""
        kind = msg[0]
        if kind in ("step", "epoch", "metrics"):
            self.add_metrics(msg[2], msg[1])
        elif kind == "tags":
            self.kept["tags"].update(msg[1])
            self._call("set tags", self.handle.set_tags, msg[1])
        elif kind == "text":
            self._call(f"log {msg[1]}", self.handle.log_text, msg[2], msg[1])
        elif kind == "artifacts":
            self._artifacts.append(msg[1])
            self._call(f"log the artifacts of {msg[1]}", self.handle.log_artifacts, msg[1])
        elif kind == "model":
            self._model = dict(msg[1])
            try:  # on disk only: done whether the server answers or not (the offline copy holds it then)
                complete_model(Path(self._model["path"]))
            except Exception as e:  # noqa: BLE001 - the guard's policy: raised under test, a warning otherwise
                self.guard.failed("complete the model's folder", e)
                self._model = None
                return True
            self.model_id = self._call("log the model", self._log_model, self._model)
        else:
            return False
        return True

    def add_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)  # the original time, which arena-sync uploads
        self.kept["metrics"] += [{"key": k, "value": float(v), "step": step, "timestamp": now} for k, v in metrics.items()]
        self.sender.add(metrics, step)

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        if self.sender.lost is not None and self.guard.lost is None:
            self.guard.lost = self.sender.lost  # one server: what the sender found lost is lost here too
        return self.guard.call(what, fn, *args)

    def _log_model(self, about: Mapping[str, Any]) -> str:
        run = self.handle.get()
        return log_saved_model(self.handle.client, run, Path(about["path"]), about["name"], int(about["step"]), about["params"], self.kept["tags"])

    def _start_system_metrics(self, interval_s: float = 2.0) -> None:
        """MLflow's own monitor (CPU, memory, disk, network, GPU with pynvml: the machine's, so it
        samples the same from this process as from the child), as ``log_system_metrics=True``
        starts it for a fluent run; ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` overrides the interval."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = self.guard.call("start system metrics", SystemMetricsMonitor, self.run_id, sampling_interval=interval_s, tracking_uri=self.handle.uri)
        if self._monitor is not None:
            self._monitor.start()

    def close(self) -> None:
        """Stops the monitor, sends the last metrics (raising in strict mode what MLflow refused)
        and, when the server was lost, writes the offline copy."""
        if self._monitor is not None:
            self.guard.call("stop system metrics", self._monitor.finish)
            self._monitor = None
        try:
            self.sender.close()
        finally:
            if self.lost is not None:
                self.keep_offline()

    def keep_offline(self) -> str:
        """Writes what the store may have missed to :attr:`offline_dir` (once: :meth:`close` and the
        runner both ask for it); returns what it holds, in words."""
        if self._kept is not None:
            return self._kept
        self.offline_dir.mkdir(parents=True, exist_ok=True)
        for folder in self._artifacts:
            if Path(folder).is_dir():
                shutil.copytree(folder, self.offline_dir, dirs_exist_ok=True)
        if self._model is not None and Path(self._model["path"]).is_dir():
            shutil.copytree(self._model["path"], self.offline_dir / "model", dirs_exist_ok=True)
            # What the LoggedModel would have been given, for arena-sync.
            self.kept["model"] = {k: self._model[k] for k in ("name", "step", "params")}
        (self.offline_dir / "metrics.json").write_text(json.dumps(self.kept, indent=1) + "\n")
        self._kept = "the model and metrics" if (self.offline_dir / "model").exists() else "the metrics"
        return self._kept
