"""``arena-compare`` under faults: comparisons started together, an interrupt, a store it cannot read."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_compare
from mlflow.tracking import MlflowClient

from framework_arena.tracking import RunHandle


def _compare(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("arena-compare")
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _one_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    [line] = [ln for ln in out.splitlines() if "ERROR" in ln]
    assert expected in line, line


def test_a_file_that_is_not_a_store_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"not a database, just bytes " * 100)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _one_line(run_compare([f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path), f"MLflow store {uri} cannot be read: file is not a database")


def test_a_locked_store_is_one_line_naming_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    RunHandle(uri, "framework-arena")  # a real store with its experiment; nothing trained
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, as a long migration would
        proc = run_compare([f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _one_line(proc, f"MLflow store {uri} cannot be read: database is locked")


def test_a_server_that_refuses_fails_in_seconds_naming_the_settings(tmp_path: Path) -> None:
    from framework_arena.ports import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    proc = run_compare([f"tracking.uri={uri}", "tracking.retries=1", "select.sweep=latest", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert time.monotonic() - start < 60  # MLflow's own defaults took 4 minutes
    _one_line(proc, f"MLflow tracking server at {uri} is unreachable: connection refused (tracking.timeout_s=10, tracking.retries=1). Nothing was compared.")


@pytest.mark.slow
def test_two_comparisons_started_together_keep_their_own_folder_and_run(shootout: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{shootout / 'mlflow.db'}"
    out = tmp_path / "shared"  # one hydra.run.dir for both: the worst case of "the same second"
    names = ("together-a", "together-b")
    procs = [
        _compare([f"tracking.uri={store}", "select.sweep=latest", "bootstrap.samples=50", f"report.run_name={n}", f"hydra.run.dir={out}"], tmp_path)
        for n in names
    ]
    results = [p.communicate(timeout=600) for p in procs]
    folders = {}
    for name, proc, (stdout, stderr) in zip(names, procs, results):
        assert proc.returncode == 0, stderr[-3000:]
        folders[name] = Path(re.search(r"report in (\S+)", stdout + stderr).group(1))
    assert folders["together-a"] != folders["together-b"]
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("framework-arena")
    for name, folder in folders.items():
        [run] = client.search_runs([exp.experiment_id], f"tags.`arena.kind` = 'comparison' and attributes.run_name = '{name}'")
        assert run.info.status == "FINISHED"
        logged = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert logged == {p.name for p in folder.iterdir()}  # all of its own report, nothing of the other's
        assert {"report.md", "report.html"} <= logged


@pytest.mark.slow
def test_ctrl_c_leaves_no_running_comparison_run_and_says_so(shootout: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{shootout / 'mlflow.db'}"
    proc = _compare(
        [f"tracking.uri={store}", "select.sweep=latest", "bootstrap.samples=20000", "report.run_name=interrupted", f"hydra.run.dir={tmp_path}"], tmp_path
    )
    deadline = time.monotonic() + 300
    while not (tmp_path / "comparison").is_dir():  # made as the comparison starts; where exactly it is stopped does not matter
        assert proc.poll() is None and time.monotonic() < deadline, "arena-compare ended before it could be interrupted"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out = "".join(proc.communicate(timeout=300))
    assert proc.returncode == 130, out[-3000:]
    assert "arena-compare interrupted" in out and "Traceback" not in out
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("framework-arena")
    runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'interrupted'")
    assert [r.info.status for r in runs] in ([], ["KILLED"])
