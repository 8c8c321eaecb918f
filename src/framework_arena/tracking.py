"""MLflow: the only module that imports it.

The launching process (:class:`RunHandle`) creates the run, logs params, tags and the config, and
owns the final status, so a run ends FINISHED, FAILED or KILLED whatever happens to the child.
It also sends the training metrics the child reports over its pipe (:class:`MetricSender`), so
that no MLflow request runs in the training process while it trains. The child
(:class:`RunLogger`) logs the final figures, the learning curves and the model to that run id
through ``MlflowClient`` only: no fluent active run, whose ``atexit`` hook would mark a crashed
child FINISHED.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from framework_arena.errors import TrackingUnavailable
from framework_arena.identity import flatten
from framework_arena.notes import EXPERIMENT_NOTE, NOTE_TAG
from framework_arena.secrets import redact, redact_text

if TYPE_CHECKING:
    import numpy as np

    from framework_arena.contracts import ModelExport

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 6000  # MLflow's limit for a param value
# The experiment's description in the UI, and its kind: runs of model training, not GenAI traces,
# so the UI lists runs rather than a traces overview.
EXPERIMENT_TAGS = {"arena.kind": "trials", NOTE_TAG: EXPERIMENT_NOTE, "mlflow.experimentKind": "custom_model_development"}
STATUS = {"FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}


def strict() -> bool:
    """Under test (``ARENA_STRICT_TRACKING=1``) tracking errors raise instead of being logged."""
    return os.environ.get("ARENA_STRICT_TRACKING", "") == "1"


#: tracking.<key> -> the MLflow client's environment variable (read at every request).
HTTP_SETTINGS = {"timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT", "retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES"}


def configure_http(tracking: Mapping[str, Any]) -> None:
    """Applies ``tracking.timeout_s`` and ``tracking.retries`` to MLflow's HTTP client.

    Set in this process's environment, so the trial's child (and a launcher's workers) inherit
    them. MLflow's defaults (120 s, 7 retries with exponential back-off) keep a trial hanging for
    many minutes when the server is gone; these make it fail in seconds.
    """
    for key, var in HTTP_SETTINGS.items():
        if tracking.get(key) is not None:
            os.environ[var] = str(int(tracking[key]))


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the server did not answer (refused, timed out, kept failing)."""
    import requests

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if isinstance(e, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError, ConnectionError, TimeoutError)):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    # MLflow re-raises some request failures as a bare MlflowException quoting the cause.
    return any(s in str(error) for s in ("Max retries exceeded", "Connection refused", "Read timed out"))


def unavailable(uri: str, error: BaseException, kept: str = "") -> TrackingUnavailable:
    """The :class:`TrackingUnavailable` error for ``uri``, with the settings that bounded the wait."""
    settings = ", ".join(f"tracking.{k}={os.environ[v]}" for k, v in HTTP_SETTINGS.items() if v in os.environ)
    text = str(error)
    if "Connection refused" in text:
        cause = "connection refused"
    elif "timed out" in text or "timeout" in text.lower():
        cause = "no answer in time"
    elif "too many" in text and "error responses" in text:
        cause = "it kept answering with server errors"
    else:
        cause = " ".join(text.split())[:300]
    return TrackingUnavailable(
        redact_text(f"MLflow tracking server at {uri} is unreachable: {cause} ({settings or 'MLflow defaults'})." + (f" {kept}" if kept else ""))
    )


@contextmanager
def _answering(uri: str, kept: str) -> Iterator[None]:
    """Turns "the server did not answer" into :class:`TrackingUnavailable`."""
    try:
        yield
    except mlflow.exceptions.MlflowException as e:
        if unreachable(e):
            raise unavailable(uri, e, kept) from e
        raise


def offline_dir(run_id: str) -> str:
    """Where a trial keeps its model and metrics if the server goes away: in Hydra's output folder."""
    try:
        from hydra.core.hydra_config import HydraConfig

        base = HydraConfig.get().runtime.output_dir
    except (ImportError, ValueError):  # not inside a Hydra app
        base = os.getcwd()
    return os.path.join(os.path.abspath(base), "arena-offline", run_id)


