"""The store: where it is, its experiment, and the shapes MLflow takes metrics, tags and params in."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from framework_arena.notes import EXPERIMENT_NOTE, NOTE_TAG
from framework_arena.secrets import redact
from framework_arena.trial import resolve_uri  # noqa: F401 - re-exported: the one definition lives with the Trial

MAX_PARAM_LENGTH = 6000  # MLflow's limit for a param value
MAX_TAG_LENGTH = 5000  # the smallest tag-value limit among MLflow's stores
# The experiment's description in the UI, and its kind: runs of model training, not GenAI traces,
# so the UI lists runs rather than a traces overview.
EXPERIMENT_TAGS = {"arena.kind": "trials", NOTE_TAG: EXPERIMENT_NOTE, "mlflow.experimentKind": "custom_model_development"}


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (resolved: absolute), None for any other store."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) and ":memory:" not in uri else None


def open_client(uri: str, wait_s: float = 120.0) -> MlflowClient:
    """``MlflowClient(uri)``, safe when other processes open the same fresh SQLite store at once.

    MLflow migrates a SQLite store's schema when a client opens it. Two processes opening a new
    file together (a parallel sweep's first trials, arena beside an MLflow UI or a notebook) ran
    the migrations over each other and failed (``duplicate column name``, ``No such constraint``).
    Arena's own processes take turns through an exclusive ``flock`` on the database file (SQLite
    itself uses POSIX locks, which ``flock`` does not touch). Against another program's client, a
    failure inside the migrations is retried until that one has finished (then nothing is left to
    migrate); but when the other's migration fails half-way, the file stays half-migrated (SQLite
    commits each DDL statement as it goes) and only a new file mends it: MLflow's own limit.
    Other stores, and other errors (a locked or broken file), raise at once.
    """
    path = sqlite_file(uri)
    if path is None:
        return MlflowClient(uri)
    # Imported before taking the turn: 1-2 s of SQLAlchemy models and alembic, which parallel
    # trials' launchers starting together need not wait for one after another.
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    deadline = time.monotonic() + wait_s
    with _turn(path):
        while True:
            try:
                return MlflowClient(uri)
            except Exception as e:
                if not _in_migration(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@contextmanager
def _turn(path: Path) -> Iterator[None]:
    """Holds an exclusive flock on ``path`` (created empty, which SQLite reads as a new database)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a missing folder or no permission: MLflow's own error says so
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _in_migration(error: BaseException) -> bool:
    """Whether ``error`` came out of MLflow's schema migrations (and not from a held lock)."""
    seen: BaseException | None = error
    while seen is not None:
        if "database is locked" in str(seen):
            return False
        tb = seen.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if "db_migrations" in name or f"{os.sep}alembic{os.sep}" in name:
                return True
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return False


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Returns the experiment id for ``name``, creating it once (artifacts beside a SQLite file)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            raise RuntimeError(f"tracking.experiment={name!r} is deleted in this store: restore it in the MLflow UI or choose another name")
        return exp.experiment_id
    artifact_location = None
    uri = client.tracking_uri
    database = sqlite_file(uri)
    if database is not None:
        artifact_location = database.parent.joinpath("mlruns").as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and our create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


@contextmanager
def global_store(uri: str) -> Iterator[None]:
    """Points MLflow's process-wide store at ``uri`` for the block, then puts back what was there.

    For the calls that resolve the store only from global state (``models:/`` URIs: the
    ModelsArtifactRepository ignores ``download_artifacts(tracking_uri=...)``). ``set_tracking_uri``
    also exports ``MLFLOW_TRACKING_URI``: left set, a notebook's next ``arena`` would log to this store.
    """
    from mlflow.tracking._tracking_service import utils  # the one place that holds the global URI

    var = "MLFLOW_TRACKING_URI"
    before_uri, before_env = utils._tracking_uri, os.environ.get(var)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before_uri)  # None unsets the variable it exported...
        if before_env is not None:
            os.environ[var] = before_env  # ...and the user's own value comes back


def offline_dir(run_id: str) -> str:
    """Where a trial keeps its model and metrics if the server goes away: in Hydra's output folder."""
    try:
        from hydra.core.hydra_config import HydraConfig

        base = HydraConfig.get().runtime.output_dir
    except (ImportError, ValueError):  # not inside a Hydra app
        base = os.getcwd()
    return os.path.join(os.path.abspath(base), "arena-offline", run_id)


def metric_batch(metrics: Mapping[str, float], step: int) -> list[Metric]:
    """``metrics`` at ``step``, stamped now."""
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in metrics.items()]


def tag_batch(tags: Mapping[str, Any]) -> list[RunTag]:
    """``tags`` as strings, redacted and cut to the length every store accepts."""
    return [RunTag(k, str(redact(str(v), k))[:MAX_TAG_LENGTH]) for k, v in tags.items()]


def param_batch(params: Mapping[str, Any]) -> list[Param]:
    """``params`` as strings, redacted; None as ``null``; a value over MLflow's limit cut with ``...``."""
    return [Param(k, _param_value(redact(v, k))) for k, v in params.items()]


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."
