"""Hydra multirun sweeps as a user runs them: one parent run, linked children, resume, failures."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHOOTOUT_ARGS, SHOOTOUT_OVERRIDES, require_module, run_arena
from mlflow.tracking import MlflowClient

from framework_arena.identity import job_records

pytestmark = pytest.mark.slow

EPOCH_METRICS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "speed/epoch_time_s")
FINAL_METRICS = ("test/loss", "test/accuracy", "model/num_params", "speed/import_time_s", "speed/time_to_first_step_s", "memory/peak_rss_mb")


def _runs(tmp_path: Path) -> tuple[MlflowClient, list, list]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("framework-arena")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("arena.kind") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("arena.kind") == "trial"]
    return client, sorted(parents, key=lambda r: r.info.start_time), trials


def _children(trials: list, parent) -> list:
    return [r for r in trials if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def _best(children: list, parent, key: str = "val/accuracy"):
    """The best trial as the sweep picks it: the first best in job order (a tie goes to the lower job number)."""
    job = {rec.get("run_id"): num for num, rec in job_records(parent.data.tags)}
    return max(sorted(children, key=lambda r: job[r.info.run_id]), key=lambda r: r.data.metrics[key])


def _summary_rows(client: MlflowClient, parent, tmp_path: Path) -> list[dict[str, str]]:
    path = client.download_artifacts(parent.info.run_id, "sweep_summary.csv", str(tmp_path))
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))


def test_shootout_sweep_on_joblib_then_resume(shootout: Path, tmp_path: Path) -> None:
    # The session's shoot-out (conftest.SHOOTOUT_ARGS, joblib with 2 workers), copied: resuming
    # adds a sweep to the store.
    shutil.copy2(shootout / "mlflow.db", tmp_path / "mlflow.db")
    client, [parent], trials = _runs(tmp_path)
    children = _children(trials, parent)
    assert len(children) == 6 and len(trials) == 6
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {(r.data.tags["arena.framework"], r.data.params["trainer.seed"]) for r in children} == {
        (f, s) for f in ("torch", "tensorflow", "keras") for s in ("0", "1")
    }
    assert all(r.data.tags["arena.sweep_id"] == parent.data.tags["arena.sweep_id"] for r in children)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["arena.sweep_overrides"] == " ".join(SHOOTOUT_OVERRIDES)
    assert "JoblibLauncher" in parent.data.tags["arena.launcher"] and "BasicSweeper" in parent.data.tags["arena.sweeper"]
    # Two joblib workers lost nothing: every epoch, final metric and artifact of every trial.
    for run in children:
        for key in EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
        for key in FINAL_METRICS:
            assert key in run.data.metrics, key
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "plots"}
    assert parent.data.metrics["trials/finished"] == 6 and parent.data.metrics["trials/failed"] == 0
    best = _best(children, parent)
    assert parent.data.tags["arena.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best/val/accuracy"] == best.data.metrics["val/accuracy"]
    rows = _summary_rows(client, parent, tmp_path)
    assert [r["status"] for r in rows] == ["FINISHED"] * 6
    assert {r["run_id"] for r in rows} == {r.info.run_id for r in children}

    again = run_arena(SHOOTOUT_ARGS, tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "6 skipped" in again.stdout + again.stderr
    client, parents, trials = _runs(tmp_path)
    assert len(parents) == 2 and len(trials) == 6  # no new child run
    second = client.get_run(parents[1].info.run_id)
    assert not _children(trials, second)
    assert second.data.metrics["trials/skipped"] == 6 and second.info.status == "FINISHED"
    assert {r["run_id"] for r in _summary_rows(client, second, tmp_path / "2")} == {r.info.run_id for r in children}


def test_rerun_switch_trains_again_and_plots_off_draws_nothing(tmp_path: Path) -> None:
    # tracking.plots=false rides along (two sweeps already run here): no learning curves on the
    # trials, no seed curves on the parents, and the choice recorded as a param.
    args = ["-m", "trainer.epochs=1", "arena.rerun=true", "tracking.plots=false"]
    for _ in range(2):
        proc = run_arena(args, tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, trials = _runs(tmp_path)
    assert len(trials) == 2 and all(len(_children(trials, p)) == 1 for p in parents)
    for run in trials + parents:
        assert client.list_artifacts(run.info.run_id, "plots") == [], run.data.tags.get("arena.kind")
    assert {r.data.params["tracking.plots"] for r in trials} == {"False"}
    assert all(r.data.metrics["trials/finished"] == 1 for r in parents)  # the summary ran, only the plot was left out


def test_failing_trial_is_contained_and_sets_the_exit_code(tmp_path: Path) -> None:
    # lr=1e6 diverges to NaN; lr=-1 is refused by validation; lr=0.05 trains.
    proc = run_arena(["-m", "optim=sgd", "optim.lr=0.05,1e6,-1", "trainer.epochs=2", "hydra/launcher=parallel"], tmp_path, timeout=900)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "1 finished, 1 failed, 1 invalid" in out
    assert "NonFiniteLossError" in out and "Expected optim.lr > 0" in out
    client, [parent], trials = _runs(tmp_path)
    statuses = sorted((r.data.params["optim.lr"], r.info.status) for r in _children(trials, parent))
    assert statuses == [("0.05", "FINISHED"), ("1000000.0", "FAILED")]  # the invalid one never got a run
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["trials/invalid"] == 1 and parent.data.metrics["trials/failed"] == 1
    failed = next(r for r in trials if r.info.status == "FAILED")
    assert failed.data.tags["arena.failure_reason"] == "nan_loss"


@pytest.mark.parametrize("launcher, target", [("ray_local", "RayLauncher"), ("submitit_local", "LocalLauncher")])
def test_cluster_launchers_run_locally(tmp_path: Path, launcher: str, target: str) -> None:
    """Ray on a local instance and submitit's local executor: the children still find their parent."""
    if launcher.startswith("ray"):
        require_module("hydra_plugins.hydra_ray_launcher", "pip install -e '.[ray]'")
    else:
        require_module("hydra_plugins.hydra_submitit_launcher", "pip install -e '.[sweep]'")
    proc = run_arena(["-m", f"hydra/launcher={launcher}", "trainer.seed=0,1", "trainer.epochs=1"], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, [parent], trials = _runs(tmp_path)
    assert target in parent.data.tags["arena.launcher"]
    children = _children(trials, parent)
    assert sorted(r.data.params["trainer.seed"] for r in children) == ["0", "1"]
    assert {r.info.status for r in children} == {"FINISHED"} and parent.data.metrics["trials/finished"] == 2


def test_optuna_search_records_the_best_parameters(tmp_path: Path) -> None:
    require_module("hydra_plugins.hydra_optuna_sweeper", "pip install -e '.[sweep]'")
    # Two trials at a time (Optuna asks for two, joblib runs them): the search, not the speed, is tested.
    search = ["experiment=tune", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=2", "hydra/launcher=parallel"]
    proc = run_arena([*search, "trainer.epochs=1", "tracking.experiment=framework-arena"], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, [parent], trials = _runs(tmp_path)
    assert "OptunaSweeper" in parent.data.tags["arena.sweeper"]
    children = _children(trials, parent)
    assert len(children) == 3 and len({r.data.params["optim.lr"] for r in children}) == 3
    best = _best(children, parent)
    assert parent.data.params["best.optim.lr"] == best.data.params["optim.lr"]
    assert parent.data.params["best.trainer.batch_size"] == best.data.params["trainer.batch_size"]


def test_seed_aggregated_learning_curves_on_the_shootouts_parent_run(shootout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One line per framework: the mean over its two seeds per epoch, with the min-max band, from the trials' own histories."""
    monkeypatch.chdir(shootout)  # the store's artifacts may be relative to it; read only
    client, [parent], trials = _runs(shootout)
    assert "plots/seed_curves.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    path = client.download_artifacts(parent.info.run_id, "seed_curves.csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert {r["group"] for r in rows} == {"framework=torch", "framework=tensorflow", "framework=keras"}
    for framework in ("torch", "tensorflow", "keras"):
        runs = [r for r in _children(trials, parent) if r.data.tags["arena.framework"] == framework]
        for key in ("val/accuracy", "val/loss"):
            histories = [{m.step: m.value for m in client.get_metric_history(r.info.run_id, key)} for r in runs]
            got = [r for r in rows if r["group"] == f"framework={framework}" and r["metric"] == key]
            assert [int(r["epoch"]) for r in got] == [1, 2]
            for r in got:
                values = [h[int(r["epoch"])] for h in histories]
                assert int(r["trials"]) == 2
                assert float(r["mean"]) == pytest.approx(sum(values) / 2) and float(r["min"]) == min(values) and float(r["max"]) == max(values)


def test_a_sweeps_event_files_download_side_by_side_for_tensorboard(shootout: Path, tmp_path: Path) -> None:
    """The README's command: one folder per trial, each with event files TensorBoard's reader parses."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    client, [parent], _ = _runs(shootout)
    dest = tmp_path / "boards"
    proc = subprocess.run(
        [sys.executable, "-m", "framework_arena.boards", parent.info.run_id, "--tracking-uri", f"sqlite:///{shootout / 'mlflow.db'}", "--dest", str(dest)],
        cwd=shootout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"tensorboard --logdir {dest}" in proc.stdout
    folders = sorted(dest.iterdir())
    assert len(folders) == 6 and {f.name.split("-")[0] for f in folders} == {"torch", "tensorflow", "keras"}
    for folder in folders:
        events = EventAccumulator(str(folder / "tensorboard"))
        events.Reload()
        assert "val/accuracy" in events.PluginTagToContent("scalars"), folder
