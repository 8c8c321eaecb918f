"""Run descriptions: the Markdown the MLflow UI shows for trials, sweeps and comparisons."""

from __future__ import annotations

import math

from conftest import compose

from framework_arena import notes
from framework_arena.trial import plain

METRICS = {
    "val/accuracy": 0.84758,
    "test/accuracy": 0.7918,
    "val/loss": 1.17,
    "speed/samples_per_s": 26874.3,
    "speed/fit_time_s": 3.27,
    "model/num_params": 17226.0,
}


def test_trial_note_says_framework_config_result_and_parent() -> None:
    cfg = plain(compose(["framework=keras", "framework.backend=torch", "optim=sgd", "trainer.epochs=3"]))
    note = notes.trial_note(cfg, METRICS, "FINISHED", "p" * 32, experiment_id="7", framework_version="3.15.0")
    assert note.startswith("**keras on torch** · mlp · digits — **FINISHED**")
    assert "val/accuracy **0.8476**" in note and "speed/samples_per_s **26,874**" in note and "model/num_params **17,226**" in note
    assert f"[`{'p' * 32}`](#/experiments/7/runs/{'p' * 32})" in note
    assert "| framework | keras 3.15.0, back end torch |" in note
    assert "| optimizer | sgd: lr 0.05, momentum 0.9, nesterov False |" in note
    assert "| trainer | 3 epochs, batch 64, seed 0," in note
    assert "hidden [128, 64]" in note and "split_seed 0" in note


def test_failed_trial_note_gives_the_reason_on_one_line() -> None:
    cfg = plain(compose([]))
    note = notes.trial_note(cfg, {}, "FAILED", message="NonFiniteLossError: loss is nan\n  at epoch 2")
    assert "**Result:** failed: NonFiniteLossError: loss is nan at epoch 2; see `error.txt`" in note
    assert "Sweep" not in note  # a single run has no parent


def _rows(n: int) -> list[dict]:
    return [
        {
            "job": i,
            "status": "FINISHED",
            "run_name": f"torch-mlp-digits-s{i}",
            "run_id": f"{i:032x}",
            "objective": 0.8 + i / 1000,
            "overrides": f"trainer.seed={i}",
        }
        for i in range(n)
    ]


def test_sweep_note_best_counts_and_linked_trials() -> None:
    rows = _rows(3)
    rows.append({"job": 3, "status": "INVALID", "run_name": "", "run_id": "", "objective": math.nan, "overrides": "optim.lr=-1"})
    note = notes.sweep_note(rows, {"FINISHED": 3, "INVALID": 1}, rows[2], "val/accuracy", "maximize", experiment_id="1", overrides="trainer.seed=0,1,2")
    assert "Objective: maximize `val/accuracy`. 3 finished, 1 invalid." in note
    assert f"**Best:** [torch-mlp-digits-s2](#/experiments/1/runs/{2:032x}) with val/accuracy **0.8020**" in note
    assert f"| 0 | FINISHED | [torch-mlp-digits-s0](#/experiments/1/runs/{0:032x}) | 0.8000 | `trainer.seed=0` |" in note
    assert "| 3 | INVALID | - | n/a | `optim.lr=-1` |" in note


def test_sweep_note_of_a_large_sweep_fits_an_mlflow_tag() -> None:
    rows = _rows(500)
    note = notes.sweep_note(rows, {"FINISHED": 500}, rows[-1], "val/accuracy", "maximize", experiment_id="1")
    assert len(note) <= notes.MAX_NOTE < 5000
    shown = note.count("| FINISHED |")
    assert 10 < shown < 500 and f"| … | | {500 - shown} more | | |" in note
    assert note.rstrip().endswith("in this run's artifacts.")


def test_comparison_note_ranking_ties_and_compared_runs() -> None:
    ranking = [("keras", 0.82, 1, False), ("torch", 0.7, 2, True), ("tensorflow", 0.7, 2, True)]
    note = notes.comparison_note(ranking, "balanced", "shootout", run_ids=["a" * 32], sweep_id="b7a6", experiment_id="3")
    assert note.startswith("**Framework comparison** · profile `balanced` · experiment `shootout` · sweep `b7a6`")
    assert "**Winner:** **keras** (score 0.8200)" in note
    assert "| 2= | torch | 0.7000 |" in note and "| 2= | tensorflow | 0.7000 |" in note
    assert f"[aaaaaaaa](#/experiments/3/runs/{'a' * 32})" in note and "`report.html`" in note
    tied = notes.comparison_note([("keras", 0.8, 1), ("torch", 0.8, 1)], "speed", "e")
    assert "**Tie for first:** **keras**, **torch**" in tied and "Compared 0 run(s): none." in tied
