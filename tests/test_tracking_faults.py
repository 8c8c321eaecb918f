"""An unreachable tracking server: a trial fails in seconds, names the URI, and loses nothing trained.

The time bounds below are generous guards against a hang (MLflow's defaults would wait minutes),
not measurements.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from framework_arena.ports import free_port
from framework_arena.server import TrackingServer

pytestmark = pytest.mark.integration

EPOCHS = 25
TRIAL = ["tracking=server", "tracking.timeout_s=5", "tracking.retries=1", "trainer.threads=1"]
# Several seconds of epochs after the first one, so the server goes away in the middle of training.
LONG = ["data=synthetic", "data.num_samples=40000", f"trainer.epochs={EPOCHS}"]


def _arena(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(Path(sys.executable).with_name("arena")), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("sweep", [[], ["-m", "trainer.seed=0,1"]], ids=["trial", "sweep"])
def test_no_server_fails_before_creating_a_run(tmp_path: Path, sweep: list[str]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    proc = _arena([*sweep, *TRIAL, "trainer.epochs=1", f"tracking.uri={uri}"], tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]
    assert time.monotonic() - start < 120
    assert f"MLflow tracking server at {uri} is unreachable: connection refused (tracking.timeout_s=5, tracking.retries=1). Nothing was trained." in out
    assert "Traceback" not in out
    assert not (tmp_path / "mlflow.db").exists()


def test_silent_server_fails_within_the_configured_timeout(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:  # connects, never answers
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        proc = _arena(["tracking=server", "tracking.timeout_s=2", "tracking.retries=1", "trainer.epochs=1", f"tracking.uri={uri}"], tmp_path)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]
    assert time.monotonic() - start < 120  # MLflow's defaults: 120 s per try, 7 retries
    assert f"MLflow tracking server at {uri} is unreachable: no answer in time (tracking.timeout_s=2, tracking.retries=1)." in out


@pytest.mark.slow
def test_server_lost_during_a_trial_keeps_its_results_on_disk(tmp_path: Path) -> None:
    server = TrackingServer(tmp_path / "server", port=0, workers=1, backend_uri=f"sqlite:///{tmp_path / 'server.db'}")
    with open(tmp_path / "mlflow.log", "wb") as log:
        server.start(log=log)
    try:
        proc = _arena([*TRIAL, *LONG, f"tracking.uri={server.uri}"], tmp_path)
        client = MlflowClient(server.uri)
        # The server goes away once the child has logged its first epoch.
        deadline = time.monotonic() + 180
        run = None
        while run is None and time.monotonic() < deadline and proc.poll() is None:
            exp = client.get_experiment_by_name("framework-arena")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            if runs and client.get_metric_history(runs[0].info.run_id, "val/accuracy"):
                run = runs[0]
            else:
                time.sleep(0.1)
        assert run is not None, "the trial never logged an epoch"
    finally:
        server.stop()
    stopped = time.monotonic()
    out, _ = proc.communicate(timeout=300)
    assert time.monotonic() - stopped < 150  # the rest of training (seconds) plus the failing requests

    assert proc.returncode == 1, out[-3000:]
    assert f"MLflow tracking server at {server.uri} is unreachable" in out
    match = re.search(r"the model and metrics are saved in (\S+)", out)
    assert match, out[-3000:]
    kept = Path(match.group(1))
    assert kept.parent.name == "arena-offline" and kept.name == run.info.run_id
    assert kept.is_relative_to(tmp_path / "outputs")  # in the trial's Hydra output folder
    record = json.loads((kept / "metrics.json").read_text())
    assert record["run_id"] == run.info.run_id and record["tracking_uri"] == server.uri
    steps = [m["step"] for m in record["metrics"] if m["key"] == "val/accuracy"]
    assert steps == list(range(1, EPOCHS + 1))  # every epoch, also those logged before the loss
    assert {m["key"] for m in record["metrics"]} >= {"test/accuracy", "model/num_params", "speed/fit_time_s"}
    assert record["tags"]["arena.framework_version"]
    assert "pytorch" in Model.load(str(kept / "model")).flavors
    assert (kept / "plots" / "learning_curves.png").stat().st_size > 0
