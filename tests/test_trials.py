"""Real trials in every framework, asserted on what MLflow stored.

The trials of each (framework, model) pair run once per session into one temporary store;
the tests read them back through MlflowClient as a user's tooling would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FRAMEWORKS, compose, framework_id, framework_overrides
from mlflow.tracking import MlflowClient

from framework_arena.runner import TrialResult, run_trial
from framework_arena.tracking import RunHandle

pytestmark = pytest.mark.slow

MODELS = ("mlp", "cnn")
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s")
FINAL_METRICS = (
    "test_loss",
    "test_accuracy",
    "num_params",
    "import_time_s",
    "time_to_first_step_s",
    "peak_rss_mb",
    "infer_latency_ms_p50",
    "infer_latency_ms_p95",
    "infer_samples_per_s",
)


@pytest.fixture(scope="session")
def trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[tuple[str, str], TrialResult]]:
    """Every framework x model with the default settings (10 epochs of digits), one store."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cases = {
        (framework_id(fb), model): [*framework_overrides(*fb), f"model={model}", f"tracking.uri={uri}", "tracking.experiment=shootout"]
        for fb in FRAMEWORKS
        for model in MODELS
    }
    RunHandle(uri, "shootout")  # the store and experiment once, before trials run two at a time
    # Two trials at a time: a trial is mostly its child's single-threaded imports, so this halves
    # the fixture's time on two cores; the trials' figures are not what these tests check.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case: pool.submit(run_trial, compose(overrides), overrides) for case, overrides in cases.items()}
    return uri, {case: f.result() for case, f in futures.items()}


CASES = [(framework_id(fb), m) for fb in FRAMEWORKS for m in MODELS]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_trial_learns_and_is_fully_tracked(trials, case: tuple[str, str], tmp_path: Path) -> None:
    uri, results = trials
    result = results[case]
    assert result.status == "FINISHED", result.message
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    framework, _, backend = case[0].partition("-")
    # status and name
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"{case[0]}-{case[1]}-digits-s0"
    # learned
    assert run.data.metrics["val_accuracy"] >= 0.90, run.data.metrics
    assert run.data.metrics["test_accuracy"] >= 0.85
    # params: the resolved config, flattened
    params = run.data.params
    assert params["framework.name"] == framework and params["model.name"] == case[1]
    assert params["optim.eps"] == "1e-07" and params["trainer.epochs"] == "10" and params["data.split_seed"] == "0"
    # tags
    tags = run.data.tags
    assert tags["arena.framework"] == framework and tags["arena.model"] == case[1] and tags["arena.data"] == "digits"
    assert tags["arena.framework_version"] and tags["arena.device"] == "cpu" and len(tags["arena.config_hash"]) == 16
    assert tags["arena.backend"] == backend if backend else "arena.backend" not in tags
    assert f"model={case[1]}" in tags["arena.overrides"]
    # metrics per epoch, steady-state throughput from the second epoch on
    for key in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, 11)), key
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch_samples_per_s")] == list(range(2, 11))
    # the steady figure: the median of the timed windows, once, with its spread
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_samples_per_s")] == [0]
    assert run.data.metrics["train_samples_per_s_p10"] <= run.data.metrics["train_samples_per_s"] <= run.data.metrics["train_samples_per_s_p90"]
    for key in FINAL_METRICS:
        assert run.data.metrics[key] > 0, key
    m = run.data.metrics
    assert 0 <= m["compile_time_s"] <= m["time_to_first_step_s"]
    assert m["infer_latency_ms_p95"] >= m["infer_latency_ms_p50"]
    assert "gpu_peak_mem_mb" not in m  # on a CPU
    assert tags["arena.compile"] == ("xla" if backend == "jax" else "off") and tags["arena.precision"] == "fp32"
    # where the wall time went, each process's phases within its own time
    phases = {k: v for k, v in m.items() if k.startswith("phase/")}
    assert {"phase/run_create_s", "phase/training_s", "phase/model_logging_s", "phase/total_s"} <= set(phases) and min(phases.values()) >= 0
    assert phases["phase/training_s"] <= phases["phase/child_s"] + phases["phase/run_create_s"] <= phases["phase/total_s"]
    # artifacts
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"config.yaml", "plots/learning_curves.png", "debug_probe.txt"} <= artifacts
    # the debugging probe: a planted shape bug's error, scored 0-2 (names shapes, names the layer)
    assert m["debug_error_clarity"] in (0.0, 1.0, 2.0)
    assert client.download_artifacts(run.info.run_id, "debug_probe.txt", str(tmp_path)) and Path(tmp_path, "debug_probe.txt").read_text().strip()


@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts_are_equal_across_frameworks(trials, model: str) -> None:
    _, results = trials
    counts = {case: r.metrics["num_params"] for case, r in results.items() if case[1] == model}
    assert len(set(counts.values())) == 1, counts


LOAD_AND_SCORE = textwrap.dedent(
    """
    import json, sys, mlflow, numpy as np
    from framework_arena import data
    mlflow.set_tracking_uri(sys.argv[1])
    model_id = mlflow.MlflowClient().get_run(sys.argv[2]).outputs.model_outputs[-1].model_id  # named after the trial
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    ds = data.load({"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}, 0)
    logits = np.asarray(model.predict(ds.test.x))
    print(json.dumps({"accuracy": float(np.mean(logits.argmax(-1) == ds.test.y)), "shape": list(logits.shape)}))
    """
)


@pytest.mark.parametrize("fb", FRAMEWORKS, ids=framework_id)
def test_logged_model_loads_and_predicts_like_the_trained_one(trials, fb: tuple[str, str | None]) -> None:
    """pyfunc in a fresh process (Keras needs its back end first) gives the logged test accuracy."""
    uri, results = trials
    result = results[(framework_id(fb), "cnn")]
    env = {**__import__("os").environ, **({"KERAS_BACKEND": fb[1]} if fb[1] else {})}
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_SCORE, uri, result.run_id], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"] == [269, 10]
    # Same predictions: one flipped test sample would move accuracy by 1/269; Keras logs float32.
    assert out["accuracy"] == pytest.approx(results[(framework_id(fb), "cnn")].metrics["test_accuracy"], abs=1e-6)
    client = MlflowClient(uri)
    logged = client.search_logged_models(experiment_ids=[client.get_run(result.run_id).info.experiment_id])
    assert any(m.source_run_id == result.run_id for m in logged)
