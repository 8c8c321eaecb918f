"""The one error policy every MLflow call goes through (tracking.policy.Guard), on a real store and a
real unreachable address: strict mode raises, production warns and goes on, a lost server gets no
further request. And the sweep's parent run, held by its Sweep object, never stays RUNNING."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from framework_arena.errors import TrackingUnavailable
from framework_arena.ports import free_port
from framework_arena.sweep import PARENT_ENV, SWEEP_ENV, URI_ENV, Sweep
from framework_arena.tracking import Guard, MetricSender, RunHandle, configure_http

MISSING_RUN = "0" * 32


@pytest.fixture(scope="module")
def answering(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real store that answers, shared by the tests that only read it (or write to a run it lacks)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the schema once
    return uri


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch) -> str:
    """A tracking URI nothing listens on, with MLflow's HTTP client bounded to one quick try."""
    for var in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        # configure_http sets them; setenv (not delenv, which records nothing for a variable that
        # is not set) makes monkeypatch put them back as they were.
        monkeypatch.setenv(var, "")
    configure_http({"timeout_s": 2, "retries": 0})
    return f"http://127.0.0.1:{free_port()}"


def test_strict_mode_raises_what_mlflow_raised(answering: str) -> None:
    assert os.environ["ARENA_STRICT_TRACKING"] == "1"  # tests/conftest.py
    client = MlflowClient(answering)
    with pytest.raises(MlflowException):
        Guard(answering, MISSING_RUN).call("get the run", client.get_run, MISSING_RUN)


def test_production_warns_and_goes_on(answering: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ARENA_STRICT_TRACKING", "0")
    client = MlflowClient(answering)
    guard = Guard(answering, MISSING_RUN)
    with caplog.at_level(logging.WARNING, logger="framework_arena.tracking.policy"):
        assert guard.call("get the run", client.get_run, MISSING_RUN) is None
    assert f"Could not get the run for run {MISSING_RUN}" in caplog.text
    assert guard.lost is None  # the server answered: later requests are still made
    assert guard.call("look up the experiment", client.get_experiment_by_name, "Default") is not None


def test_raising_overrides_strict_mode(answering: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(answering)
    assert Guard(answering, raising=False).call("get the run", client.get_run, MISSING_RUN) is None  # at exit, even under test
    monkeypatch.setenv("ARENA_STRICT_TRACKING", "0")
    with pytest.raises(MlflowException):
        Guard(answering, raising=True).call("get the run", client.get_run, MISSING_RUN)


def test_unreachable_server_is_remembered_and_asked_nothing_more(nowhere: str, caplog: pytest.LogCaptureFixture) -> None:
    client = MlflowClient(nowhere)
    guard = Guard(nowhere, MISSING_RUN, kept="the results go to /somewhere")
    requests = []

    def get_run() -> object:
        requests.append(1)
        return client.get_run(MISSING_RUN)

    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="framework_arena.tracking.policy"):
        assert guard.call("get the run", get_run) is None  # strict mode too: the server is lost, not wrong
        assert guard.call("get the run again", get_run) is None
    assert time.monotonic() - start < 60
    assert requests == [1] and guard.lost is not None
    assert (
        f"MLflow tracking server at {nowhere} is unreachable (could not get the run); no further requests for run {MISSING_RUN}: the results go to /somewhere"
        in caplog.text
    )
    assert "again" not in caplog.text


def test_required_names_the_server_and_what_became_of_the_work(nowhere: str, answering: str) -> None:
    with pytest.raises(TrackingUnavailable) as raised:
        RunHandle(nowhere)
    assert (
        str(raised.value)
        == f"MLflow tracking server at {nowhere} is unreachable: connection refused (tracking.timeout_s=2, tracking.retries=0). Nothing was trained."
    )
    guard = Guard(answering)
    with pytest.raises(MlflowException), guard.required("Nothing was lost."):  # an answer, however unwelcome, passes through
        MlflowClient(answering).get_run(MISSING_RUN)
    assert guard.lost is None


def test_metric_sender_keeps_a_strict_error_for_close(answering: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = MetricSender(answering, MISSING_RUN)
    sender.add({"train/loss": 1.0}, 1)
    with pytest.raises(MlflowException):
        sender.close()
    monkeypatch.setenv("ARENA_STRICT_TRACKING", "0")
    sender = MetricSender(answering, MISSING_RUN)
    sender.add({"train/loss": 1.0}, 1)
    sender.close()  # production: warned, training went on
    assert sender.error is None and sender.lost is None


def test_metric_sender_stops_at_a_lost_server(nowhere: str) -> None:
    sender = MetricSender(nowhere, MISSING_RUN)
    sender.add({"train/loss": 1.0}, 1)
    sender.close()  # strict mode, yet no error: the relay keeps the metrics offline
    assert sender.lost is not None and sender.error is None


def _sweep(store: str, tmp_path: Path) -> Sweep:
    cfg = {"tracking": {"name": "sqlite", "uri": store, "experiment": "framework-arena"}, "arena": {"objective": "val/accuracy", "direction": "maximize"}}
    hydra_cfg = {"overrides": {"task": ["trainer.seed=0,1"]}, "launcher": {}, "sweeper": {}, "sweep": {"dir": str(tmp_path / "multirun")}}
    sweep = Sweep.start(cfg, hydra_cfg)
    assert sweep is not None and os.environ[PARENT_ENV] == sweep.run.run_id
    return sweep


@pytest.mark.parametrize("killed", [False, True], ids=["aborted", "interrupted"])
def test_a_sweep_that_never_summarized_is_marked_at_exit(store: str, tmp_path: Path, killed: bool) -> None:
    sweep = _sweep(store, tmp_path)
    try:
        sweep.killed = killed  # as its SIGTERM handler records it
        sweep.abort()  # what atexit calls
        sweep.abort()  # once only
    finally:
        for var in (PARENT_ENV, SWEEP_ENV, URI_ENV):
            os.environ.pop(var, None)
    run = MlflowClient(store).get_run(sweep.run.run_id)
    assert run.info.status == ("KILLED" if killed else "FAILED")
    assert run.data.tags["arena.failure_reason"] == ("sweep interrupted" if killed else "sweep aborted")


def test_a_finished_sweep_is_left_alone_at_exit(store: str, tmp_path: Path) -> None:
    sweep = _sweep(store, tmp_path)
    assert sweep.finish("maximize", "val/accuracy") == 0
    assert PARENT_ENV not in os.environ
    sweep.abort()
    run = MlflowClient(store).get_run(sweep.run.run_id)
    assert run.info.status == "FINISHED" and "arena.failure_reason" not in run.data.tags
    assert run.data.metrics["trials/total"] == 0


def test_processes_opening_a_fresh_sqlite_store_together_all_get_it(tmp_path: Path) -> None:
    """A parallel sweep's first trials, or arena-compare beside a trial: MLflow migrates a new
    SQLite file when it is opened, and plain clients opening it together broke each other's
    migration (the CI failure behind this test). Arena's processes take turns (store.open_client).
    A plain client racing them is left out: its failed migration can leave a half-migrated file
    (SQLite's DDL commits as it goes), which no retry mends: MLflow's own limit."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    handle = f"from framework_arena.tracking import RunHandle; RunHandle({uri!r}, 'together'); print('ok')"
    reader = f"from framework_arena.tracking import Reader; Reader({uri!r}); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for code in [handle] * 4 + [reader]]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
    client = MlflowClient(uri)
    [exp] = [e for e in client.search_experiments() if e.name == "together"]
    assert client.search_runs([exp.experiment_id]) == []
