"""Platform jobs: Domino and SLURM context tags, dominostats.json, and secrets never logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_arena
from mlflow.tracking import MlflowClient

from framework_arena import platform, secrets

DOMINO = {
    "DOMINO_PROJECT_OWNER": "ada",
    "DOMINO_PROJECT_NAME": "shootout",
    "DOMINO_RUN_ID": "65f1c0ffee",
    "DOMINO_RUN_NUMBER": "17",
    "DOMINO_STARTING_USERNAME": "ada",
    "DOMINO_HARDWARE_TIER_ID": "small-k8s",
}
SECRET = "pl4nted-s3cret-value"
DOMINO_EXPERIMENT = "framework-arena-ada-shootout"  # unique per Domino project


def _only_run(tmp_path: Path, experiment: str = DOMINO_EXPERIMENT):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


@pytest.fixture(scope="module")
def domino_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One Domino trial for the tag, dominostats and secret tests (one training, not two): its
    environment holds secrets, and one of them is in its config too (the run name, so also the
    recorded overrides). Returns its folder and the finished ``arena`` process."""
    folder = tmp_path_factory.mktemp("domino")
    env = {**DOMINO, "DOMINO_USER_API_KEY": SECRET, "MY_SERVICE_TOKEN": SECRET + "-2"}
    proc = run_arena(["trainer.epochs=2", f"tracking.run_name=trial-{SECRET}"], folder, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, proc


@pytest.mark.slow
def test_domino_job_is_tagged_and_writes_dominostats(domino_job: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp_path, _ = domino_job  # the job's folder
    run = _only_run(tmp_path)
    for var, value in DOMINO.items():
        assert run.data.tags["domino." + var.removeprefix("DOMINO_").lower()] == value
    stats = json.loads((tmp_path / "dominostats.json").read_text())
    assert stats["test/accuracy"] == pytest.approx(run.data.metrics["test/accuracy"])
    assert all(isinstance(v, float) for v in stats.values())


@pytest.mark.slow
def test_outside_domino_there_is_no_domino_tag_nor_stats(shootout: Path) -> None:
    # The session's shoot-out (conftest.shootout) ran outside Domino: no trial of it has a platform
    # tag, and its folder has no dominostats.json.
    client = MlflowClient(f"sqlite:///{shootout / 'mlflow.db'}")
    trials = client.search_runs([client.get_experiment_by_name("framework-arena").experiment_id], "tags.`arena.kind` = 'trial'")
    assert trials and not [t for run in trials for t in run.data.tags if t.startswith(("domino.", "slurm."))]
    assert not list(shootout.rglob("dominostats.json"))


@pytest.mark.slow
def test_planted_secret_appears_nowhere_in_the_store(domino_job: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp_path, proc = domino_job  # the job's folder
    assert _only_run(tmp_path).info.run_name == f"trial-{secrets.MARKER}"
    leaks = [p for p in (tmp_path / "mlruns").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks
    assert SECRET.encode() not in (tmp_path / "mlflow.db").read_bytes()
    assert SECRET not in proc.stdout + proc.stderr


def test_slurm_provider_is_silent_outside_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking.context.registry import resolve_tags

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert not [t for t in resolve_tags() if t.startswith("slurm.")]
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[01-02]")
    tags = resolve_tags()
    assert tags["slurm.job_id"] == "4242" and tags["slurm.array_task_id"] == "3" and tags["slurm.job_nodelist"] == "node[01-02]"


def test_redaction_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-long")
    assert secrets.redact({"db": {"password": "x1y2"}, "lr": 0.1}) == {"db": {"password": secrets.MARKER}, "lr": 0.1}
    assert secrets.redact_text("http://ada:pw123@host:5000/x") == f"http://ada:{secrets.MARKER}@host:5000/x"
    assert secrets.redact_text("uses hunter2-long here") == f"uses {secrets.MARKER} here"
    assert secrets.redact("sqlite:///mlflow.db", "tracking.uri") == "sqlite:///mlflow.db"


@pytest.mark.slow
def test_domino_job_honours_the_platform_tracking_uri(tmp_path: Path) -> None:
    platform_store = tmp_path / "platform" / "mlflow.db"
    platform_store.parent.mkdir()
    env = {**DOMINO, "MLFLOW_TRACKING_URI": f"sqlite:///{platform_store}"}
    proc = run_arena(["trainer.epochs=1", "tracking.log_model=false"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{platform_store}")
    [run] = client.search_runs([client.get_experiment_by_name(DOMINO_EXPERIMENT).experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["domino.run_id"] == DOMINO["DOMINO_RUN_ID"]


def test_domino_experiment_is_unique_per_project(monkeypatch: pytest.MonkeyPatch) -> None:
    tracking = {"name": "server", "uri": "http://mlflow:5000", "experiment": "shootout"}
    for var in DOMINO:
        monkeypatch.delenv(var, raising=False)
    assert platform.tracking_for({"name": "auto"}, tracking) == tracking  # not a Domino job
    for var, value in DOMINO.items():
        monkeypatch.setenv(var, value)
    named = platform.tracking_for({"name": "auto"}, tracking)
    assert named == {**tracking, "experiment": "shootout-ada-shootout"}
    assert platform.tracking_for({"name": "domino"}, named)["experiment"] == "shootout-ada-shootout"  # once
    assert platform.tracking_for({"name": "none"}, tracking)["experiment"] == "shootout"


def test_publish_copies_into_the_artifacts_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "report.md"
    report.write_text("# ranking\n")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "speed.png").write_bytes(b"png")
    monkeypatch.setenv("DOMINO_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    copies = platform.publish({"name": "domino"}, [report, plots], folder="compare")
    assert copies == [tmp_path / "artifacts" / "compare" / "report.md", tmp_path / "artifacts" / "compare" / "plots"]
    assert copies[0].read_text() == "# ranking\n" and (copies[1] / "speed.png").read_bytes() == b"png"
    assert platform.publish({"name": "none"}, [report]) == []
    monkeypatch.delenv("DOMINO_ARTIFACTS_DIR")
    assert platform.artifacts_dir() == (Path("/mnt/artifacts") if Path("/mnt/artifacts").is_dir() else None)


@pytest.mark.slow
def test_domino_example_job_publishes_the_sweep_summary(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "examples" / "domino" / "job.sh"
    env = {
        **os.environ,
        **DOMINO,
        "DOMINO_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "FRAMEWORKS": "torch",
        "SEEDS": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # arena from this environment
    }
    proc = subprocess.run(
        ["bash", str(script), "trainer.epochs=1", "tracking.log_model=false"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(DOMINO_EXPERIMENT).experiment_id])
    assert {r.data.tags["arena.kind"] for r in runs} == {"sweep", "trial"}
    assert all(r.data.tags["domino.project_name"] == "shootout" for r in runs)
    assert json.loads((tmp_path / "dominostats.json").read_text())["trials/finished"] == 1.0
    summary = (tmp_path / "artifacts" / "sweep_summary.md").read_text()
    assert "1 finished" in summary and "framework=torch" in summary
    assert (tmp_path / "artifacts" / "sweep_summary.csv").read_text().startswith("job,status,run_name")
