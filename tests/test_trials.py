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

from framework_arena.metric_names import known
from framework_arena.runner import TrialResult, run_trial
from framework_arena.tracking import RunHandle

pytestmark = pytest.mark.slow

MODELS = ("mlp", "cnn")
EPOCH_METRICS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "speed/epoch_time_s")
FINAL_METRICS = (
    "test/loss",
    "test/accuracy",
    "model/num_params",
    "speed/import_time_s",
    "speed/time_to_first_step_s",
    "memory/peak_rss_mb",
    "infer/latency_ms_p50",
    "infer/latency_ms_p95",
    "infer/samples_per_s",
)


@pytest.fixture(scope="session")
def trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[tuple[str, str], TrialResult]]:
    """Every framework x model with the default settings (10 epochs of digits), one store."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cases = {
        (framework_id(fb), model): [
            *framework_overrides(*fb),
            f"model={model}",
            f"tracking.uri={uri}",
            "tracking.experiment=shootout",
            "tracking.tensorboard=true",
        ]
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
    assert run.data.metrics["val/accuracy"] >= 0.90, run.data.metrics
    assert run.data.metrics["test/accuracy"] >= 0.85
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
    assert [m.step for m in client.get_metric_history(run.info.run_id, "speed/epoch_samples_per_s")] == list(range(2, 11))
    # the steady figure: the median of the timed windows, once, with its spread
    assert [m.step for m in client.get_metric_history(run.info.run_id, "speed/samples_per_s")] == [0]
    assert run.data.metrics["speed/samples_per_s_p10"] <= run.data.metrics["speed/samples_per_s"] <= run.data.metrics["speed/samples_per_s_p90"]
    for key in FINAL_METRICS:
        assert run.data.metrics[key] > 0, key
    m = run.data.metrics
    assert 0 <= m["speed/compile_time_s"] <= m["speed/time_to_first_step_s"]
    assert m["infer/latency_ms_p95"] >= m["infer/latency_ms_p50"]
    assert "memory/gpu_peak_mb" not in m  # on a CPU
    assert all(known(k) for k in m), [k for k in m if not known(k)]  # every metric in a section (metric_names.py)
    assert tags["arena.compile"] == ("xla" if backend == "jax" else "off") and tags["arena.precision"] == "fp32"
    # where the wall time went, each process's phases within its own time
    phases = {k: v for k, v in m.items() if k.startswith("phase/")}
    assert {"phase/run_create_s", "phase/training_s", "phase/model_logging_s", "phase/total_s"} <= set(phases) and min(phases.values()) >= 0
    assert phases["phase/training_s"] <= phases["phase/child_s"] + phases["phase/run_create_s"] <= phases["phase/total_s"]
    # artifacts
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"config.yaml", "plots/learning_curves.png", "debug_probe.txt"} <= artifacts
    # the debugging probe: a planted shape bug's error, scored 0-2 (names shapes, names the layer)
    assert m["debug/error_clarity"] in (0.0, 1.0, 2.0)
    assert client.download_artifacts(run.info.run_id, "debug_probe.txt", str(tmp_path)) and Path(tmp_path, "debug_probe.txt").read_text().strip()


@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts_are_equal_across_frameworks(trials, model: str) -> None:
    _, results = trials
    counts = {case: r.metrics["model/num_params"] for case, r in results.items() if case[1] == model}
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
    assert out["accuracy"] == pytest.approx(results[(framework_id(fb), "cnn")].metrics["test/accuracy"], abs=1e-6)
    client = MlflowClient(uri)
    logged = client.search_logged_models(experiment_ids=[client.get_run(result.run_id).info.experiment_id])
    assert any(m.source_run_id == result.run_id for m in logged)


#: The framework's own words in model_summary.txt: torch's module printout, Keras' summary(), the tf.Module's variables.
OWN_WORDS = {"torch": ("Sequential(", "Linear(in_features="), "tensorflow": ("tf.Module", "tf.Variables"), "keras": ("Total params:", "Trainable params:")}


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_model_summary_in_the_frameworks_words_beside_the_neutral_table(trials, case: tuple[str, str], tmp_path: Path) -> None:
    uri, results = trials
    run_id = results[case].run_id
    client = MlflowClient(uri)
    own = Path(client.download_artifacts(run_id, "model_summary.txt", str(tmp_path))).read_text()
    neutral = Path(client.download_artifacts(run_id, "model_layers.txt", str(tmp_path))).read_text()
    for words in OWN_WORDS[case[0].partition("-")[0]]:
        assert words in own, own
    num_params = int(client.get_run(run_id).data.metrics["model/num_params"])
    assert f"{num_params:,}" in own  # each framework's own count, equal to the spec's
    assert f"Trainable parameters: {num_params:,}" in neutral
    assert ("conv2d" in neutral) == (case[1] == "cnn") and "dense" in neutral and "(8, 8, 1)" in neutral


#: Where the framework's tool gives the model's graph (Keras on torch and jax: none).
GRAPHS = {"torch": True, "tensorflow": True, "keras-tensorflow": True, "keras-torch": False, "keras-jax": False}


@pytest.mark.parametrize("fb", FRAMEWORKS, ids=framework_id)
def test_tensorboard_event_files_parse_with_tensorboards_reader(trials, fb: tuple[str, str | None], tmp_path: Path) -> None:
    """The reader TensorBoard's own server uses (tf.summary writes v2 tensor summaries, torch v1 ones: it reads both)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    uri, results = trials
    run_id = results[(framework_id(fb), "cnn")].run_id
    client = MlflowClient(uri)
    events = EventAccumulator(client.download_artifacts(run_id, "tensorboard", str(tmp_path)))
    events.Reload()
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy"} <= set(events.PluginTagToContent("scalars"))
    history = {m.step: pytest.approx(m.value, abs=1e-6) for m in client.get_metric_history(run_id, "val/accuracy")}
    assert {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors("val/accuracy")} == history  # MLflow's curve
    histograms = sorted(events.PluginTagToContent("histograms"))
    assert len(histograms) >= 8, histograms  # two convolutions' and two dense layers' kernels and biases
    assert [e.step for e in events.Tensors(histograms[0])] == list(range(1, 11))
    assert events.Tags()["graph"] is GRAPHS[framework_id(fb)]
    run = client.get_run(run_id)
    assert run.data.tags["arena.tensorboard_graph"] == str(GRAPHS[framework_id(fb)]).lower()
    assert run.data.tags["arena.tensorboard_histograms"] == "true" and run.data.tags["arena.tensorboard_scalars"] == "true"
    assert run.data.metrics["tensorboard/bytes"] == sum(f.stat().st_size for f in (tmp_path / "tensorboard").rglob("*") if f.is_file())
    assert 0 < run.data.metrics["tensorboard/fit_write_s"] < run.data.metrics["tensorboard/write_s"]  # the writes inside training, and all of it
