"""Speed figures a skeptic accepts (issue 13): cores as a budget, contention measured and flagged.

Real processes only: a real CPU hog pinned to the trial's core, a real joblib sweep; the tests
read back what the trials logged in MLflow.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import compose, run_arena, run_compare
from mlflow.tracking import MlflowClient

from framework_arena import cores
from framework_arena.compare import trust
from framework_arena.compare.query import Trial
from framework_arena.runner import run_trial

slow = pytest.mark.slow

#: A bounded CPU hog: spins on one core for at most this long, whatever happens to the test.
HOG_S = 600


def _hog(core: int) -> subprocess.Popen[bytes]:
    code = f"import os, time\nos.sched_setaffinity(0, {{{core}}})\nend = time.time() + {HOG_S}\nwhile time.time() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()  # by its pid: only the process this test started
    proc.wait()


def test_cores_budget_and_disjoint_allocation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cores.DIR_ENV, str(tmp_path))
    available = cores.affinity()
    assert cores.budget() <= len(available)
    assert cores.parallel_trials({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}) == 2
    assert cores.parallel_trials({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}) == 1
    with cores.allocate(1) as first, cores.allocate(1) as second:
        if len(available) >= 2:
            assert first.cores != second.cores and not first.shared and not second.shared
        else:
            assert second.shared
    with cores.allocate(1) as again:  # released: the first core is free again
        assert again.cores == available[:1] and not again.shared
    with cores.allocate(len(available)), cores.allocate(1) as late:  # none free: shared, said so
        assert late.shared and late.tags()["arena.cores_shared"] == "true"


@slow
def test_trial_beside_a_cpu_hog_is_contended_and_compare_leaves_it_out(tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cores.DIR_ENV, str(tmp_path / "cores"))  # this test's own core locks
    core = cores.affinity()[0]  # a fresh lock folder: a 1-thread trial takes the first core
    overrides = ["framework=torch", "trainer.epochs=2", "trainer.threads=1", "tracking.log_model=false", f"tracking.uri={store}"]
    hog = _hog(core)
    try:
        result = run_trial(compose(overrides), overrides)
    finally:
        _stop(hog)
    assert result.status == "FINISHED", result.message
    run = MlflowClient(store).get_run(result.run_id)
    tags, m = run.data.tags, run.data.metrics
    assert tags["arena.cores"] == str(core) and tags["arena.cores_count"] == "1" and tags["arena.cores_shared"] == "false"
    assert tags["arena.contended"] == "true", (m, tags.get("arena.contended_reason"))
    assert m["contention/other_share"] > 0.2 and "other work took" in tags["arena.contended_reason"]
    assert 0 < m["contention/own_share"] <= 1.1 and m["contention/loadavg_end"] >= 0 and "contention/steal_share" in m
    # Flagged beyond the counters' rounding (2 ticks over the fit's wall time on its one core).
    assert 0 < m["contention/resolution"] < m["contention/other_share"] - 0.2 and "resolution" in tags["arena.contended_reason"]
    for key in ("arena.machine", "arena.cpu_model", "arena.memory_gb", "arena.gpu", "arena.framework_build"):
        assert tags[key], key
    assert tags["arena.framework_build"].startswith("torch ")

    proc = run_compare([f"tracking.uri={store}", "bootstrap.samples=0", "report.log_run=false", "hydra.run.dir=cmp"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Left out of the speed criteria" in proc.stdout and result.run_name in proc.stdout
    report = (tmp_path / "cmp" / "comparison" / "report.md").read_text()
    assert result.run_name in report and "contended" in report
    rows = {r["criterion"]: r for r in csv.DictReader((tmp_path / "cmp" / "comparison" / "criteria.csv").open())}
    assert "missing" in str(rows["train_throughput"].values()) and "missing" not in str(rows["quality"].values())


@slow
@pytest.mark.skipif(len(cores.affinity()) < 2, reason="needs 2 cores")
def test_joblib_sweep_gives_each_trial_its_own_core(tmp_path: Path) -> None:
    args = ["-m", "trainer.seed=0,1", "trainer.epochs=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "tracking.log_model=false"]
    proc = run_arena(args, tmp_path, timeout=600, env={cores.DIR_ENV: str(tmp_path / "cores")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`arena.kind` = 'trial'")
    assert len(runs) == 2
    used = [r.data.tags["arena.cores"] for r in runs]
    assert len(set(used)) == 2 and all(r.data.tags["arena.cores_count"] == "1" for r in runs), used
    assert all(r.data.params["trainer.threads"] == "1" for r in runs)  # threads=0: each trial's share
    assert all(r.data.tags["arena.cores_shared"] == "false" for r in runs)
    assert os.path.isdir(tmp_path / "cores")


def _trial(name: str, metrics: dict[str, float], **tags: str) -> Trial:
    return Trial(
        name * 4,
        name,
        "torch",
        "torch",
        "mlp",
        "digits",
        "0",
        {},
        dict(metrics),
        {"speed/epoch_time_s": [(1, 0.1)]},
        {f"arena.{k}": v for k, v in tags.items()},
    )


def test_screen_drops_only_speed_figures_of_contended_runs_and_flags_scatter() -> None:
    quiet = _trial("quiet", {"speed/samples_per_s": 100.0, "test/accuracy": 0.9}, contended="false", machine="a")
    busy = _trial("busy", {"speed/samples_per_s": 30.0, "test/accuracy": 0.9}, contended="true", contended_reason="hog")
    notes = trust.screen([quiet, busy], include_contended=False)
    assert "busy" in notes[0] and "hog" in notes[0] and "include_contended" in notes[0]
    assert "speed/samples_per_s" not in busy.metrics and busy.metrics["test/accuracy"] == 0.9 and "speed/epoch_time_s" not in busy.history
    assert quiet.metrics["speed/samples_per_s"] == 100.0
    kept = _trial("kept", {"speed/samples_per_s": 30.0}, contended="true")
    assert "kept" in trust.screen([kept], include_contended=True)[0] and kept.metrics["speed/samples_per_s"] == 30.0
    assert trust.unstable([quiet, _trial("slow", {"speed/samples_per_s": 40.0})]) is not None  # scatter across runs
    assert trust.unstable([_trial("w", {"speed/samples_per_s": 100.0, "speed/samples_per_s_p10": 40.0, "speed/samples_per_s_p90": 110.0})]) is not None
    assert trust.unstable([quiet, _trial("same", {"speed/samples_per_s": 105.0})]) is None
    other = _trial("other", {"speed/samples_per_s": 100.0}, machine="b")
    assert any("2 machine fingerprints" in n for n in trust.mark({"torch": [quiet], "tensorflow": [other]}, {}))


def test_the_machine_fingerprint_is_the_machines_not_the_frameworks() -> None:
    from framework_arena import machine

    # Runs of every framework on one machine share a workload in arena-compare: the fingerprint
    # must not carry the framework's build (a tag of its own) nor its name for the device.
    torch_tags = machine.tags([0], "torch", None, "cpu")
    keras_tags = machine.tags([1], "keras", "tensorflow", "cpu")
    assert torch_tags["arena.machine"] == keras_tags["arena.machine"]
    assert torch_tags["arena.framework_build"] != keras_tags["arena.framework_build"]
    assert machine.tags([0, 1], "torch", None, "cpu")["arena.machine"] != torch_tags["arena.machine"]  # a larger share is another machine
