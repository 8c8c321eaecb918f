"""A sweep whose tracking server goes away between jobs: every job counted, nothing lost, and
``arena-sync`` bringing the lost trial's offline copy into its run, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from framework_arena.server import TrackingServer
from framework_arena.tracking import RunHandle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG_EPOCHS = 30  # job 1 (the second) trains long enough for the server to go away mid-training
SWEEP = [
    "-m",
    f"trainer.epochs=1,{LONG_EPOCHS},2,3",
    "data=synthetic",
    "data.num_samples=20000",
    "trainer.threads=1",
    "tracking=server",
    "tracking.timeout_s=5",
    # urllib3's back-off (2, 4, 8 s) bridges the server's restart for the requests after it.
    "tracking.retries=3",
]


def run_sync(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``arena-sync`` as installed; ``python -m`` where the console script is not (yet) in the venv."""
    exe = Path(sys.executable).with_name("arena-sync")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "framework_arena.sync"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def _wait(what: str, predicate, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, f"the sweep ended before {what}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_server_outage_in_a_sweep_is_counted_and_synced_back(tmp_path: Path) -> None:
    server = TrackingServer(tmp_path / "server", port=0, workers=1, backend_uri=f"sqlite:///{tmp_path / 'server.db'}")
    log = open(tmp_path / "mlflow.log", "wb")
    server.start(log=log)
    exe = Path(sys.executable).with_name("arena")
    proc = subprocess.Popen([str(exe), *SWEEP, f"tracking.uri={server.uri}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = MlflowClient(server.uri)

        def long_trial_started() -> bool:
            exp = client.get_experiment_by_name("framework-arena")
            runs = client.search_runs([exp.experiment_id], "params.`trainer.epochs` = '30'") if exp else []
            return bool(runs) and bool(client.get_metric_history(runs[0].info.run_id, "val/accuracy"))

        _wait("the long trial's first epoch", long_trial_started, proc)
        [lost_run] = client.search_runs([client.get_experiment_by_name("framework-arena").experiment_id], "params.`trainer.epochs` = '30'")
        run_id = lost_run.info.run_id
        server.stop()  # mid-training: the rest of job 1 meets no server
        _wait("the offline copy", lambda: any(tmp_path.rglob(f"arena-offline/{run_id}/metrics.json")), proc)
        server.start(log=log)  # back before the third job
        out, _ = proc.communicate(timeout=600)
    except BaseException:
        server.stop()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    # Every job counted, the outage one as untracked, and the sweep fails.
    try:  # on the server that came back: a stop and a third start would cost 10 s and more
        assert proc.returncode == 1, out[-4000:]
        assert "3 finished, 1 untracked" in out, out[-4000:]
        assert "arena-sync" in out
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name("framework-arena")
        [parent] = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'sweep'")
        assert parent.info.status == "FAILED"
        assert parent.data.metrics["trials/total"] == 4 and parent.data.metrics["trials/untracked"] == 1
        assert parent.data.metrics["trials/finished"] == 3
        record = json.loads(parent.data.tags["arena.job.00001"])
        assert record["status"] == "UNTRACKED" and record["run_id"] == run_id
        assert client.get_run(run_id).info.status in ("RUNNING", "FAILED")  # incomplete until synced

        synced = run_sync([str(tmp_path)], tmp_path)
        assert synced.returncode == 0, synced.stderr[-3000:]
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert "arena.failure_reason" not in run.data.tags
        for key in ("val/accuracy", "train/loss", "speed/epoch_time_s"):
            assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(1, LONG_EPOCHS + 1)), key
        assert {"test/accuracy", "speed/fit_time_s", "model/num_params"} <= set(run.data.metrics)
        assert run.data.tags["arena.framework_version"]
        [model] = client.search_logged_models([exp.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        assert str(model.status) == "READY"
        assert "MLmodel" in {f.path for f in client.list_logged_model_artifacts(model.model_id)}
        assert "plots/learning_curves.png" in {a.path for a in client.list_artifacts(run_id, "plots")}

        def snapshot() -> tuple:
            histories = {k: len(client.get_metric_history(run_id, k)) for k in client.get_run(run_id).data.metrics}
            models = len(client.search_logged_models([exp.experiment_id], filter_string=f"source_run_id = '{run_id}'"))
            return histories, models, len(client.list_artifacts(run_id, "plots")), client.get_run(run_id).info.end_time

        before = snapshot()
        again = run_sync([str(tmp_path)], tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "0 metrics, 0 artifacts, no model, 0 tags added; status unchanged" in again.stderr
        assert snapshot() == before
    finally:
        server.stop()


@pytest.mark.parametrize("launcher", ["parallel", "basic"], ids=["joblib", "sequential"])
def test_ctrl_c_to_a_sweep_kills_what_runs_and_the_rerun_trains_only_that(tmp_path: Path, launcher: str) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # 30 epochs: the long trial still trains once the short one has finished (the child starts
    # training seconds earlier since it no longer opens the store; with 12 both could end together).
    # Sequential (Hydra's basic launcher): the signal reaches the trial in the sweep's own process.
    args = [
        "-m",
        f"hydra/launcher={launcher}",
        "trainer.epochs=1,30",
        "data=synthetic",
        "data.num_samples=20000",
        "trainer.threads=1",
        "tracking.log_model=false",
    ]
    RunHandle(store, "framework-arena")  # the store's schema made here: the polling below must not race arena's migration
    exe = Path(sys.executable).with_name("arena")
    # Its own process group, so that the test sends what Ctrl-C in a terminal sends: SIGINT to the group.
    proc = subprocess.Popen([str(exe), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        client = MlflowClient(store)

        def trials(status: str = "") -> list:
            exp = client.get_experiment_by_name("framework-arena") if (tmp_path / "mlflow.db").exists() else None
            found = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial'") if exp else []
            return [r for r in found if not status or r.info.status == status]

        def first_done_second_training() -> bool:
            # .get: a run just created has its params a request later
            done = [r for r in trials("FINISHED") if r.data.params.get("trainer.epochs") == "1"]
            long = [r for r in trials("RUNNING") if r.data.params.get("trainer.epochs") == "30"]
            return bool(done) and bool(long) and bool(client.get_metric_history(long[0].info.run_id, "val/accuracy"))

        _wait("the first trial finished and the second training", first_done_second_training, proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, out[-4000:]
    exp = client.get_experiment_by_name("framework-arena")
    runs = client.search_runs([exp.experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}, out[-4000:]
    [parent] = [r for r in runs if r.data.tags.get("arena.kind") == "sweep"]
    assert parent.info.status == "KILLED" and parent.data.tags["arena.failure_reason"] == "sweep interrupted"
    assert {(r.data.params["trainer.epochs"], r.info.status) for r in trials()} == {("1", "FINISHED"), ("30", "KILLED")}
    assert parent.data.metrics["trials/finished"] == 1 and parent.data.metrics["trials/killed"] == 1
    assert "1 finished, 1 killed" in out

    again = subprocess.run([str(exe), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 finished, 1 skipped" in again.stdout + again.stderr
    rerun = trials()
    assert sorted((r.data.params["trainer.epochs"], r.info.status) for r in rerun) == [("1", "FINISHED"), ("30", "FINISHED"), ("30", "KILLED")]


def test_a_trial_killed_in_a_joblib_sweep_is_a_crash_and_the_rerun_trains_only_it(tmp_path: Path) -> None:
    import psutil

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # 30 epochs: the long trial still trains once the short one has finished (the child starts
    # training seconds earlier since it no longer opens the store; with 12 both could end together).
    args = ["-m", "hydra/launcher=parallel", "trainer.epochs=1,30", "data=synthetic", "data.num_samples=20000", "trainer.threads=1", "tracking.log_model=false"]
    RunHandle(store, "framework-arena")  # the store's schema made here: the polling below must not race arena's migration
    exe = Path(sys.executable).with_name("arena")
    proc = psutil.Popen([str(exe), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("framework-arena")

    def trials(status: str = "", epochs: str = "") -> list:
        found = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial'")
        return [r for r in found if (not status or r.info.status == status) and (not epochs or r.data.params.get("trainer.epochs") == epochs)]

    try:
        _wait(
            "the first trial finished and the second training",
            lambda: bool(trials("FINISHED", "1")) and any(client.get_metric_history(r.info.run_id, "val/accuracy") for r in trials("RUNNING", "30")),
            proc,
        )
        # The one trial process left is the long trial's (the other finished): killed as the OOM killer would.
        [child] = [p for p in proc.children(recursive=True) if "framework_arena.child" in " ".join(p.cmdline())]
        child.kill()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out[-4000:]
    assert "1 finished, 1 failed" in out
    [crashed] = trials("FAILED", "30")
    assert crashed.data.tags["arena.failure_reason"] == "crash" and "SIGKILL" in crashed.data.tags["arena.error"]

    again = subprocess.run([str(exe), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 finished, 1 skipped" in again.stdout + again.stderr
    assert sorted((r.data.params["trainer.epochs"], r.info.status) for r in trials()) == [("1", "FINISHED"), ("30", "FAILED"), ("30", "FINISHED")]
