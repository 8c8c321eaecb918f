"""Deployment: models findable in MLflow, registered and promoted, served and timed by MLflow's scoring server.

Asserts on what MLflow stored and on the scoring server's real answers; no mocks.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import run_arena, run_compare
from mlflow.tracking import MlflowClient

from framework_arena.phases import PREFIX as PHASE_PREFIX

FRAMEWORKS = ("torch", "tensorflow", "keras")


@pytest.mark.slow
def test_every_framework_s_models_are_findable_with_every_final_metric_linked(shootout: Path) -> None:
    client = MlflowClient(f"sqlite:///{shootout / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("framework-arena")
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id], "tags.`arena.kind` = 'trial'")}
    by_accuracy = client.search_logged_models([experiment.experiment_id], filter_string="metrics.`val/accuracy` > 0.0")
    assert {m.source_run_id for m in by_accuracy} == set(runs), "every trial's model has its last val/accuracy linked"
    for framework in FRAMEWORKS:
        found = client.search_logged_models([experiment.experiment_id], filter_string=f"tags.`arena.framework` = '{framework}'")
        assert len(found) == 2, f"{framework}: one model per seed"
        for model in found:
            run = runs[model.source_run_id]
            backend = f"-{run.data.tags['arena.backend']}" if "arena.backend" in run.data.tags else ""
            assert model.name == f"{framework}{backend}-{run.data.params['model.name']}"
            linked = {}
            for m in model.metrics:  # the last value of each key
                if m.key not in linked or m.step >= linked[m.key][0]:
                    linked[m.key] = (m.step, m.value)
            # Every figure of the model is linked; the run's wall-time breakdown (phase/*, phases.py) is
            # about the trial's processes, logged by the launcher after the linking (its finish phase times it).
            for key, value in run.data.metrics.items():
                if not key.startswith(PHASE_PREFIX):
                    assert linked[key][1] == pytest.approx(value), f"{framework} {key}: linked {linked.get(key)}, run {value}"
            assert not [k for k in linked if k.startswith(PHASE_PREFIX)] and "phase/total_s" in run.data.metrics
            for key in (
                "val/accuracy",
                "speed/samples_per_s",
                "speed/fit_time_s",
                "test/accuracy",
                "infer/latency_ms_p50",
                "memory/peak_rss_mb",
                "debug/error_clarity",
            ):
                assert key in linked, f"{framework}: {key} not linked to the model"
            assert model.tags["arena.model"] == run.data.tags["arena.model"]
            assert "null" not in model.params.values() and model.params["trainer.seed"] == run.data.params["trainer.seed"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a torch and a Keras-on-torch trial, both registered (tracking.register=true)."""
    folder = tmp_path_factory.mktemp("registered")
    proc = run_arena(["-m", "framework=torch,keras_torch", "trainer.epochs=2", "tracking.register=true"], folder, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder


@pytest.mark.slow
def test_registered_versions_and_the_champion_is_the_comparison_s_winner(registered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{registered / 'mlflow.db'}"
    client = MlflowClient(store)
    versions = {v.name: v for v in client.search_model_versions()}
    assert set(versions) == {"framework-arena-torch-mlp", "framework-arena-keras-torch-mlp"}

    proc = run_compare([f"tracking.uri={store}", "report.promote=true", "report.run_name=promote", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    comparison = client.search_runs([client.get_experiment_by_name("framework-arena").experiment_id], "tags.`arena.kind` = 'comparison'")[0]
    winner = comparison.data.tags["arena.winner"].split(",")[0]
    name = f"framework-arena-{winner}-mlp"
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["arena.comparison_run"] == comparison.info.run_id
    run = client.get_run(champion.run_id)
    assert (run.data.tags["arena.framework"] + (f"-{run.data.tags['arena.backend']}" if "arena.backend" in run.data.tags else "")) == winner

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # as a user would; set_tracking_uri would outlive the test
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    example = json.loads(
        (Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "m"))) / "serving_input_example.json").read_text()
    )
    assert np.asarray(model.predict(np.asarray(example["inputs"], dtype=np.float32))).shape[0] == len(example["inputs"])


@pytest.mark.slow
def test_serving_benchmark_serves_torch_and_keras_through_mlflow_and_leaves_nothing_behind(registered: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{registered / 'mlflow.db'}"
    out = tmp_path / "out"
    args = [f"tracking.uri={store}", "deploy=true", "serve.requests=5", "serve.throughput_requests=1", "serve.startup_timeout_s=300", "report.run_name=deploy"]
    proc = run_compare([*args, f"hydra.run.dir={out}"], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    served = json.loads((out / "comparison" / "serving.json").read_text())
    assert {s["group"] for s in served} == {"torch", "keras-torch"}
    for s in served:
        assert s["error"] is None, s["error"]
        for pid in s["pids"]:  # the CLI and its uvicorn (same process group) are gone
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)
    client = MlflowClient(store)
    for s in served:
        run = client.get_run(s["run_id"])
        for key in (
            "serve/startup_s",
            "serve/latency_ms_p50_1row",
            "serve/latency_ms_p95_64row",
            "serve/rows_per_s_1024row",
            "serve/model_size_mb",
            "serve/pinned_requirements",
        ):
            assert run.data.metrics[key] > 0, key
        if s["group"] == "keras-torch":  # served on the back end it was trained on
            assert run.data.tags["arena.serve_keras_backend"] == "torch"
            assert "model.predict" in run.data.tags["arena.serve_flavor"]
    with (out / "comparison" / "criteria.csv").open() as f:
        rows = {r["framework"]: r for r in csv.DictReader(f) if r["criterion"] == "deployment"}
    assert set(rows) == {"torch", "keras-torch"}
    for row in rows.values():
        assert float(row["value"]) > 0 and "pinned requirements" in row["note"]
    assert "Serving latency" in proc.stdout
