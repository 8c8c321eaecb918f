"""The tracking path users get by default: ``ARENA_STRICT_TRACKING`` unset (conftest sets it for
every other test), so a request MLflow refuses is a warning and training goes on.

Also the one LSTM trial of the suite (tiny), on that default path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import compose
from mlflow.tracking import MlflowClient

from framework_arena.runner import run_trial
from framework_arena.tracking import RunHandle

pytestmark = pytest.mark.slow

LONG_EPOCHS = 15


def test_lstm_trial_on_the_default_path_is_tracked_whole(store: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ARENA_STRICT_TRACKING")  # the child inherits this environment
    for var in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.setenv(var, "")  # tracking.configure_http sets them in-process; restored after
    overrides = ["model=lstm", "model.units=[8]", "data=synthetic", "data.num_samples=400", "trainer.epochs=1", f"tracking.uri={store}"]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FINISHED", result.message
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["arena.model"] == "lstm"
    assert [m.step for m in client.get_metric_history(result.run_id, "val/accuracy")] == [1]
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.metrics["test/accuracy"])
    assert run.data.metrics["model/num_params"] > 0
    [model] = client.search_logged_models([run.info.experiment_id])
    assert model.source_run_id == result.run_id and model.name.endswith("-lstm")
    err = capfd.readouterr().err
    assert "Could not" not in err and "unreachable" not in err  # nothing refused: no warning


def test_a_run_deleted_while_a_sweep_trains_warns_and_the_results_stay_intact(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "ARENA_STRICT_TRACKING"}
    args = ["-m", f"trainer.epochs={LONG_EPOCHS},1", "data=synthetic", "data.num_samples=20000", "trainer.threads=1", "tracking.log_model=false"]
    RunHandle(store, "framework-arena")  # the store's schema made here: the polling below must not race arena's migration
    exe = Path(sys.executable).with_name("arena")
    proc = subprocess.Popen([str(exe), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        client = MlflowClient(store)
        deadline = time.monotonic() + 300
        deleted = None
        while deleted is None and time.monotonic() < deadline and proc.poll() is None:
            exp = client.get_experiment_by_name("framework-arena") if (tmp_path / "mlflow.db").exists() else None
            runs = client.search_runs([exp.experiment_id], f"params.`trainer.epochs` = '{LONG_EPOCHS}'") if exp else []
            if runs and client.get_metric_history(runs[0].info.run_id, "val/accuracy"):
                deleted = runs[0].info.run_id
                client.delete_run(deleted)  # as a user might in the UI, mid-training
            else:
                time.sleep(0.2)
        assert deleted is not None, "the long trial logged no epoch"
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The default path warns about every refused request and goes on.
    assert proc.returncode == 0, out[-4000:]
    assert f"Could not log metrics for run {deleted}" in out
    assert "Traceback" not in out
    # Training results intact: both trials finished and said so with their figures.
    figures = re.findall(r": FINISHED in [\d.]+ s\n\s+val/accuracy (\d\.\d+)\s+test/accuracy (\d\.\d+)", out)
    assert len(figures) == 2, out[-4000:]
    assert "Sweep summary" in out and "2 finished" in out
    # The other trial is in the store whole.
    exp = client.get_experiment_by_name("framework-arena")
    [other] = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial'")
    assert other.info.status == "FINISHED" and other.data.params["trainer.epochs"] == "1"
    assert [m.step for m in client.get_metric_history(other.info.run_id, "val/accuracy")] == [1]
    assert "test/accuracy" in other.data.metrics
