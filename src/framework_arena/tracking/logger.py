"""The child's logger: what the trial itself logs to its run, and its offline copy when the server is lost."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import mlflow
from mlflow.tracking import MlflowClient

from framework_arena.secrets import redact_text
from framework_arena.tracking.flavors import log_model, save_model
from framework_arena.tracking.policy import Guard, unavailable
from framework_arena.tracking.store import metric_batch, param_batch, tag_batch

if TYPE_CHECKING:
    import numpy as np

    from framework_arena.contracts import ModelExport

log = logging.getLogger(__name__)


class RunLogger:
    """The child's logger for one run id: tags at the start, the final figures and the model at
    the end (the launcher draws the learning curves from the epochs it relays). Training metrics go to the parent
    (:class:`~framework_arena.tracking.MetricSender`); :meth:`keep` records them here for the
    offline copy.

    It logs through ``MlflowClient`` only: no fluent active run, whose ``atexit`` hook would mark
    a crashed child FINISHED. Every request goes through :attr:`guard`: when the server stops
    answering, the logger makes no further request (training goes on, undelayed) and keeps the
    trial on disk in ``offline_dir`` instead: ``metrics.json`` (every metric and tag, with steps)
    and the model in its MLflow flavor's format. :meth:`close` then raises
    :class:`~framework_arena.errors.TrackingUnavailable` naming that folder.

    Args:
        uri: the resolved tracking URI.
        run_id: the run created by the parent.
        offline_dir: where to keep the results if the server goes away (default
            ``./arena-offline/<run_id>``).
    """

    def __init__(self, uri: str, run_id: str, offline_dir: str | None = None) -> None:
        self.client = MlflowClient(uri)
        self._monitor: Any = None
        self.uri = uri
        self.run_id = run_id
        self.model_id: str | None = None  # the LoggedModel's id once log_model succeeded
        self.offline_dir = Path(offline_dir or os.path.join("arena-offline", run_id)).absolute()
        self.guard = Guard(uri, run_id, kept=f"this trial's results go to {self.offline_dir}")
        self.kept: dict[str, Any] = {"run_id": run_id, "tracking_uri": redact_text(uri), "metrics": [], "tags": {}}
        # Model.log resolves the store and the LoggedModel's experiment from global state; this
        # process exists for this one run, so pointing that state at it is safe. No run is
        # made active: its atexit hook would mark a crashed child FINISHED.
        mlflow.set_tracking_uri(uri)
        self.guard.call("find the run", lambda: mlflow.set_experiment(experiment_id=self.client.get_run(run_id).info.experiment_id))

    @property
    def lost(self) -> BaseException | None:
        """The error that showed the server unreachable, or None."""
        return self.guard.lost

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.keep(metrics, step)
        self.guard.call("log metrics", self.client.log_batch, self.run_id, metrics=metric_batch(metrics, step))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        batch = tag_batch(tags)
        self.kept["tags"].update((t.key, t.value) for t in batch)
        self.guard.call("set tags", self.client.log_batch, self.run_id, tags=batch)

    def log_text(self, text: str, path: str) -> None:
        self.guard.call(f"log {path}", self.client.log_text, self.run_id, redact_text(text), path)

    def log_artifacts(self, local_dir: str) -> None:
        """Logs a folder's files at the run's artifact root (kept under ``offline_dir`` when the server is lost)."""
        self.guard.call(f"log the artifacts of {local_dir}", self.client.log_artifacts, self.run_id, local_dir)
        if self.lost is not None:
            import shutil

            shutil.copytree(local_dir, self.offline_dir, dirs_exist_ok=True)

    def keep(self, metrics: Mapping[str, float], step: int) -> None:
        """Records metrics the parent sends (:class:`~framework_arena.tracking.MetricSender`) for the offline copy only."""
        now = int(time.time() * 1000)  # the original time, which arena-sync uploads
        self.kept["metrics"] += [{"key": k, "value": float(v), "step": step, "timestamp": now} for k, v in metrics.items()]

    def close(self, raise_if_lost: bool = True) -> None:
        """Stops the system metrics monitor, and, if the server went away, keeps the results on
        disk and raises :class:`~framework_arena.errors.TrackingUnavailable` naming that folder."""
        if self._monitor is not None:
            self.guard.call("stop system metrics", self._monitor.finish)
            self._monitor = None
        if self.lost is None:
            return
        self.offline_dir.mkdir(parents=True, exist_ok=True)
        (self.offline_dir / "metrics.json").write_text(json.dumps(self.kept, indent=1) + "\n")
        what = "the model and metrics" if (self.offline_dir / "model").exists() else "the metrics"
        if raise_if_lost:
            raise unavailable(self.uri, self.lost, f"Nothing trained is lost: {what} are saved in {self.offline_dir}")
        log.error("Nothing trained is lost: %s are saved in %s", what, self.offline_dir)

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        self.set_tags({f"arena.{k}": v for k, v in info.items() if k != "num_params"})
        self.log_metrics({"model/num_params": info["num_params"]}, step=0)

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        self.log_metrics(logs, step=0)

    def start_system_metrics(self, interval_s: float = 2.0) -> None:
        """Samples CPU, memory, disk, network and (with pynvml) GPU as ``system/*`` metrics.

        MLflow's own monitor, as ``log_system_metrics=True`` starts it for a fluent run;
        ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` overrides the interval.
        """
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = self.guard.call(
            "start system metrics", SystemMetricsMonitor, self.run_id, sampling_interval=interval_s, tracking_uri=self.client.tracking_uri
        )
        if self._monitor is not None:
            self._monitor.start()

    def log_model(
        self, export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, step: int, name: str = "model", params: Mapping[str, Any] | None = None
    ) -> str | None:
        """Logs the model with its flavor, a signature and an input example; returns the model URI.

        The LoggedModel is named ``name``, carries the run's ``arena.*`` tags (so
        ``search_logged_models`` finds it by framework, model, data) and ``params`` (None values
        left out: they were never set). Its id is kept in :attr:`model_id`. With the server
        unreachable, saves it in ``offline_dir/model`` instead and returns that path.
        """

        def log() -> str:
            run_tags = self.client.get_run(self.run_id).data.tags
            tags = {k: v for k, v in {**run_tags, **self.kept["tags"]}.items() if k.startswith("arena.")}
            model_params = {p.key: p.value for p in param_batch({k: v for k, v in (params or {}).items() if v is not None})}
            uri, self.model_id = log_model(export, x_example, logits_example, self.run_id, step, name, model_params, tags)
            return uri

        uri = self.guard.call("log the model", log)
        if self.lost is None:
            return uri
        path = self.offline_dir / "model"
        save_model(export, x_example, logits_example, path)
        # What log_model would have given the LoggedModel, for arena-sync.
        self.kept["model"] = {
            "name": name,
            "step": step,
            "params": {p.key: p.value for p in param_batch({k: v for k, v in (params or {}).items() if v is not None})},
        }
        return str(path)
