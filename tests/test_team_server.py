"""A team server people can trust: ``arena-server --auth`` refusing a wrong password or a missing
permission in one line, a reader's compare, the user and permission commands, and HTTPS.

Everything runs against real servers on loopback, started and stopped by this module (by pid).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
import requests
from conftest import require_postgres, run_arena, run_compare
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from framework_arena.errors import AccessDenied
from framework_arena.server import TrackingServer, main
from framework_arena.tracking.policy import access_denied, denied

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "admin", "arena-team-admin-pw-7f3c"
WRONG = "wrong-pw-4a9d81e2c6"
READER, READER_PASSWORD = "rita", "rita-reads-only-pw-88"
ADMIN_ENV = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
READER_ENV = {"MLFLOW_TRACKING_USERNAME": READER, "MLFLOW_TRACKING_PASSWORD": READER_PASSWORD}
EXPERIMENT = "team"
TRIAL = ["tracking=server", f"tracking.experiment={EXPERIMENT}", "trainer.epochs=1", "trainer.threads=1", "tracking.retries=0"]


def _folder() -> Path:
    # Not under pytest's tmp_path: as root, PostgreSQL runs as 'postgres', which must enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="arena-team-"))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def server() -> Iterator[TrackingServer]:
    """``arena-server --auth`` (PostgreSQL, basic auth) on free loopback ports, with one admin trial in ``team``."""
    require_postgres()
    folder = _folder()
    os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] = PASSWORD
    srv = TrackingServer(folder / "server", port=0, auth=True, workers=1)
    try:
        with open(folder / "mlflow.log", "wb") as log:
            srv.start(log=log)
            # The admin's trial: the experiment exists (owned by the admin) and compare has a run to rank.
            proc = run_arena([*TRIAL, f"tracking.uri={srv.uri}", "trainer.epochs=2"], folder, env=ADMIN_ENV)
            assert proc.returncode == 0, proc.stderr[-3000:]
            yield srv
    finally:
        srv.stop()
        os.environ.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)
        shutil.rmtree(folder, ignore_errors=True)


def _accounts(server: TrackingServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("arena-server")
    env = {**os.environ, **ADMIN_ENV}
    return subprocess.run([str(exe), *args, "--uri", server.uri], input=stdin, capture_output=True, text=True, timeout=60, env=env)


def _admin(server: TrackingServer, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    for var, value in ADMIN_ENV.items():
        monkeypatch.setenv(var, value)
    return MlflowClient(server.uri)


def _runs(client: MlflowClient, name: str) -> list[str]:
    exp = client.get_experiment_by_name(name)
    return [] if exp is None else [r.info.run_id for r in client.search_runs([exp.experiment_id])]


def _one_error_line(out: str, *expected: str) -> str:
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if all(e in line for e in expected)]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture(scope="module")
def reader(server: TrackingServer) -> str:
    """A user created and granted READ on ``team`` by the commands under test."""
    proc = _accounts(server, "user", "add", READER, "--password-stdin", stdin=READER_PASSWORD + "\n")
    assert proc.returncode == 0, proc.stderr
    proc = _accounts(server, "grant", READER, EXPERIMENT, "read")
    assert proc.returncode == 0, proc.stderr
    return READER


def test_refusals_are_classified_once() -> None:
    """401 and 403 are read from MLflow's exception, and the messages never quote the secret."""
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "bob", WRONG
    try:
        unauthenticated = MlflowException("API request to endpoint /x failed with error code 401 != 200", error_code="UNAUTHENTICATED")
        forbidden = MlflowException("API request to endpoint /x failed with error code 403 != 200", error_code="PERMISSION_DENIED")
        assert denied(unauthenticated) == 401 and denied(forbidden) == 403 and denied(MlflowException("boom")) is None
        text = str(access_denied("http://h:1", unauthenticated, kept="Nothing was trained."))
        assert "http://h:1" in text and "MLFLOW_TRACKING_PASSWORD" in text and "MLFLOW_TRACKING_TOKEN" in text and WRONG not in text
        text = str(access_denied("http://h:1", forbidden, "team", "EDIT"))
        assert "'team'" in text and "EDIT" in text and "arena-server grant bob team EDIT" in text
        assert isinstance(access_denied("u", forbidden), AccessDenied)
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME")
        os.environ.pop("MLFLOW_TRACKING_PASSWORD")


