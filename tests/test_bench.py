"""The benchmark scripts run end to end on tiny settings (their figures are not asserted: speed is
measured by running them, see README "Speed you can trust")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_overhead_smoke_gives_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "overhead.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--smoke", "--frameworks", "keras", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = {f["figure"]: f for f in _json_lines(proc.stdout)}
    expected = {
        "harness_ratio",
        "arena_samples_per_s",
        "bare_samples_per_s",
        "untracked_ms_per_epoch",
        "tracking_ratio",
        "tracking_cost_ratio",
        "tracking_in_loop_ms_per_epoch",
        "sender_cpu_ms_per_epoch",
        "tracking_end_ms",
        "autolog_ratio",
        "trial_start_s",
        "bare_import_s",
        "start_overhead_s",
        "tensorboard_ratio",
        "tensorboard_cost_ratio",
        "tensorboard_in_loop_ms_per_epoch",
        "tensorboard_once_s",
        "tensorboard_kb_per_epoch",
    }
    assert expected <= set(figures), sorted(figures)
    assert all(f["framework"] == "keras" and f["value"] == f["value"] for f in figures.values())  # no NaN
    assert figures["harness_ratio"]["target"] == ">= 0.97" and figures["tracking_ratio"]["target"] == "<= 1.03"
    for name in ("harness_ratio", "tracking_ratio", "tracking_cost_ratio"):
        lo, hi = figures[name]["ci90"]
        assert lo <= hi and figures[name]["value"] > 0, figures[name]
    # The launching side's sender did the sending (its CPU time is not a silent zero), and the
    # tracked callbacks were timed (they report more than the untracked ones).
    assert figures["sender_cpu_ms_per_epoch"]["value"] > 0 and figures["tracking_in_loop_ms_per_epoch"]["value"] > 0
    assert figures["tracking_cost_ratio"]["value"] >= 1
    # The TensorBoard writes were timed and wrote something (a histogram per weight each epoch).
    assert figures["tensorboard_in_loop_ms_per_epoch"]["value"] > 0 and figures["tensorboard_kb_per_epoch"]["value"] > 0
    text = out.read_text()
    assert "## Machine" in text and "Load average" in text and '"figure": "harness_ratio"' in text


def test_gpu_script_runs_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu.py"), "--device", "cpu", "--smoke", "--cases", "torch bf16", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = _json_lines(proc.stdout)
    assert row["case"] == "torch bf16" and row["status"] == "FINISHED", row
    for key in (
        "speed/samples_per_s",
        "speed/time_to_first_step_s",
        "infer/latency_ms_p50",
        "infer/latency_ms_p95",
        "infer/samples_per_s",
        "memory/peak_rss_mb",
    ):
        assert row[key] > 0, key
    assert "| torch bf16 |" in out.read_text()


def test_input_pipeline_smoke_gives_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "input_pipeline.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "input_pipeline.py"), "--smoke", "--frameworks", "torch", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = {f["figure"]: f for f in _json_lines(proc.stdout)}
    expected = {"stream_ratio", "streamed_samples_per_s", "in_memory_samples_per_s", "input_samples_per_s", "input_share", "input_ceiling"}
    assert set(figures) == expected and all(f["framework"] == "torch" and f["value"] > 0 for f in figures.values())
    lo, hi = figures["stream_ratio"]["ci90"]
    assert lo <= figures["stream_ratio"]["value"] <= hi and figures["stream_ratio"]["target"] == ">= 0.9"
    ratio = figures["streamed_samples_per_s"]["value"] / figures["in_memory_samples_per_s"]["value"]
    assert 0.5 * ratio < figures["stream_ratio"]["value"] < 2 * ratio  # the paired median, near the pooled one
    text = out.read_text()
    assert "## Machine" in text and "Load average" in text and "| torch |" in text and '"figure": "stream_ratio"' in text


def test_trial_cost_parses_its_arguments() -> None:
    # The benchmark itself runs four processes per framework and round (minutes): only its arguments are checked here.
    proc = subprocess.run([sys.executable, str(BENCH / "trial_cost.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tracked_vs_mlflow_script" in proc.stdout and "--quick" in proc.stdout and "--frameworks" in proc.stdout
    bad = subprocess.run([sys.executable, str(BENCH / "trial_cost.py"), "--frameworks", "caffe"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'caffe'" in bad.stderr
