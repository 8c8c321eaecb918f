"""The Python API (framework_arena.api), the JSON outputs and the example notebook, against real
MLflow stores, real Hydra composition and real training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_arena, run_compare
from mlflow.tracking import MlflowClient

from framework_arena import api
from framework_arena.errors import ConfigError
from framework_arena.metric_names import known

ROOT = Path(__file__).resolve().parents[1]


def test_a_bad_override_raises_the_error_the_command_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        api.train(["optim.lr=-1", "trainer.batch_size=0"])
    proc = run_arena(["optim.lr=-1", "trainer.batch_size=0"], tmp_path)
    assert proc.returncode == 2
    for problem in err.value.problems:  # the same words, key, value and expectation
        assert problem in proc.stdout + proc.stderr
    assert "Expected optim.lr > 0. Received: optim.lr=-1.0" in str(err.value)
    assert not (tmp_path / "mlflow.db").exists()  # nothing created


@pytest.mark.slow
def test_train_returns_what_mlflow_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = api.train(["trainer.epochs=2", "tracking.experiment=api"])
    assert result.status == "FINISHED" and result.run_id
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_name == "torch-mlp-digits-s0"
    for key in ("val/accuracy", "test/accuracy", "speed/samples_per_s", "model/num_params", "speed/fit_time_s"):
        assert result.metrics[key] == pytest.approx(run.data.metrics[key], rel=1e-12), key
    assert result.metrics["val/accuracy"] > 0.5  # it learned
    # every metric in a section of the arena's vocabulary: the MLflow UI draws them as chart sections
    assert all(known(k) for k in run.data.metrics), [k for k in run.data.metrics if not known(k)]
    assert {k.split("/")[0] for k in run.data.metrics} >= {"train", "val", "test", "speed", "infer", "memory", "contention", "model"}


@pytest.mark.slow
def test_sweep_through_joblib_returns_the_parent_and_each_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = api.sweep(["framework=torch,tensorflow", "trainer.epochs=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "tracking.experiment=api-sweep"])
    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["arena.kind"] == "sweep" and "joblib" in parent.data.tags["arena.launcher"]
    assert [t.status for t in result.trials] == ["FINISHED", "FINISHED"] and result.ok
    assert {t.run_name for t in result.trials} == {"torch-mlp-digits-s0", "tensorflow-mlp-digits-s0"}
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert trial.metrics["val/accuracy"] == run.data.metrics["val/accuracy"] > 0.3


@pytest.mark.slow
def test_compare_returns_the_ranking_the_command_prints_as_json(shootout: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(shootout, store)  # a copy: this test logs no comparison run into the shared one
    common = [f"tracking.uri=sqlite:///{store / 'mlflow.db'}", "select.sweep=latest", "bootstrap.samples=200", "report.log_run=false"]
    proc = run_compare([*common, "report.format=json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)  # stdout holds the JSON only; the log went to stderr
    assert {r["framework"] for r in printed["ranking"]} == {"torch", "tensorflow", "keras-tensorflow"}
    assert all(isinstance(r["rank"], int) and 0 < r["score"] <= 1 for r in printed["ranking"])
    assert printed["criteria"]["quality"]["values"]["torch"]["value"] > 0.3  # never screened out (speed may be: contended runs)

    result = api.compare(common, out_dir=tmp_path / "api-report")
    table = result.ranking[["framework", "rank", "score"]].to_dict("records")
    assert [(r["framework"], r["rank"], round(r["score"], 6)) for r in table] == [(r["framework"], r["rank"], round(r["score"], 6)) for r in printed["ranking"]]
    assert set(result.criteria.criterion) >= {"train_throughput", "quality", "license"} and len(result.runs) == 6
    article_rows = len(api._compose("compare", []).criteria.article.rows)
    assert len(result.verdicts) == article_rows == len(printed["verdicts"]) and result.report_path.exists() and result.run_id is None
    assert "<table" in result._repr_html_()


@pytest.mark.slow
def test_arena_prints_one_json_line_with_the_switch(tmp_path: Path) -> None:
    proc = run_arena(["trainer.epochs=1", "tracking=none", "arena.json=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # the log goes to stderr
    line = json.loads(lines[0])
    assert line["status"] == "FINISHED" and line["run_id"] is None and line["metrics"]["val/accuracy"] > 0.3


@pytest.mark.slow
def test_the_example_notebook_runs_top_to_bottom_in_a_fresh_kernel(tmp_path: Path) -> None:
    import nbformat  # the dev extra installs nbformat, nbclient and ipykernel: no silent skip
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "notebooks" / "shootout.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "stored with outputs"
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert any("framework-arena: ranking" in h for h in html)  # the report inline (Comparison._repr_html_)
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs)  # the plot
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("notebook-shootout").experiment_id])
    kinds = sorted(r.data.tags.get("arena.kind", "") for r in runs)
    assert kinds == ["comparison", "sweep", "trial", "trial"], kinds
