"""arena-compare: the arithmetic of the ranking on planted runs, and a real shoot-out end to end."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest
from conftest import run_arena, run_compare
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from framework_arena.compare.query import NothingToCompare
from framework_arena.compare.run import compare

# The article's rows; "deployment" is from its pros and cons ("PyTorch needs an API server", issue 16).
ARTICLE_ROWS = {"interfaces", "architecture", "performance", "learning curve", "license", "debugging", "community", "speed", "visualization", "deployment"}


def _compose_compare(overrides: Sequence[str] = ()) -> dict[str, Any]:
    from hydra import compose, initialize_config_module

    from framework_arena.compare.settings import register

    register()
    with initialize_config_module(config_module="framework_arena.conf", version_base="1.3"):
        cfg = compose(config_name="compare", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _plant(store: str, runs: Mapping[str, Sequence[Mapping[str, float]]], experiment: str = "planted") -> MlflowClient:
    """Logs FINISHED trial runs with the given metrics through MLflow, one per seed.

    A metric named ``param:<key>`` is logged as the param ``<key>`` instead, ``tag:<key>`` as the tag
    ``<key>`` (``tag:arena.model`` replaces the default ``mlp``: another workload).
    """
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    exp = exp.experiment_id if exp else client.create_experiment(experiment)
    for group, seeds in runs.items():
        framework, _, backend = group.partition("-")
        for seed, metrics in enumerate(seeds):
            tags = {"arena.kind": "trial", "arena.framework": framework, "arena.model": "mlp", "arena.data": "digits"}
            if backend:
                tags["arena.backend"] = backend
            tags.update({k[len("tag:") :]: str(v) for k, v in metrics.items() if k.startswith("tag:")})
            run = client.create_run(exp, run_name=f"{group}-s{seed}", tags=tags)
            client.log_param(run.info.run_id, "trainer.seed", seed)
            for k, v in metrics.items():
                if k.startswith("tag:"):
                    continue
                if k.startswith("param:"):
                    client.log_param(run.info.run_id, k[len("param:") :], v)
                else:
                    client.log_metric(run.info.run_id, k, v)
            client.set_terminated(run.info.run_id, "FINISHED")
    return client


def _rank(store: str, tmp_path: Path, weights: Mapping[str, float], **cfg_extra: Any):
    return _report(store, tmp_path, weights, **cfg_extra).ranking


def _report(store: str, tmp_path: Path, weights: Mapping[str, float], overrides: Sequence[str] = (), out: str = "report", **cfg_extra: Any):
    cfg = _compose_compare([f"tracking.uri={store}", "select.experiment=planted", "report.log_run=false", *overrides])
    cfg["ranking"]["weights"] = dict(weights)
    cfg.update(cfg_extra)
    return compare(cfg, tmp_path / out, "planted")


def test_planted_ranking_is_the_arithmetic_and_follows_the_weights(store: str, tmp_path: Path) -> None:
    _plant(
        store,
        {
            "torch": [{"speed/samples_per_s": 100, "test/accuracy": 0.9}] * 2,
            "tensorflow": [{"speed/samples_per_s": 200, "test/accuracy": 0.9}] * 2,
            "keras-jax": [{"speed/samples_per_s": 400, "test/accuracy": 0.6}] * 2,
        },
    )
    # Throughput scores 0.25, 0.5, 1; quality scores 1, 1, 0.6/0.9. Equal weights:
    ranking = _rank(store, tmp_path, {"train_throughput": 1, "quality": 1})
    got = {r.group: r for r in ranking.rows}
    assert [r.group for r in ranking.rows] == ["keras-jax", "tensorflow", "torch"]
    assert got["torch"].total == pytest.approx((0.25 + 1) / 2)
    assert got["tensorflow"].total == pytest.approx((0.5 + 1) / 2)
    assert got["keras-jax"].total == pytest.approx((1 + 0.6 / 0.9) / 2)
    assert [r.rank for r in ranking.rows] == [1, 2, 3] and not any(r.tied for r in ranking.rows)  # identical seeds: no spread
    # Quality weighted 3 to 1: the slow but accurate frameworks move up, Keras drops to last.
    ranking = _rank(store, tmp_path, {"train_throughput": 1, "quality": 3})
    assert [r.group for r in ranking.rows] == ["tensorflow", "torch", "keras-jax"]
    assert ranking.rows[0].total == pytest.approx((0.5 + 3) / 4)
    assert ranking.rows[2].total == pytest.approx((1 + 3 * 0.6 / 0.9) / 4)


def test_max_runs_keeps_the_newest_and_warns_only_when_runs_were_left_out(store: str, caplog: pytest.LogCaptureFixture) -> None:
    from framework_arena.compare.query import select
    from framework_arena.tracking import Reader

    _plant(store, {"torch": [{"speed/samples_per_s": 100}] * 3})
    cfg = _compose_compare([f"tracking.uri={store}", "select.experiment=planted"])
    for max_runs, kept, warned in ((3, 3, False), (4, 3, False), (2, 2, True)):
        caplog.clear()
        sel = select(Reader(store), {**cfg["select"], "max_runs": max_runs}, "framework")
        assert len(sel.trials) == kept, max_runs
        assert [t.run_name for t in sel.trials] == ["torch-s2", "torch-s1", "torch-s0"][:kept]  # the newest first
        assert ("Stopped at select.max_runs" in caplog.text) is warned, (max_runs, caplog.text)


def test_overlapping_intervals_are_ties_and_missing_criteria_are_reported(store: str, tmp_path: Path) -> None:
    _plant(
        store,
        {
            "torch": [{"speed/samples_per_s": 100}, {"speed/samples_per_s": 300}],
            "tensorflow": [{"speed/samples_per_s": 150}, {"speed/samples_per_s": 250}],
            "keras-torch": [{"speed/samples_per_s": 1000}, {"speed/samples_per_s": 1000}],
        },
    )
    ranking = _rank(store, tmp_path, {"train_throughput": 1, "inference_latency": 5})
    rows = {r.group: r for r in ranking.rows}
    # Medians 200 and 200 of 1000; resampled medians 100..300 and 150..250 overlap: a tie for 2nd.
    assert rows["keras-torch"].rank == 1 and not rows["keras-torch"].tied
    assert rows["torch"].total == pytest.approx(0.2) and rows["tensorflow"].total == pytest.approx(0.2)
    assert rows["torch"].rank == rows["tensorflow"].rank == 2 and rows["torch"].tied and rows["tensorflow"].tied
    assert rows["torch"].low < 0.2 < rows["torch"].high
    # No run logged inference latency: out of the totals, and "missing" in criteria.csv, never 0.
    assert ranking.used == ["train_throughput"] and "inference_latency" in ranking.excluded
    crit = list(csv.DictReader((tmp_path / "report" / "criteria.csv").open()))
    latency = [r for r in crit if r["criterion"] == "inference_latency"]
    assert len(latency) == 3 and all(r["display"] == "missing" and r["value"] == "" for r in latency)


def test_nothing_to_compare_is_a_clear_message(store: str, tmp_path: Path) -> None:
    _plant(store, {"torch": [{"speed/samples_per_s": 100, "test/accuracy": 0.9}]})
    MlflowClient(store).create_experiment("empty")
    # Through the real CLI for the two a user meets first; in-process for the rest (same code path).
    for args, expected in (
        (["select.experiment=empty"], "No FINISHED trial runs in experiment 'empty'"),
        (["select.experiment=planted", "select.frameworks=[torch,keras-jax]"], "No FINISHED trial runs for keras-jax"),
    ):
        proc = run_compare([f"tracking.uri={store}", *args], tmp_path)
        out = proc.stdout + proc.stderr  # Hydra's job logging writes to stdout
        assert proc.returncode == 1, out
        assert expected in out and "Traceback" not in out, out
    for overrides, expected in (
        (["select.experiment=nope"], "Experiment 'nope' does not exist"),
        (["select.experiment=planted", "select.sweep=latest"], "No sweep run matches select.sweep='latest'"),
    ):
        with pytest.raises(NothingToCompare, match=re.escape(expected)):
            compare(_compose_compare([f"tracking.uri={store}", "report.log_run=false", *overrides]), tmp_path / "out", "balanced")
    bad = run_compare([f"tracking.uri={store}", "group_by=model", "bootstrap.confidence=2"], tmp_path)
    assert bad.returncode == 2
    assert "Received: group_by='model'" in bad.stdout and "Received: bootstrap.confidence=2" in bad.stdout
    assert not [r for r in MlflowClient(store).search_runs(["1"]) if r.data.tags.get("arena.kind") == "comparison"]


@pytest.mark.slow
def test_real_shootout_comparison_run(shootout: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{shootout / 'mlflow.db'}"
    name = "compare-real-shootout"  # the shared store may hold other tests' comparison runs
    proc = run_compare([f"tracking.uri={store}", "select.sweep=latest", f"report.run_name={name}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ranking, profile balanced" in proc.stdout
    for group in ("torch", "tensorflow", "keras-tensorflow"):
        assert group in proc.stdout
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("framework-arena")
    [run] = client.search_runs([exp.experiment_id], f"tags.`arena.kind` = 'comparison' and attributes.run_name = '{name}'")
    assert run.info.status == "FINISHED"
    sweep = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'sweep'")[0]
    assert run.data.tags["arena.compared_sweep"] == sweep.info.run_id
    assert run.data.tags["arena.compared_run_count"] == "6"
    assert "Framework comparison" in run.data.tags["mlflow.note.content"]  # its description in the UI
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "ranking.csv", "criteria.csv", "runs.csv", "plots"} <= artifacts
    ranking = list(csv.DictReader(io.StringIO(Path(client.download_artifacts(run.info.run_id, "ranking.csv", str(tmp_path))).read_text())))
    assert {r["framework"] for r in ranking} == {"torch", "tensorflow", "keras-tensorflow"}
    assert all(0 < float(r["score"]) <= 1 for r in ranking) and min(int(r["rank"]) for r in ranking) == 1
    criteria = list(csv.DictReader(io.StringIO(Path(client.download_artifacts(run.info.run_id, "criteria.csv", str(tmp_path))).read_text())))
    assert {r["article_row"].replace("_", " ") for r in criteria} - {""} == ARTICLE_ROWS
    assert {r["kind"] for r in criteria} == {"measured", "static"}
    throughput = [float(r["value"]) for r in criteria if r["criterion"] == "train_throughput"]
    assert len(throughput) == 3 and all(v > 0 and math.isfinite(v) for v in throughput)
    report = Path(client.download_artifacts(run.info.run_id, "report.md", str(tmp_path))).read_text()
    for row in ARTICLE_ROWS:
        assert f"| {row} |" in report
    html = Path(client.download_artifacts(run.info.run_id, "report.html", str(tmp_path))).read_text()
    assert html.count("data:image/png;base64,") >= 3 and "measured" in html and "static" in html


@pytest.mark.parametrize("profile", ["balanced", "speed", "research", "production", "beginner"])
def test_every_ranking_profile_composes_and_validates(profile: str) -> None:
    from framework_arena.compare.settings import validate

    cfg = _compose_compare([f"ranking={profile}"])
    validate(cfg)
    assert cfg["ranking"]["description"] and cfg["ranking"]["weights"]


def test_large_data_is_throughput_at_the_largest_size_every_framework_ran(store: str, tmp_path: Path) -> None:
    small, large = {"param:data.num_samples": 1000}, {"param:data.num_samples": 100000}
    _plant(
        store,
        {
            "torch": [
                {**small, "speed/samples_per_s": 500, "memory/peak_rss_mb": 400},
                {**large, "speed/samples_per_s": 400, "memory/peak_rss_mb": 600},
                {"param:data.num_samples": 1000000, "speed/samples_per_s": 50, "memory/peak_rss_mb": 2000},
            ],
            "tensorflow": [{**small, "speed/samples_per_s": 300, "memory/peak_rss_mb": 500}, {**large, "speed/samples_per_s": 800, "memory/peak_rss_mb": 500}],
        },
    )
    ranking = _rank(store, tmp_path, {"large_data": 1})
    rows = {r.group: r for r in ranking.rows}
    # 100000 is the largest size both ran (torch's 1,000,000 has no TensorFlow counterpart).
    assert rows["tensorflow"].total == pytest.approx(1.0) and rows["torch"].total == pytest.approx(0.5)
    crit = {(r["criterion"], r["framework"]): r for r in csv.DictReader((tmp_path / "report" / "criteria.csv").open())}
    assert float(crit[("large_data", "torch")]["value"]) == 400 and "data.num_samples=100000" in crit[("large_data", "torch")]["note"]
    # How the curve got there, from the smallest to the largest size both ran.
    assert "mlp/digits: from 1,000 to 100,000, throughput x0.80, peak memory x1.50" in crit[("large_data", "torch")]["note"]
    assert "mlp/digits: from 1,000 to 100,000, throughput x2.67, peak memory x1.00" in crit[("large_data", "tensorflow")]["note"]
    curve = [
        (r["framework"], r["size"], r["speed/samples_per_s"], r["memory/peak_rss_mb"], r["every_framework_ran"])
        for r in csv.DictReader((tmp_path / "report" / "scaling.csv").open())
    ]
    assert curve == [
        ("tensorflow", "1000", "300.0", "500.0", "True"),
        ("tensorflow", "100000", "800.0", "500.0", "True"),
        ("torch", "1000", "500.0", "400.0", "True"),
        ("torch", "100000", "400.0", "600.0", "True"),
        ("torch", "1000000", "50.0", "2000.0", "False"),
    ]
    assert (tmp_path / "report" / "plots" / "scaling.png").exists()


def test_domino_job_gets_the_report_in_its_artifacts_folder(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plant(store, {"torch": [{"speed/samples_per_s": 100}], "tensorflow": [{"speed/samples_per_s": 300}]})
    monkeypatch.setenv("DOMINO_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    cfg = _compose_compare([f"tracking.uri={store}", "select.experiment=planted", "report.log_run=false", "platform=domino"])
    cfg["ranking"]["weights"] = {"train_throughput": 1}
    compare(cfg, tmp_path / "report", "planted")
    published = tmp_path / "artifacts" / "comparison"
    assert {"report.html", "report.md", "ranking.csv", "criteria.csv"} <= {p.name for p in published.iterdir()}
    assert "tensorflow" in (published / "ranking.csv").read_text().splitlines()[1]


def test_a_single_framework_is_described_not_ranked_against_the_article(store: str, tmp_path: Path) -> None:
    _plant(store, {"torch": [{"speed/samples_per_s": 100, "test/accuracy": 0.9}]})
    rep = compare(_compose_compare([f"tracking.uri={store}", "select.experiment=planted", "report.log_run=false"]), tmp_path / "report", "balanced")
    assert [r.group for r in rep.ranking.rows] == ["torch"] and rep.ranking.rows[0].rank == 1
    speed = next(a for a in rep.article if a.row == "speed")
    assert "one framework" in speed.verdict and "no difference measured" not in speed.verdict
    # Planted runs log no license: nothing to hold against the article, which is not a disagreement.
    assert next(a for a in rep.article if a.row == "license").verdict == "license: not comparable"


def test_license_and_code_size_come_from_what_the_runs_logged(store: str, tmp_path: Path) -> None:
    client = _plant(
        store,
        {
            "torch": [
                {"speed/samples_per_s": 100, "facts/trainer_api_names": 40, "facts/trainer_lines": 200},
                {"speed/samples_per_s": 100, "facts/trainer_api_names": 42, "facts/trainer_lines": 210},
            ],
            "tensorflow": [{"speed/samples_per_s": 300}],  # a run from before the trials logged these facts
        },
    )
    for run in client.search_runs([client.get_experiment_by_name("planted").experiment_id], "tags.`arena.framework` = 'torch'"):
        client.set_tag(run.info.run_id, "arena.license", "BSD-3-Clause")
        client.set_tag(run.info.run_id, "arena.framework_dist", "torch")
    ranking = _rank(store, tmp_path, {"train_throughput": 1, "license": 1, "code_size": 1})
    crit = {(r["criterion"], r["framework"]): r for r in csv.DictReader((tmp_path / "report" / "criteria.csv").open())}
    torch_license, torch_size = crit[("license", "torch")], crit[("code_size", "torch")]
    assert torch_license["display"] == "BSD-3-Clause" and float(torch_license["value"]) == 1.0 and torch_license["note"] == "torch"
    assert float(torch_size["value"]) == 41 and torch_size["display"] == "41 API names, 205 lines" and torch_size["runs"] == "2"
    # The older run is reported missing, with the reason, never read from this machine's installs.
    for key in ("license", "code_size"):
        cell = crit[(key, "tensorflow")]
        assert cell["display"] == "missing" and cell["value"] == "" and "not logged by these runs" in cell["note"], cell
    assert ranking.used == ["train_throughput"] and set(ranking.excluded) == {"license", "code_size"}


# Written as sitecustomize.py on the PYTHONPATH of one process: site imports it at start-up, before
# anything else runs. Every import finder and every metadata finder then answers for torch exactly
# as it does where torch is not installed (find_spec returns None, no distribution is found), so
# `import torch` raises ModuleNotFoundError and importlib.metadata raises PackageNotFoundError.
# Uninstalling torch from the shared environment is not an option; this is the same view of it.
_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys


    def _is_torch(name):
        return (name or "").split(".")[0].lower().replace("_", "-") == "torch"


    class _WithoutTorch:
        def __init__(self, finder):
            self._finder = finder

        def find_spec(self, name, path=None, target=None):
            if _is_torch(name) or not hasattr(self._finder, "find_spec"):
                return None
            return self._finder.find_spec(name, path, target)

        def find_distributions(self, *args, **kwargs):
            if not hasattr(self._finder, "find_distributions"):
                return iter(())
            return (d for d in self._finder.find_distributions(*args, **kwargs) if not _is_torch(d.metadata["Name"]))

        def __getattr__(self, attr):
            return getattr(self._finder, attr)


    sys.meta_path[:] = [_WithoutTorch(f) for f in sys.meta_path]
    """
)


