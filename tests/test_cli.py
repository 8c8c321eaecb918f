"""``arena`` as a new user runs it: from any folder, on the embedded default store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_arena
from mlflow.tracking import MlflowClient

from framework_arena.phases import CHILD, LAUNCHER


@pytest.mark.slow
def test_default_run_from_an_empty_folder(tmp_path: Path) -> None:
    proc = run_arena(["trainer.epochs=3", "arena.phases=true"], tmp_path)
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
    assert run.data.tags["arena.overrides"] == "trainer.epochs=3 arena.phases=true"
    # where the wall time went: every phase of both processes, each process's phases within its own time
    phases = {k.removeprefix("phase/").removesuffix("_s"): v for k, v in run.data.metrics.items() if k.startswith("phase/")}
    launcher, child = tuple(LAUNCHER), tuple(CHILD)  # every phase phases.py names, in its order
    assert set(launcher) | set(child) | {"total"} <= set(phases), sorted(phases)
    assert all(v >= 0 for v in phases.values()), phases
    assert sum(phases[k] for k in launcher) == pytest.approx(phases["total"], rel=1e-6)
    assert sum(phases[k] for k in child) <= phases["run_create"] + phases["child"] + phases["plots"] + 0.5
    # what the run itself lasted holds every launcher phase after its creation
    assert sum(phases[k] for k in launcher[2:]) <= (run.info.end_time - run.info.start_time) / 1000 + 0.5
    assert "Where the trial's wall time went" in out and "model_logging" in out  # the table, printed


@pytest.mark.slow
def test_tracking_none_trains_without_touching_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import compose

    from framework_arena.runner import run_trial

    monkeypatch.chdir(tmp_path)
    result = run_trial(compose(["tracking=none", "trainer.epochs=2"]))
    assert result.status == "FINISHED" and result.run_id is None
    assert result.metrics["test/accuracy"] > 0.5 and "speed/samples_per_s" in result.metrics
    assert {"run_create", "child", "exit", "finish"} <= set(result.phases) and {"import", "data", "training"} <= set(result.child_phases)
    assert "launch" not in result.phases and "tracking_start" not in result.child_phases  # called in-process; no logger
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no mlruns
