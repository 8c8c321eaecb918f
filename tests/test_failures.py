"""A trial ends FINISHED, FAILED or KILLED, never RUNNING, whatever happens to it."""

from __future__ import annotations

import signal
import struct
import time
from pathlib import Path

import psutil
import pytest
from conftest import compose
from mlflow.tracking import MlflowClient

from framework_arena.runner import run_trial

SLOW_TRIAL = ["data=synthetic", "data.num_samples=40000", "trainer.epochs=200", "model.hidden=[256,256]"]


def _only_run(uri: str):
    runs = MlflowClient(uri).search_runs(experiment_ids=[MlflowClient(uri).get_experiment_by_name("framework-arena").experiment_id])
    assert len(runs) == 1
    return runs[0]


@pytest.mark.slow
def test_nan_loss_fails_the_run_with_a_reason(store: str) -> None:
    # lr=1e4 can stay finite (dead relus); 1e6 overflows in every framework
    overrides = ["optim=sgd", "optim.lr=1e6", "trainer.epochs=3", f"tracking.uri={store}"]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FAILED" and result.reason == "nan_loss"
    run = _only_run(store)
    assert run.info.status == "FAILED"
    assert run.data.tags["arena.failure_reason"] == "nan_loss"
    error = run.data.tags["arena.error"].lower()
    assert "train/loss became nan" in error or "train/loss became inf" in error


def test_exception_in_the_child_fails_the_run_and_keeps_the_traceback(store: str, tmp_path: Path) -> None:
    # Files that exist (so validation passes) but are not IDX: the child raises while loading.
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(struct.pack(">I", 0xDEADBEEF))
    overrides = ["data=idx", f"data.path={tmp_path}", f"tracking.uri={store}"]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FAILED" and result.reason == "exception"
    assert "not an unsigned-byte IDX file" in result.message
    run = _only_run(store)
    assert run.info.status == "FAILED"
    text = MlflowClient(store).download_artifacts(run.info.run_id, "error.txt", str(tmp_path))
    assert "DataError" in Path(text).read_text()


def _start_slow_trial(tmp_path: Path, store: str) -> tuple[psutil.Popen, psutil.Process]:
    """Starts ``arena`` on a long trial; returns it and its child once an epoch is tracked."""
    exe = Path(__import__("sys").executable).with_name("arena")
    MlflowClient(store).search_experiments()  # the schema made before arena starts: the test's plain client takes no turn (store.open_client)
    proc = psutil.Popen([str(exe), *SLOW_TRIAL, f"tracking.uri={store}"], cwd=tmp_path)
    client = MlflowClient(store)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "arena ended before the test could interrupt it"
        exp = client.get_experiment_by_name("framework-arena") if (tmp_path / "mlflow.db").exists() else None
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and "train/loss" in runs[0].data.metrics:
            # multiprocessing's resource tracker is a child too: pick the trial's own process
            children = [c for c in proc.children() if "framework_arena.child" in " ".join(c.cmdline())]
            assert len(children) == 1 and children[0].is_running()
            return proc, children[0]
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the slow trial logged no epoch within 180 s")


@pytest.mark.slow
def test_killed_child_marks_the_run_failed(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, child = _start_slow_trial(tmp_path, store)
    child.send_signal(signal.SIGKILL)
    assert proc.wait(60) == 1
    run = _only_run(store)
    assert run.info.status == "FAILED"
    assert run.data.tags["arena.failure_reason"] == "crash"
    assert "SIGKILL" in run.data.tags["arena.error"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_trial_marks_the_run_killed_and_stops_the_child(tmp_path: Path, sig: signal.Signals) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, child = _start_slow_trial(tmp_path, store)
    proc.send_signal(sig)
    assert proc.wait(60) == 128 + sig
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    run = _only_run(store)
    assert run.info.status == "KILLED"
    assert run.data.tags["arena.failure_reason"] == "signal"