@pytest.mark.slow
def test_wrong_password_one_line(server: TrackingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": WRONG}
    (tmp_path / "m").mkdir()
    single = run_arena([*TRIAL, f"tracking.uri={server.uri}", "tracking.experiment=wrong-pw"], tmp_path, env=env)
    sweep = run_arena(["-m", *TRIAL, f"tracking.uri={server.uri}", "tracking.experiment=wrong-pw", "trainer.seed=0,1"], tmp_path / "m", env=env)
    for proc in (single, sweep):
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        _one_error_line(out, server.uri, "HTTP 401", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
        assert WRONG not in out and PASSWORD not in out
    assert _runs(_admin(server, monkeypatch), "wrong-pw") == []  # no experiment, no run


@pytest.mark.slow
def test_reader_cannot_train(server: TrackingServer, reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _admin(server, monkeypatch)
    before = _runs(client, EXPERIMENT)
    proc = run_arena([*TRIAL, f"tracking.uri={server.uri}"], tmp_path, env=READER_ENV)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    line = _one_error_line(out, server.uri, "HTTP 403")
    assert f"'{EXPERIMENT}'" in line and "EDIT" in line and f"arena-server grant {reader} {EXPERIMENT} EDIT" in line and "Nothing was trained" in line
    assert READER_PASSWORD not in out
    assert _runs(client, EXPERIMENT) == before


@pytest.mark.slow
def test_reader_compares_without_logging(server: TrackingServer, reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in READER_ENV.items():
        monkeypatch.setenv(var, value)
    out_dir = tmp_path / "out"
    proc = run_compare(["tracking=server", f"tracking.uri={server.uri}", f"tracking.experiment={EXPERIMENT}", f"hydra.run.dir={out_dir}"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Ranking, profile balanced" in out
    assert (out_dir / "comparison" / "report.html").is_file()
    line = _one_error_line(out, "Could not log the comparison run", "HTTP 403")
    assert "EDIT" in line and f"'{EXPERIMENT}'" in line
    assert READER_PASSWORD not in out
    client = _admin(server, monkeypatch)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert not [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("arena.kind") == "comparison"]


@pytest.mark.slow
def test_user_and_permission_commands(server: TrackingServer, reader: str) -> None:
    """The commands' user and grant, as MLflow's auth API reports them; the new password works."""
    auth = (ADMIN, PASSWORD)
    user = requests.get(f"{server.uri}/api/2.0/mlflow/users/get", params={"username": reader}, auth=auth, timeout=30)
    assert user.status_code == 200 and user.json()["user"]["username"] == reader
    exp_id = requests.get(f"{server.uri}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT}, auth=auth, timeout=30)
    params = {"username": reader, "resource_type": "experiment", "resource_id": exp_id.json()["experiment"]["experiment_id"]}
    granted = requests.get(f"{server.uri}/api/3.0/mlflow/users/permissions/get", params=params, auth=auth, timeout=30)
    assert granted.status_code == 200 and granted.json()["permission"] == "READ"
    shown = _accounts(server, "permission", reader, EXPERIMENT)
    assert shown.returncode == 0 and f"{reader} on experiment '{EXPERIMENT}': READ" in shown.stdout
    assert requests.get(f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1", auth=(reader, READER_PASSWORD), timeout=30).status_code == 200

    proc = _accounts(server, "user", "password", "temp-user", "--password-stdin", stdin="x-password-123456\n")
    assert proc.returncode == 1 and "temp-user" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = _accounts(server, "grant", reader, "no-such-experiment", "EDIT")
    assert proc.returncode == 1 and "No experiment named 'no-such-experiment'" in proc.stderr, proc.stderr


def test_auth_without_tls_beyond_loopback_warns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)  # the start then fails at once: only the warning is tested
    assert main(["--dir", str(tmp_path / "s"), "--auth", "--host", "0.0.0.0"]) == 1
    assert "passwords travel in clear" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[TrackingServer, Path]]:
    """``mlflow server`` over HTTPS with a self-signed certificate for 127.0.0.1 (SQLite store: TLS is what is tested)."""
    folder = _folder()
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    srv = TrackingServer(folder / "server", port=0, workers=1, backend_uri=f"sqlite:///{folder / 'mlflow.db'}", tls_cert=cert, tls_key=key)
    try:
        with open(folder / "mlflow.log", "wb") as log:
            srv.start(log=log)
            yield srv, cert
    finally:
        srv.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_trial_over_https(tls_server: tuple[TrackingServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv, cert = tls_server
    assert srv.uri.startswith("https://127.0.0.1:")
    monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH", raising=False)
    untrusted = run_arena([*TRIAL, f"tracking.uri={srv.uri}"], tmp_path)
    out = untrusted.stdout + untrusted.stderr
    assert untrusted.returncode == 1, out
    _one_error_line(out, srv.uri, "not trusted", "MLFLOW_TRACKING_SERVER_CERT_PATH")

    (tmp_path / "t").mkdir()
    trusted = run_arena([*TRIAL, f"tracking.uri={srv.uri}"], tmp_path / "t", env={"MLFLOW_TRACKING_SERVER_CERT_PATH": str(cert)})
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
    client = MlflowClient(srv.uri)
    [run] = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert run.info.status == "FINISHED" and "test/accuracy" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml"}
