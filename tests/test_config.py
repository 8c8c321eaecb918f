"""Composition, type checks and semantic validation: bad values fail before any run exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compose, run_arena
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from framework_arena import identity, validation
from framework_arena.trial import plain


def test_search_path_plugin_is_discovered() -> None:
    names = [p.__name__ for p in Plugins.instance().discover(SearchPathPlugin)]
    assert "FrameworkArenaSearchPathPlugin" in names


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["framework=tensorflow", "model=cnn", "optim=sgd"],
        ["framework=keras", "framework.backend=torch", "model=lstm", "optim=adamw"],
        ["data=synthetic", "data.shape=[12,5]", "model=lstm"],
    ],
)
def test_every_group_composes_and_validates(overrides: list[str]) -> None:
    cfg = plain(compose(overrides))
    validation.validate(cfg)
    assert cfg["data"]["split_seed"] == cfg["trainer"]["seed"]


def test_defaults_are_written_out_in_full() -> None:
    cfg = plain(compose())
    assert cfg["framework"] == {"name": "torch", "backend": None, "compile": False}
    assert cfg["trainer"]["precision"] == "fp32" and cfg["trainer"]["warmup_steps"] is None
    assert cfg["tracking"]["log_every_n_steps"] == 0 and cfg["tracking"]["system_metrics"] is False
    assert cfg["optim"] == {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}
    assert cfg["tracking"]["uri"] == "sqlite:///mlflow.db"
    assert cfg["tracking"]["experiment"] == "framework-arena"


@pytest.mark.parametrize(
    "overrides, key, value",
    [
        (["optim.lr=-1"], "optim.lr", "-1.0"),
        (["trainer.batch_size=-8"], "trainer.batch_size", "-8"),
        (["trainer.epochs=0"], "trainer.epochs", "0"),
        (["model.dropout=1.0"], "model.dropout", "1.0"),
        (["trainer.device=tpu"], "trainer.device", "'tpu'"),
        (["framework=keras", "framework.backend=mxnet"], "framework.backend", "'mxnet'"),
        (["framework.backend=torch"], "framework.backend", "'torch'"),
        (["model=cnn", "model.kernel_size=4"], "model.kernel_size", "4"),
        (["model=cnn", "data=synthetic", "data.shape=[10,4]"], "data.shape", "length 2"),
        (["optim=sgd", "optim.momentum=1.5"], "optim.momentum", "1.5"),
        (["model=cnn", "model.filters=[8,8,8,8]"], "model=cnn", "(8, 8, 1)"),
        (["data=idx"], "data.path", "None"),
        (["tracking=server", "tracking.uri=file:///tmp/x"], "tracking.uri", "file:///tmp/x"),
        (["tracking=server", "tracking.uri=http://mlflow:5000", "tracking.timeout_s=0"], "tracking.timeout_s", "0"),
        (["tracking.retries=-1"], "tracking.retries", "-1"),
        (["trainer.precision=fp16"], "trainer.precision", "'fp16'"),
        (["trainer.warmup_steps=-1"], "trainer.warmup_steps", "-1"),
        (["trainer.inference_runs=0"], "trainer.inference_runs", "0"),
        (["tracking.log_every_n_steps=-5"], "tracking.log_every_n_steps", "-5"),
    ],
)
def test_validation_names_key_value_and_expectation(overrides: list[str], key: str, value: str) -> None:
    with pytest.raises(validation.ConfigError) as err:
        validation.validate(plain(compose(overrides)))
    text = str(err.value)
    assert key in text and value in text and ("Expected" in text or "needs" in text), text


@pytest.mark.parametrize("objective", ["val/accuracy", "val_accuracy", "speed/samples_per_s", "train_samples_per_s"])
def test_the_objective_takes_the_sectioned_name_or_the_flat_one(objective: str) -> None:
    from framework_arena.trial import resolve_trial

    cfg = compose([f"arena.objective={objective}"])
    validation.validate(plain(cfg))
    assert resolve_trial(cfg).objective == ("val/accuracy" if "val" in objective else "speed/samples_per_s")  # what the sweeper gets


def test_a_run_s_flat_metric_names_read_as_sectioned_ones() -> None:
    from framework_arena.metric_names import METRICS, RENAMED, SECTIONED_ONLY, current, flat_name

    assert current({"val_accuracy": 0.9, "train_samples_per_s": 5.0, "system/cpu_utilization_percentage": 1.0}) == {
        "val/accuracy": 0.9,
        "speed/samples_per_s": 5.0,
        "system/cpu_utilization_percentage": 1.0,  # MLflow's own names stay
    }
    assert current({"val_accuracy": 0.1, "val/accuracy": 0.9}) == {"val/accuracy": 0.9}  # both spellings: the sectioned one
    assert current({"best_val_accuracy": 0.9}) == {"best/val/accuracy": 0.9}  # a sweep parent's
    assert all(flat_name(name) and current({flat_name(name): 1}) == {name: 1} for name in RENAMED.values())
    assert all(flat_name(name) is None and current({name: 1}) == {name: 1} for name in SECTIONED_ONLY)  # born sectioned
    assert len(set(METRICS)) == len(METRICS) and all("/" in name for name in METRICS)


def test_an_unknown_objective_lists_the_sectioned_names() -> None:
    with pytest.raises(validation.ConfigError) as err:
        validation.validate(plain(compose(["arena.objective=accuracy"])))
    assert "Expected arena.objective in ('val/accuracy', 'test/accuracy'" in str(err.value) and "Received: arena.objective='accuracy'" in str(err.value)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(validation.ConfigError) as err:
        validation.validate(plain(compose(["optim.lr=-1", "trainer.epochs=0", "model.init=zeros"])))
    assert len(err.value.problems) == 3


def test_config_hash_ignores_where_results_go() -> None:
    a = plain(compose())
    b = plain(compose(["tracking.uri=sqlite:///elsewhere.db", "tracking.experiment=x"]))
    d = plain(compose(["optim.lr=0.002"]))
    assert identity.config_hash(a) == identity.config_hash(b) != identity.config_hash(d)


def test_run_name_and_flatten() -> None:
    cfg = plain(compose(["framework=keras", "framework.backend=jax", "model=cnn", "trainer.seed=3"]))
    assert identity.run_name(cfg) == "keras-jax-cnn-digits-s3"
    flat = dict(identity.flatten(cfg))
    assert flat["optim.eps"] == 1e-7 and flat["model.filters"] == [16, 32]


def _assert_no_run_created(cwd: Path) -> None:
    db = cwd / "mlflow.db"
    if db.exists():  # nothing should have created it, but if something did, it must hold no run
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{db}")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize(
    "args, expected",
    [
        (["optim.lr=-1"], "Expected optim.lr > 0. Received: optim.lr=-1.0"),
        (["trainer.batch_size=-1"], "Expected trainer.batch_size >= 1. Received: trainer.batch_size=-1"),
        (["data=idx", "data.path=/no/such/folder"], "data.path='/no/such/folder' does not exist"),
        (["framework=caffe"], "Could not find 'framework/caffe'"),
        (["optim.lr=abc"], "could not be converted to Float"),
        (["framework.compile=maybe"], "Value 'maybe' is not a valid bool"),
        (["trainer.precision=fp8"], "Expected trainer.precision in ('fp32', 'bf16'). Received: trainer.precision='fp8'"),
        pytest.param(
            ["trainer.device=cuda"],
            "Received: trainer.device='cuda'",
            marks=pytest.mark.skipif(validation.gpu_visible(), reason="this machine has a GPU"),
        ),
    ],
)
def test_cli_rejects_bad_values_before_creating_a_run(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = run_arena(args, tmp_path, timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    _assert_no_run_created(tmp_path)


def test_cli_lists_valid_options_for_unknown_framework(tmp_path: Path) -> None:
    proc = run_arena(["framework=caffe"], tmp_path, timeout=120)
    out = proc.stdout + proc.stderr
    for name in ("keras", "tensorflow", "torch"):
        assert f"\t{name}" in out


def test_the_resolved_trial_is_what_is_hashed_and_its_hash_is_stable_across_releases() -> None:
    from framework_arena.trial import Trial, resolve_trial

    trial = resolve_trial(compose(["trainer.threads=1"]))
    # Pinned: a store's FINISHED runs are found again by this hash when a sweep resumes, so a
    # refactoring that changes it silently retrains everything (this value predates the Trial).
    assert trial.config_hash == "ddbbf977992b73e0"
    assert trial.config_hash == identity.config_hash(plain(compose(["trainer.threads=1"])) | {"platform": {"name": "none"}})
    again = Trial.from_json(trial.to_json())  # what the child receives is the same trial
    assert again == trial and again.config_hash == trial.config_hash
    assert trial.trainer.threads == 1 and trial.tracking.uri.startswith("sqlite:////") and trial.platform == "none"
    with pytest.raises(TypeError):
        trial.model["hidden"] = [1]  # frozen: no process changes a resolved fact
