"""``arena`` as a new user runs it: from any folder, on the embedded default store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_arena
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_default_run_from_an_empty_folder(tmp_path: Path) -> None:
    proc = run_arena(["trainer.epochs=3"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "torch-mlp-digits-s0: FINISHED" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out
    assert "epoch" in proc.stderr  # the progress bar
    db = tmp_path / "mlflow.db"
    assert db.exists() and (tmp_path / "mlruns").is_dir()  # artifacts beside the store
    client = MlflowClient(f"sqlite:///{db}")
    [run] = client.search_runs([client.get_experiment_by_name("framework-arena").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["arena.overrides"] == "trainer.epochs=3"


@pytest.mark.slow
def test_tracking_none_trains_without_touching_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import compose

    from framework_arena.runner import run_trial

    monkeypatch.chdir(tmp_path)
    result = run_trial(compose(["tracking=none", "trainer.epochs=2"]))
    assert result.status == "FINISHED" and result.run_id is None
    assert result.metrics["test/accuracy"] > 0.5 and "speed/samples_per_s" in result.metrics
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no mlruns
