"""A shared tracking server as a team runs it: PostgreSQL and ``mlflow server`` with basic auth
(``arena-server``), a parallel sweep logging to it, and an unauthenticated request refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import require_postgres, run_arena
from mlflow.tracking import MlflowClient

from framework_arena.server import TrackingServer

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "admin", "arena-team-s3cret-pw"
CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
EPOCHS = 2
SEEDS = (0, 1)  # one round of the 2 joblib workers


@pytest.fixture(scope="module")
def server() -> Iterator[TrackingServer]:
    """PostgreSQL and ``mlflow server --app-name basic-auth`` on free loopback ports, for this module."""
    require_postgres()
    # Not under pytest's tmp_path: as root, PostgreSQL runs as 'postgres', which must enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="arena-server-"))
    folder.chmod(0o755)
    os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] = PASSWORD
    srv = TrackingServer(folder / "server", port=0, auth=True, workers=2)
    try:
        with open(folder / "mlflow.log", "wb") as log:
            srv.start(log=log)
            yield srv
    finally:
        srv.stop()
        os.environ.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)
        shutil.rmtree(folder, ignore_errors=True)


def _status(url: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(url)
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_unauthenticated_requests_are_refused(server: TrackingServer) -> None:
    url = f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(url) == 401
    assert _status(url, ADMIN, "not-the-password") == 401
    assert _status(url, ADMIN, PASSWORD) == 200


@pytest.mark.slow
def test_parallel_sweep_arrives_whole(server: TrackingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [
        "-m",
        "hydra/launcher=parallel",
        "tracking=server",
        f"tracking.uri={server.uri}",
        "tracking.experiment=team",
        f"trainer.seed={','.join(map(str, SEEDS))}",
        f"trainer.epochs={EPOCHS}",
        "trainer.threads=1",
    ]
    proc = run_arena(args, tmp_path, timeout=600, env=CREDENTIALS)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for var, value in CREDENTIALS.items():
        monkeypatch.setenv(var, value)
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("team")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # served by the server, not a path of ours
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("arena.kind") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("arena.kind") == "trial"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials/finished"] == len(SEEDS)
    assert "JoblibLauncher" in parent.data.tags["arena.launcher"]
    assert sorted(r.data.params["trainer.seed"] for r in trials) == [str(s) for s in SEEDS]
    for run in trials:
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        for key in ("train/loss", "val/accuracy", "speed/epoch_time_s"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, EPOCHS + 1)), key
        assert {"test/accuracy", "model/num_params", "speed/fit_time_s", "memory/peak_rss_mb"} <= set(run.data.metrics)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "plots"}
        # Credentials come from the environment and are never logged.
        assert PASSWORD not in json.dumps([run.data.params, run.data.tags])
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"sweep_summary.csv", "sweep_summary.md"}

    models = client.search_logged_models(experiment_ids=[exp.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in trials)
    for model in models:
        assert "MLmodel" in {f.path for f in client.list_logged_model_artifacts(model.model_id)}
    # The artifacts went through the server into its --artifacts-destination.
    stored = [p for p in server.artifacts.rglob("*") if p.is_file()]
    assert len([p for p in stored if p.name == "MLmodel"]) == len(SEEDS)
    assert len([p for p in stored if p.name == "learning_curves.png"]) == len(SEEDS)
    assert not [p for p in stored if PASSWORD.encode() in p.read_bytes()]