def resolve_uri(uri: str) -> str:
    """Makes a relative ``sqlite:///x.db`` absolute, so child processes and later runs agree."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + os.path.abspath(uri[len(prefix) :])
    return uri


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Returns the experiment id for ``name``, creating it once (artifacts beside a SQLite file)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            raise RuntimeError(f"tracking.experiment={name!r} is deleted in this store: restore it in the MLflow UI or choose another name")
        return exp.experiment_id
    artifact_location = None
    uri = client.tracking_uri
    if uri.startswith("sqlite:///"):
        artifact_location = Path(uri[len("sqlite:///") :]).parent.joinpath("mlruns").as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and our create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class RunHandle:
    """The launching process's handle on one MLflow run: a trial's, or a sweep's parent run.

    Args:
        uri: tracking URI (a relative SQLite path is made absolute).
        experiment: experiment name, created once if missing.
        run_id: attach to an existing run instead of creating one with :meth:`start`.
    """

    def __init__(self, uri: str, experiment: str | None = None, run_id: str = "", experiment_id: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self.client = MlflowClient(self.uri)
        self.run_id = run_id
        # Attached to a run, the experiment is looked up only if a search needs it: a job that
        # just files its record on the sweep's run makes no extra request.
        with _answering(self.uri, "Nothing was trained."):
            self._experiment_id = experiment_id or (None if run_id else ensure_experiment(self.client, experiment or "framework-arena"))

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self.client.get_run(self.run_id).info.experiment_id
        return self._experiment_id

    def start(self, run_name: str, tags: Mapping[str, str], cfg: Mapping[str, Any] | None = None) -> str:
        """Creates the run with its tags, and with ``cfg`` as params and ``config.yaml``; returns its id.

        MlflowClient.create_run skips MLflow's run context providers (user, source, and ours:
        Domino, SLURM): they are resolved here, as ``mlflow.start_run`` would.
        """
        from mlflow.tracking.context.registry import resolve_tags

        all_tags = redact({k: str(v) for k, v in resolve_tags(dict(tags)).items()})
        with _answering(self.uri, "Nothing was trained."):
            run = self.client.create_run(self.experiment_id, run_name=redact_text(run_name), tags=all_tags)
        self.run_id = run.info.run_id
        if cfg is not None:
            import yaml

            try:
                self.log_params(dict(flatten(cfg)))
                self.client.log_text(self.run_id, yaml.safe_dump(redact(dict(cfg)), sort_keys=False), "config.yaml")
            except BaseException as e:
                if unreachable(e):
                    raise unavailable(self.uri, e, f"Run {self.run_id} was created but not trained.") from e
                self.end("FAILED")  # a half-made run must not stay RUNNING
                raise
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        batch = [Param(k, _param_value(redact(v, k))) for k, v in params.items()]
        for i in range(0, len(batch), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(self.run_id, params=batch[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.client.log_batch(self.run_id, metrics=_metric_batch(metrics, step))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=_tag_batch(tags))

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, redact_text(text), path)

    def end(self, status: str) -> None:
        """Sets the final status: ``FINISHED``, ``FAILED`` or ``KILLED``."""
        self.client.set_terminated(self.run_id, RunStatus.to_string(STATUS[status]))

    def get(self, run_id: str | None = None) -> Any:
        return self.client.get_run(run_id or self.run_id)

    def search(self, filter_string: str, max_results: int = 1000) -> list[Any]:
        """Runs of this experiment matching an MLflow filter, newest first."""
        return list(
            self.client.search_runs([self.experiment_id], filter_string=filter_string, order_by=["attributes.start_time DESC"], max_results=max_results)
        )

    def find_finished(self, config_hash: str) -> Any | None:
        """The newest FINISHED trial run of this experiment with ``config_hash``, or None."""
        runs = self.search(f"tags.`arena.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'", 1)
        return runs[0] if runs else None

    def runs(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """The runs with these ids, searched in batches rather than one request each."""
        found: dict[str, Any] = {}
        ids = list(dict.fromkeys(run_ids))
        for i in range(0, len(ids), 100):
            chunk = ", ".join(f"'{r}'" for r in ids[i : i + 100])
            found.update((run.info.run_id, run) for run in self.search(f"attributes.run_id IN ({chunk})"))
        return found


def _metric_batch(metrics: Mapping[str, float], step: int) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in metrics.items()]


def _tag_batch(tags: Mapping[str, Any]) -> list[RunTag]:
    # 5000 characters: the smallest tag-value limit among MLflow's stores
    return [RunTag(k, str(redact(str(v), k))[:5000]) for k, v in tags.items()]


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


class MetricSender:
    """Sends one run's training metrics from the launching process, in a thread of its own.

    The child reports every epoch's (and, with ``tracking.log_every_n_steps``, every n-th step's)
    metrics over its pipe; the runner hands them to :meth:`add`. Requests go at most once per
    ``SEND_EVERY_S`` (and at :meth:`close`), so short epochs share one. A request costs ~4 ms of
    Python plus ~0.1 ms per metric on SQLite: made in the training process, by MLflow's
    asynchronous thread, that work competed with the training loop for the GIL
    (``bench/overhead.py``); here it runs beside it, in another process.

    When the server stops answering, no further request is made (the child keeps every metric
    for its offline copy, see :class:`RunLogger`).
    """

    #: MLflow's limit of metrics in one log_batch request.
    MAX_BATCH = 1000
    SEND_EVERY_S = 1.0

    def __init__(self, uri: str, run_id: str) -> None:
        self.client = MlflowClient(uri)
        self.uri, self.run_id = uri, run_id
        self.lost: BaseException | None = None
        self.error: BaseException | None = None  # strict mode: raised by close()
        self._queue: list[Metric] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"arena-metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    def add(self, metrics: Mapping[str, float], step: int) -> None:
        batch = _metric_batch(metrics, step)
        with self._lock:
            self._queue.extend(batch)

    def _loop(self) -> None:
        while True:
            closing = self._closing.wait(self.SEND_EVERY_S)
            with self._lock:
                batch, self._queue = self._queue, []
            for i in range(0, len(batch), self.MAX_BATCH):
                self._send(batch[i : i + self.MAX_BATCH])
            if closing:
                return

    def _send(self, batch: list[Metric]) -> None:
        if self.lost is not None or self.error is not None:
            return
        try:
            self.client.log_batch(self.run_id, metrics=batch)
        except Exception as e:  # noqa: BLE001
            if unreachable(e):
                self.lost = e
                log.warning(
                    "MLflow tracking server at %s is unreachable (could not log metrics); no further requests for run %s", redact_text(self.uri), self.run_id
                )
            elif strict():
                self.error = e
            else:
                log.warning("MLflow could not log metrics for run %s: %s", self.run_id, e)

    def close(self) -> None:
        """Sends what is queued, waits for it, and stops the thread; raises in strict mode what failed."""
        self._closing.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


class RunLogger:
    """The child's logger for one run id: tags at the start, the final figures, the learning
    curves and the model at the end. Training metrics go to the parent (:class:`MetricSender`);
    :meth:`keep` records them here for the offline copy.

    When the server stops answering, the logger makes no further request (training goes on,
    undelayed) and keeps the trial on disk in ``offline_dir`` instead: ``metrics.json`` (every
    metric and tag, with steps), the learning curves and the model in its MLflow flavor's format.
    :meth:`close` then raises :class:`TrackingUnavailable` naming that folder.

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
        self.offline_dir = Path(offline_dir or os.path.join("arena-offline", run_id)).absolute()
        self.lost: BaseException | None = None  # the error that made the server unreachable
        self.kept: dict[str, Any] = {"run_id": run_id, "tracking_uri": redact_text(uri), "metrics": [], "tags": {}}
        # Model.log resolves the store and the LoggedModel's experiment from global state; this
        # process exists for this one run, so pointing that state at it is safe. No run is
        # made active: its atexit hook would mark a crashed child FINISHED.
        mlflow.set_tracking_uri(uri)
        self._safe("find the run", lambda: mlflow.set_experiment(experiment_id=self.client.get_run(run_id).info.experiment_id))

    def _safe(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # Tracking never breaks training in production; under test it must fail loudly. A
        # server that stopped answering is neither: the results go to disk (see close()).
        if self.lost is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if unreachable(e):
                self.lost = e
                log.warning(
                    "MLflow tracking server at %s is unreachable (could not %s); no further requests: this trial's results go to %s",
                    redact_text(self.uri),
                    what,
                    self.offline_dir,
                )
                return None
            if strict():
                raise
            log.warning("MLflow could not %s for run %s: %s", what, self.run_id, e)
            return None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.kept["metrics"] += [{"key": k, "value": float(v), "step": step} for k, v in metrics.items()]
        self._safe("log metrics", self.client.log_batch, self.run_id, metrics=_metric_batch(metrics, step))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        batch = _tag_batch(tags)
        self.kept["tags"].update((t.key, t.value) for t in batch)
        self._safe("set tags", self.client.log_batch, self.run_id, tags=batch)

    def log_text(self, text: str, path: str) -> None:
        self._safe(f"log {path}", self.client.log_text, self.run_id, redact_text(text), path)

    def keep(self, metrics: Mapping[str, float], step: int) -> None:
        """Records metrics the parent sends (:class:`MetricSender`) for the offline copy only."""
        self.kept["metrics"] += [{"key": k, "value": float(v), "step": step} for k, v in metrics.items()]

    def close(self, raise_if_lost: bool = True) -> None:
        """Stops the system metrics monitor, and, if the server went away, keeps the results on
        disk and raises :class:`TrackingUnavailable` naming that folder."""
        if self._monitor is not None:
            self._safe("stop system metrics", self._monitor.finish)
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
        self.log_metrics({"num_params": info["num_params"]}, step=0)

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        self.log_metrics(logs, step=0)

    def start_system_metrics(self, interval_s: float = 2.0) -> None:
        """Samples CPU, memory, disk, network and (with pynvml) GPU as ``system/*`` metrics.

        MLflow's own monitor, as ``log_system_metrics=True`` starts it for a fluent run;
        ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` overrides the interval.
        """
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = self._safe(
            "start system metrics", SystemMetricsMonitor, self.run_id, sampling_interval=interval_s, tracking_uri=self.client.tracking_uri
        )
        if self._monitor is not None:
            self._monitor.start()

    def log_learning_curves(self, history: Sequence[Mapping[str, float]], title: str) -> None:
        """Logs ``plots/learning_curves.png``: loss and accuracy per epoch, train and validation."""
        try:
            self._log_learning_curves(history, title)
        except Exception as e:  # noqa: BLE001 - a plot never breaks a trial in production
            if strict():
                raise
            log.warning("Could not plot the learning curves of run %s: %s", self.run_id, e)

    def _log_learning_curves(self, history: Sequence[Mapping[str, float]], title: str) -> None:
        import matplotlib

        matplotlib.use("Agg")  # no display in a child process or on a cluster node
        import matplotlib.pyplot as plt

        epochs = [h["epoch"] for h in history]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for ax, metric in zip(axes, ("loss", "accuracy")):
            ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label="train")
            ax.plot(epochs, [h[f"val_{metric}"] for h in history], "s-", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        self._safe("log the learning curves", self.client.log_figure, self.run_id, fig, "plots/learning_curves.png")
        if self.lost is not None:
            (self.offline_dir / "plots").mkdir(parents=True, exist_ok=True)
            fig.savefig(self.offline_dir / "plots" / "learning_curves.png")
        plt.close(fig)

    def log_model(self, export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, step: int) -> str | None:
        """Logs the model with its flavor, a signature and an input example; returns the model URI.

        With the server unreachable, saves it in ``offline_dir/model`` instead and returns that path.
        """
        uri = self._safe("log the model", self._log_model, export, x_example, logits_example, step)
        if self.lost is None:
            return uri
        path = self.offline_dir / "model"
        self._save_model(export, x_example, logits_example, path)
        return str(path)

    def _save_model(self, export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, path: Path) -> None:
        import shutil

        flavor, kwargs = _model_kwargs(export, x_example, logits_example)
        shutil.rmtree(path, ignore_errors=True)  # a half-written copy from an earlier attempt
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flavor chatter about optional inputs
            flavor.save_model(path=str(path), **kwargs)

    def _log_model(self, export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, step: int) -> str:
        from mlflow.models import Model

        flavor, kwargs = _model_kwargs(export, x_example, logits_example)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flavor chatter about optional inputs
            # artifact_path=None: positional in MLflow 3.17; `name` replaces it
            info = Model.log(artifact_path=None, name="model", flavor=flavor, run_id=self.run_id, step=step, **kwargs)
        return info.model_uri


def _model_kwargs(export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The MLflow flavor module and what its save_model takes, for logging or saving offline alike."""
    import importlib

    from mlflow.models import infer_signature

    flavor = _KerasFlavor if export.flavor == "keras" else importlib.import_module(f"mlflow.{export.flavor}")
    return flavor, {
        "signature": infer_signature(x_example, logits_example),
        "input_example": x_example,
        # Explicit requirements: inferring them re-imports the model (about 11 s per model here).
        "pip_requirements": [*export.pip_requirements, f"mlflow=={mlflow.__version__}"],
        export.model_kwarg: export.model,
        **export.extra,
    }


class _KerasFlavor:
    """``mlflow.keras`` with its model folder created first.

    MLflow 3.17's ``mlflow.keras.save_model`` writes ``input_example.json`` into ``path`` before
    anything creates that folder, so logging a Keras model with an input example fails with
    FileNotFoundError. The saved model is exactly what ``mlflow.keras`` writes and loads.
    """

    __name__ = "mlflow.keras"

    @staticmethod
    def save_model(path: str, **kwargs: Any) -> Any:
        import mlflow.keras

        os.makedirs(path, exist_ok=True)
        return mlflow.keras.save_model(path=path, **kwargs)


class Reader:
    """Read access to a store for ``arena-compare``: finds experiments and runs, never creates them.

    Args:
        uri: tracking URI (a relative SQLite path is made absolute).
    """

    PAGE = 50000  # MLflow's largest search page

    def __init__(self, uri: str) -> None:
        self.uri = resolve_uri(uri)
        self.client = MlflowClient(self.uri)

    def experiment_ids(self, names: Sequence[str]) -> dict[str, str | None]:
        """Name -> id, None for a name this store does not hold (or holds as deleted)."""
        found: dict[str, str | None] = {}
        for name in names:
            exp = self.client.get_experiment_by_name(name)
            found[name] = exp.experiment_id if exp is not None and exp.lifecycle_stage == "active" else None
        return found

    def search(self, experiment_ids: Sequence[str], filter_string: str, max_results: int, order_by: Sequence[str] = ()) -> list[Any]:
        """Every run matching ``filter_string``, page by page, up to ``max_results``."""
        runs: list[Any] = []
        token = None
        while len(runs) < max_results:
            page = self.client.search_runs(
                list(experiment_ids),
                filter_string=filter_string,
                max_results=min(self.PAGE, max_results - len(runs)),
                order_by=list(order_by) or None,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        return runs

    def get(self, run_id: str) -> Any | None:
        try:
            return self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            return None

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one metric, in step order."""
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, key))

    def log_comparison(
        self, experiment_id: str, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any], metrics: Mapping[str, float], folder: str
    ) -> str:
        """A FINISHED comparison run holding ``folder``'s files as artifacts (FAILED if logging breaks)."""
        handle = RunHandle(self.uri, experiment_id=experiment_id)
        handle.start(run_name, tags)
        try:
            handle.log_params(params)
            handle.log_metrics(metrics)
            handle.client.log_artifacts(handle.run_id, folder)
        except BaseException:
            handle.end("FAILED")
            raise
        handle.end("FINISHED")
        return handle.run_id