@pytest.mark.slow
def test_a_copied_store_compares_on_a_machine_without_one_framework(shootout: Path, tmp_path: Path) -> None:
    """The license and API size of torch come from its runs, where torch is not installed."""
    copy = tmp_path / "store"
    copy.mkdir()
    shutil.copy2(shootout / "mlflow.db", copy / "mlflow.db")
    if (shootout / "mlruns").exists():
        shutil.copytree(shootout / "mlruns", copy / "mlruns")
    store = f"sqlite:///{copy / 'mlflow.db'}"
    shim = tmp_path / "without_torch"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_WITHOUT_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    check = (
        "import importlib.metadata as md, importlib.util\n"
        "assert importlib.util.find_spec('torch') is None\n"
        "try:\n    md.version('torch')\nexcept md.PackageNotFoundError:\n    pass\nelse:\n    raise SystemExit('torch metadata found')\n"
        "try:\n    import torch\nexcept ModuleNotFoundError:\n    print('torch not installed')\n"
    )
    probe = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120)
    assert probe.stdout.strip() == "torch not installed", probe.stdout + probe.stderr
    out = tmp_path / "out"
    args = [f"tracking.uri={store}", "select.sweep=latest", "report.log_run=false", "bootstrap.samples=20", f"hydra.run.dir={out}"]
    proc = subprocess.run([str(Path(sys.executable).with_name("arena-compare")), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    client = MlflowClient(store)
    exp = client.get_experiment_by_name("framework-arena")
    runs = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial' and tags.`arena.framework` = 'torch'")
    assert len(runs) == 2
    crit = {(r["criterion"], r["framework"]): r for r in csv.DictReader((out / "comparison" / "criteria.csv").open())}
    torch_license, size = crit[("license", "torch")], crit[("code_size", "torch")]
    assert {r.data.tags["arena.license"] for r in runs} == {torch_license["display"]} and "BSD" in torch_license["display"], torch_license
    # The own license, read from torch's own LICENSE file; the bundled components' licenses apart (issue 20).
    assert float(torch_license["value"]) == 1.0 and torch_license["note"].startswith("torch; own license from its LICENSE file; bundled components"), (
        torch_license
    )
    assert float(size["value"]) == statistics.median(r.data.metrics["facts/trainer_api_names"] for r in runs) > 0
    assert size["display"].endswith(f"{statistics.median(r.data.metrics['facts/trainer_lines'] for r in runs):g} lines")
    for group in ("tensorflow", "keras-tensorflow"):  # every framework's facts are read the same way
        assert crit[("license", group)]["value"] and crit[("code_size", group)]["value"], group


# --- workloads: rank within each, then aggregate (issue 22) ------------------------------------------


def test_workload_is_the_spec_not_the_name_and_ignores_framework_and_seed() -> None:
    from framework_arena.compare.workload import labels, workload_of

    base = {"model.name": "mlp", "model.hidden": "[128, 64]", "data.name": "digits", "trainer.batch_size": "64", "framework.compile": "False"}
    torch = workload_of({**base, "framework.name": "torch", "trainer.seed": "0", "data.split_seed": "0"}, {"arena.device": "cuda:0", "arena.compile": "off"})
    # Another framework, seed, split and compiler tag (Keras on jax always runs XLA): the same workload.
    jax = workload_of(
        {**base, "framework.name": "keras", "framework.backend": "jax", "trainer.seed": "2", "data.split_seed": "2"},
        {"arena.device": "gpu:0", "arena.compile": "xla"},
    )
    assert torch == jax and torch.get("device") == "gpu" and torch.get("compile") == "false"
    wider = workload_of({**base, "model.hidden": "[256]"}, {"arena.device": "cuda:0"})
    others = [
        wider,
        workload_of({**base, "trainer.batch_size": "512"}, {"arena.device": "cuda:0"}),
        workload_of(base, {"arena.device": "cpu"}),
        workload_of(base, {"arena.device": "cuda:0", "arena.precision": "bf16"}),
        workload_of(base, {"arena.device": "cuda:0", "arena.machine": "h200-node7"}),
    ]
    assert len({torch, *others}) == 6
    names = labels([torch, wider])
    assert names[torch] == "mlp/digits model.hidden=[128, 64]" and names[wider] == "mlp/digits model.hidden=[256]"


def test_a_framework_faster_on_every_workload_ranks_first_whatever_its_run_counts(store: str, tmp_path: Path) -> None:
    """torch is 2x faster than tensorflow on both workloads, but ran the slow one 6 times and the
    fast one once; tensorflow the opposite. Pooled, tensorflow looks faster."""
    fast, slow = {"tag:arena.model": "mlp"}, {"tag:arena.model": "cnn"}
    torch_fast, torch_slow = [1000.0], [100.0, 96.0, 104.0, 98.0, 102.0, 100.0]
    tf_fast, tf_slow = [500.0, 480.0, 520.0, 490.0, 510.0, 500.0], [50.0]
    _plant(
        store,
        {
            "torch": [{**fast, "speed/samples_per_s": v} for v in torch_fast] + [{**slow, "speed/samples_per_s": v} for v in torch_slow],
            "tensorflow": [{**fast, "speed/samples_per_s": v} for v in tf_fast] + [{**slow, "speed/samples_per_s": v} for v in tf_slow],
        },
    )
    pooled = {"torch": torch_fast + torch_slow, "tensorflow": tf_fast + tf_slow}
    assert statistics.mean(pooled["tensorflow"]) > 1.9 * statistics.mean(pooled["torch"])  # 435 vs 229 samples/s
    assert statistics.median(pooled["tensorflow"]) == 5 * statistics.median(pooled["torch"])  # what compare ranked on before workloads

    rep = _report(store, tmp_path, {"train_throughput": 1})
    rk = rep.ranking
    assert [(r.group, r.rank, r.tied) for r in rk.rows] == [("torch", 1, False), ("tensorflow", 2, False)]
    # On each workload: torch is the best (1.0), tensorflow half of it, from that workload's seeds only.
    scored = {w.label: w for w in rk.workloads}
    assert set(scored) == {"mlp/digits", "cnn/digits"} and all(w.runs.scored for w in scored.values())
    for w in scored.values():
        assert w.ratios["train_throughput"] == pytest.approx({"torch": 1.0, "tensorflow": 0.5})
    assert {g: len(d.trials) for g, d in scored["cnn/digits"].runs.groups.items()} == {"torch": 6, "tensorflow": 1}
    # Across workloads: the geometric mean of the ratios; the value, that of the seed medians.
    assert rk.scores["train_throughput"] == pytest.approx({"torch": 1.0, "tensorflow": 0.5})
    assert rep.table["train_throughput"]["torch"].value == pytest.approx(math.sqrt(1000 * 100))
    assert rep.table["train_throughput"]["tensorflow"].value == pytest.approx(math.sqrt(500 * 50))
    assert rk.counted["train_throughput"] == {"torch": ["cnn/digits", "mlp/digits"], "tensorflow": ["cnn/digits", "mlp/digits"]}
    # Separated intervals: the score's, the value's and the total's.
    for intervals in (rk.score_intervals["train_throughput"], rk.value_intervals["train_throughput"]):
        assert intervals["tensorflow"][1] < intervals["torch"][0], intervals
    assert rk.rows[1].high < rk.rows[0].low and rk.best["train_throughput"] == ["torch"]
    assert rk.within_tau["total"] == {"torch": (2, 2), "tensorflow": (0, 2)}
    report = (tmp_path / "report" / "report.md").read_text()
    for section in ("## Ranking (aggregate across workloads)", "## Workloads", "### mlp/digits", "### cnn/digits", "## Performance profile"):
        assert section in report, section
    assert (tmp_path / "report" / "plots" / "performance_profile.png").exists()
    rows = list(csv.DictReader((tmp_path / "report" / "workloads.csv").open()))
    tf_cnn = next(r for r in rows if (r["workload"], r["framework"], r["criterion"]) == ("cnn/digits", "tensorflow", "train_throughput"))
    assert float(tf_cnn["value"]) == 50 and float(tf_cnn["ratio"]) == pytest.approx(0.5) and tf_cnn["runs"] == "1"


def test_a_workload_only_one_framework_ran_is_listed_and_changes_no_score(store: str, tmp_path: Path) -> None:
    lonely = {"tag:arena.model": "lstm"}
    _plant(
        store,
        {
            "torch": [{"speed/samples_per_s": v, "test/accuracy": a} for v, a in ((100, 0.90), (110, 0.92), (90, 0.91))]
            + [{**lonely, "speed/samples_per_s": 1e6, "test/accuracy": 0.99}],  # tempting, and nobody to hold it against
            "tensorflow": [{"speed/samples_per_s": v, "test/accuracy": a} for v, a in ((200, 0.85), (190, 0.86), (210, 0.84))],
        },
    )
    weights = {"train_throughput": 1, "quality": 1}
    every = _report(store, tmp_path, weights, out="every").ranking
    shared = _report(store, tmp_path, weights, ["select.filter=\"tags.`arena.model` = 'mlp'\""], out="shared").ranking
    partial = _report(store, tmp_path, weights, ["aggregate.include_partial=true"], out="partial").ranking
    for rk in (every, partial):  # a workload one framework ran is never scored, switch or not
        assert [(r.group, r.total, r.low, r.high, r.rank) for r in rk.rows] == [(r.group, r.total, r.low, r.high, r.rank) for r in shared.rows]
        assert rk.scores == shared.scores and rk.score_intervals == shared.score_intervals and rk.value_intervals == shared.value_intervals
    [left_out] = [w for w in every.workloads if not w.runs.scored]
    assert left_out.label == "lstm/digits" and list(left_out.runs.groups) == ["torch"] and left_out.runs.missing == ["tensorflow"]
    assert left_out.values["train_throughput"] == {"torch": 1e6} and left_out.ratios == {}
    report = (tmp_path / "every" / "report.md").read_text()
    assert "### lstm/digits (not covered: run by torch only; left out of the aggregate)" in report
    assert "| lstm/digits | no: not covered | torch (1) | tensorflow |" in report
    rows = list(csv.DictReader((tmp_path / "every" / "workloads.csv").open()))
    assert {r["in_aggregate"] for r in rows if r["workload"] == "lstm/digits"} == {"False"}


def test_partial_coverage_is_a_switch_and_no_shared_workload_is_a_clear_message(store: str, tmp_path: Path) -> None:
    from framework_arena.compare.coverage import NoCommonWorkload
    from framework_arena.compare.settings import validate
    from framework_arena.errors import ConfigError

    cnn = {"tag:arena.model": "cnn"}
    _plant(
        store,
        {
            "torch": [{"speed/samples_per_s": 100}, {**cnn, "speed/samples_per_s": 40}],
            "tensorflow": [{"speed/samples_per_s": 50}, {**cnn, "speed/samples_per_s": 80}],
            "keras-jax": [{"speed/samples_per_s": 25}],
        },
    )
    weights = {"train_throughput": 1}
    common = _rank(store, tmp_path, weights)  # cnn: keras-jax did not run it
    assert common.counted["train_throughput"] == {g: ["mlp/digits"] for g in ("keras-jax", "tensorflow", "torch")}
    assert common.scores["train_throughput"] == pytest.approx({"torch": 1.0, "tensorflow": 0.5, "keras-jax": 0.25})
    partial = _rank(store, tmp_path, weights, aggregate={"tau": 1.5, "include_partial": True})
    assert partial.counted["train_throughput"]["torch"] == ["cnn/digits", "mlp/digits"] and partial.counted["train_throughput"]["keras-jax"] == ["mlp/digits"]
    assert partial.scores["train_throughput"] == pytest.approx({"torch": math.sqrt(1.0 * 0.5), "tensorflow": math.sqrt(0.5 * 1.0), "keras-jax": 0.25})
    assert partial.within_tau["train_throughput"] == {"torch": (1, 2), "tensorflow": (1, 2), "keras-jax": (0, 1)}
    # group_by=framework_model: each (framework, model) is compared on its own model's workloads.
    by_model = _rank(store, tmp_path, weights, group_by="framework_model")
    assert by_model.scores["train_throughput"] == pytest.approx(
        {"keras-jax/mlp": 0.25, "tensorflow/cnn": 1.0, "tensorflow/mlp": 0.5, "torch/cnn": 0.5, "torch/mlp": 1.0}
    )
    assert by_model.counted["train_throughput"]["torch/cnn"] == ["cnn/digits"]

    # Apart: torch and keras-jax share the MLP, tensorflow ran only the CNN.
    apart_runs = {"torch": [{"speed/samples_per_s": 100}], "keras-jax": [{"speed/samples_per_s": 90}], "tensorflow": [{**cnn, "speed/samples_per_s": 80}]}
    _plant(store, apart_runs, experiment="apart")
    apart = [f"tracking.uri={store}", "select.experiment=apart", "report.log_run=false"]
    with pytest.raises(NoCommonWorkload) as info:
        compare(_compose_compare(apart), tmp_path / "apart", "balanced")
    message = str(info.value)
    assert "No workload was run by every compared framework (keras-jax, tensorflow, torch): tensorflow shares no workload with any other" in message
    assert "cnn/digits: tensorflow (1 run); mlp/digits: keras-jax (1 run), torch (1 run)" in message
    assert "select.frameworks=[keras-jax,torch]" in message and "aggregate.include_partial=true" in message
    with pytest.raises(NoCommonWorkload, match="tensorflow shares no workload with the other frameworks"):
        compare(_compose_compare([*apart, "aggregate.include_partial=true"]), tmp_path / "apart", "balanced")
    with pytest.raises(ConfigError, match=re.escape("Received: aggregate.tau=0.5")):
        validate(_compose_compare(["aggregate.tau=0.5"]))


@pytest.mark.slow
def test_real_two_model_shootout_reports_each_workload_and_the_aggregate(tmp_path: Path) -> None:
    train = run_arena(["-m", "framework=torch,tensorflow", "model=mlp,cnn", "trainer.epochs=2", "hydra/launcher=parallel"], tmp_path, timeout=900)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    out = tmp_path / "out"
    # Four trials, two at a time, on a shared 2-core machine: one may be tagged contended (CI saw
    # it) and its speed screened out. Kept, as in test_shards: this test checks the aggregation.
    args = [
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "select.sweep=latest",
        "select.include_contended=true",
        "report.log_run=false",
        "bootstrap.samples=200",
        f"hydra.run.dir={out}",
    ]
    proc = run_compare(args, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The terminal: the aggregate ranking, then one line per workload with both frameworks on it.
    assert "Ranking, profile balanced" in proc.stdout and "Workloads: 2 of 2 in the aggregate" in proc.stdout, proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith(("mlp/digits:", "cnn/digits:"))]
    assert len(lines) == 2 and all("torch" in line and "tensorflow" in line for line in lines), proc.stdout
    report = (out / "comparison" / "report.md").read_text()
    for section in ("## Ranking (aggregate across workloads)", "## Criteria (aggregate", "## Workloads", "### mlp/digits", "### cnn/digits"):
        assert section in report, section
    # The aggregate throughput is the geometric mean of the two workloads' seed medians, never their pooled mean.
    rows = list(csv.DictReader((out / "comparison" / "workloads.csv").open()))
    speed = {(r["workload"], r["framework"]): float(r["value"]) for r in rows if r["criterion"] == "train_throughput"}
    criteria = {(r["criterion"], r["framework"]): r for r in csv.DictReader((out / "comparison" / "criteria.csv").open())}
    for group in ("torch", "tensorflow"):
        expected = math.sqrt(speed[("mlp/digits", group)] * speed[("cnn/digits", group)])
        assert float(criteria[("train_throughput", group)]["value"]) == pytest.approx(expected)
        assert criteria[("train_throughput", group)]["workloads"] == "2"


def _as_flat_named_run(client: MlflowClient, run: Any) -> None:
    """Replaces ``run`` by its copy logged under the flat metric names of runs from before the
    sections (``val_accuracy``, ``train_samples_per_s`` ...): same tags, params, histories, times."""
    from mlflow.entities import Metric, Param

    from framework_arena.metric_names import RENAMED, flat_name

    run_id = run.info.run_id
    old = client.create_run(run.info.experiment_id, start_time=run.info.start_time, tags=run.data.tags, run_name=run.info.run_name)
    metrics = [Metric(flat_name(key) or key, m.value, m.timestamp, m.step) for key in run.data.metrics for m in client.get_metric_history(run_id, key)]
    assert {m.key for m in metrics}.isdisjoint(RENAMED.values())  # every metric that had a flat name is logged under it
    params = [Param(k, v) for k, v in run.data.params.items()]
    for i in range(0, max(len(metrics), len(params)), 100):  # MLflow's batch limits
        client.log_batch(old.info.run_id, metrics=metrics[i : i + 100], params=params[i : i + 100])
    client.set_terminated(old.info.run_id, "FINISHED", end_time=run.info.end_time)
    client.delete_run(run_id)


@pytest.mark.slow
def test_runs_logged_under_the_flat_names_compare_as_if_sectioned(shootout: Path, tmp_path: Path) -> None:
    """A store from before the metric sections keeps comparing: half the runs renamed back to the
    flat names rank and score exactly as when every run has the sectioned names."""
    from framework_arena import api
    from framework_arena.tracking import Reader

    results = {}
    for mixed in (False, True):
        store = tmp_path / f"store-{mixed}"
        shutil.copytree(shootout, store)
        uri = f"sqlite:///{store / 'mlflow.db'}"
        if mixed:
            client = MlflowClient(uri)
            exp = client.get_experiment_by_name("framework-arena")
            runs = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial' and params.`trainer.seed` = '1'")
            assert len(runs) == 3 and "val/accuracy" in runs[0].data.metrics
            for run in runs:  # one run of each framework: every group mixes both spellings
                _as_flat_named_run(client, run)
            [flat] = client.search_runs([exp.experiment_id], f"attributes.run_name = '{runs[0].info.run_name}'")
            expected = [(m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, "val/accuracy")]
            assert Reader(uri).history(flat.info.run_id, "val/accuracy") == expected != []  # time to target reads it
            assert len(client.search_runs([exp.experiment_id], "metrics.`val_accuracy` > 0")) == 3
        result = api.compare([f"tracking.uri={uri}", "select.sweep=latest", "bootstrap.samples=20", "report.log_run=false"], out_dir=tmp_path / f"out-{mixed}")
        assert len(result.runs) == 6
        results[mixed] = (
            result.ranking[["framework", "rank", "score"]].to_dict("records"),
            result.criteria[["criterion", "framework", "value", "display", "score"]].astype(str).to_dict("records"),
        )
    assert results[True] == results[False]
    criteria = {(r["criterion"], r["framework"]): r["value"] for r in results[True][1]}
    assert float(criteria["quality", "torch"]) > 0.3  # never screened out (speed may be: contended runs)


def test_histories_read_in_bulk_and_figures_drawn_by_workers_are_the_ones_drawn_here(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19: a SQL store's histories come in one query per key, equal to one request per run
    and key; figures drawn by worker processes are the files drawn in this process, byte for byte."""
    from mlflow.entities import Metric

    from framework_arena.compare import draw
    from framework_arena.compare.report import write_all
    from framework_arena.compare.run import HISTORY_KEYS
    from framework_arena.metric_names import flat_name
    from framework_arena.tracking import Reader

    base = {"test/accuracy": 0.9, "speed/samples_per_s": 1000.0, "memory/peak_rss_mb": 500.0}
    client = _plant(store, {"torch": [base] * 3, "tensorflow": [{**base, "speed/samples_per_s": 2000.0}] * 3})
    ids = [r.info.run_id for r in client.search_runs([client.get_experiment_by_name("planted").experiment_id])]
    for n, run_id in enumerate(ids):
        # Odd runs log their histories under the flat names of runs from before the sections: the bulk read falls back as history() does.
        name = (lambda key: flat_name(key) or key) if n % 2 else (lambda key: key)
        curve = [
            Metric(name(k), v, 1000 + e, e)
            for e in range(1, 5)
            for k, v in (("val/accuracy", 0.5 + 0.1 * e + 0.01 * n), ("train/loss", 1.0 / e), ("speed/epoch_time_s", 0.5 + n))
        ]
        curve.append(Metric(name("val/accuracy"), 0.1, 999, 2))  # two values at one step: ordered by value, as one request each orders them
        client.log_batch(run_id, metrics=curve)
    reader = Reader(store)
    bulk = reader.histories(ids, HISTORY_KEYS)
    assert bulk == {r: {k: reader.history(r, k) for k in HISTORY_KEYS} for r in ids}
    assert bulk[ids[0]]["val/accuracy"][:3] == [(1, 0.6), (2, 0.1), (2, 0.7)]
    assert bulk[ids[1]]["val/accuracy"][:3] == [(1, 0.61), (2, 0.1), (2, 0.71)]  # logged as val_accuracy

    monkeypatch.setattr(draw, "PARALLEL_FROM", 1)  # workers for these 6 runs
    rep = _report(store, tmp_path, {"train_throughput": 1.0, "time_to_target": 1.0}, ["report.plot_workers=2", "target_accuracy=0.75"], out="workers")
    assert not [r for r in caplog.records if "figure worker failed" in r.getMessage()]  # the workers drew them
    write_all(rep, tmp_path / "here")  # the same report, its figures drawn in this process
    pngs = sorted(p.name for p in (tmp_path / "here" / "plots").glob("*.png"))
    assert "learning_curves.png" in pngs and "criteria.png" in pngs
    assert pngs == sorted(p.name for p in (tmp_path / "workers" / "plots").glob("*.png"))
    for name in pngs:
        assert (tmp_path / "here" / "plots" / name).read_bytes() == (tmp_path / "workers" / "plots" / name).read_bytes(), name
    assert (tmp_path / "here" / "report.html").read_text() == (tmp_path / "workers" / "report.html").read_text()
    crit = list(csv.DictReader(io.StringIO((tmp_path / "here" / "criteria.csv").read_text())))
    assert any(r["criterion"] == "time_to_target" and r["value"] not in ("", "nan") for r in crit)  # the histories were read


def test_runs_read_from_the_sql_tables_are_the_runs_mlflow_search_finds(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: on a SQL store Reader.pages reads the runs from the tables (no ORM objects); for
    every filter compare builds, and a user's, it gives what search_runs gives: the same runs in
    the same order with the same params, tags and latest metrics, over several chunks and pages."""
    from framework_arena.compare.query import TRIAL_FILTER
    from framework_arena.tracking import Reader
    from framework_arena.tracking import reader as reader_mod

    runs = {
        g: [{"test/accuracy": 0.5 + 0.1 * s, "speed/samples_per_s": 100.0 * (s + 1), "param:data.name": "digits"} for s in range(4)]
        for g in ("torch", "tensorflow", "keras-jax")
    }
    runs["torch"][1]["speed/samples_per_s"] = float("nan")
    client = _plant(store, runs)
    exp = client.get_experiment_by_name("planted").experiment_id
    running = client.create_run(exp, run_name="still-running", tags={"arena.kind": "trial", "arena.framework": "torch"})
    client.delete_run(client.create_run(exp, tags={"arena.kind": "trial", "arena.framework": "torch"}).info.run_id)
    client.set_terminated(client.create_run(exp, tags={"arena.kind": "sweep"}).info.run_id, "FINISHED")
    two = [r.info.run_id for r in client.search_runs([exp], max_results=2)]

    filters = [
        TRIAL_FILTER,
        "",
        f"{TRIAL_FILTER} and params.`trainer.seed` = '2'",
        "metrics.`test/accuracy` > 0.65 and tags.`arena.framework` LIKE 'ker%'",
        f"attributes.run_id IN ('{two[0]}', '{two[1]}')",
        f"attributes.status != 'FINISHED' and attributes.run_id = '{running.info.run_id}'",
        "params.`data.name` = 'digits' and metrics.`speed/samples_per_s` >= 200",
    ]
    monkeypatch.setattr(Reader, "PAGE", 5)
    monkeypatch.setattr(Reader, "BULK_RUNS", 3)  # several chunks and pages out of 15 runs
    reader = Reader(store)

    search_runs = reader.client.search_runs

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the SQL read fell back to search_runs")

    def seen(sql: bool, filter_string: str, limit: int) -> list[tuple]:
        monkeypatch.setattr(reader_mod, "SQL_READS", sql)
        monkeypatch.setattr(reader.client, "search_runs", refused if sql else search_runs)  # each path really taken
        found = [
            (r.info.run_id, r.info.run_name, r.info.status, r.data.params, r.data.tags, {k: repr(v) for k, v in r.data.metrics.items()})
            for page in reader.pages([exp], filter_string, limit)
            for r in page
        ]
        assert len(found) <= limit
        return found

    for filter_string in filters:
        for limit in (1000, 7):
            mlflow_found = seen(False, filter_string, limit)
            assert mlflow_found, filter_string  # every filter here matches something
            assert seen(True, filter_string, limit) == mlflow_found, (filter_string, limit)
    assert len(seen(True, TRIAL_FILTER, 1000)) == 12  # finished trials only: not the running, deleted or sweep run
    errors = []
    for sql in (False, True):  # a wrong filter fails as search_runs fails, with its message
        with pytest.raises(Exception) as raised:
            seen(sql, "params.x = 1", 10)
        errors.append(str(raised.value))
    assert errors[0] == errors[1] and "quoted string" in errors[0]
