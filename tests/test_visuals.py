"""The pieces behind a trial's and a sweep's visuals that need no training: the neutral layer table
and the seed groups. (The artifacts themselves are checked on real trials in test_trials.py and
on the shoot-out sweep in test_sweeps.py.)"""

from __future__ import annotations

import math

import pytest
from conftest import compose
from omegaconf import OmegaConf

from framework_arena import models
from framework_arena.layertable import layer_table, rows
from framework_arena.tracking.seeds import aggregate, groups


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm", "resnet", "transformer"])
def test_the_layer_table_counts_what_every_framework_must(model: str) -> None:
    cfg = OmegaConf.to_container(compose([f"model={model}", *(["data=sequences"] if model == "transformer" else [])]), resolve=True)
    shape, vocab = ((16,), 16) if model == "transformer" else ((8, 8, 1), None)
    spec = models.build_spec(cfg["model"], shape, 10, vocab)
    table = layer_table(spec)
    assert sum(int(r[5]) for r in rows(spec)) == models.count_params(spec)
    assert f"Trainable parameters: {models.count_params(spec):,}" in table
    assert rows(spec)[-1][1:5] == ("dense", "units=10, activation=None", str(spec.shapes[-1]), "(10,)")


def test_a_residual_with_a_projection_shows_its_own_output_shape() -> None:
    spec = models.build_spec(OmegaConf.to_container(compose(["model=resnet"]), resolve=True)["model"], (8, 8, 1), 10)
    projected = [r for r in rows(spec) if r[1] == "residual" and r[2] == "projection"]
    assert projected and projected[0][3:5] == ("(8, 8, 16)", "(4, 4, 32)")
    assert any(r[0].startswith("  layers[") for r in rows(spec))  # its body, indented under it


def test_seed_groups_keep_only_what_differs_and_bands_span_the_seeds() -> None:
    rows_ = [
        {"status": "FINISHED", "run_id": f"{f}{s}", "overrides": f"framework={f} trainer.seed={s} trainer.epochs=2"} for f in ("torch", "keras") for s in (0, 1)
    ]
    rows_ += [
        {"status": "FAILED", "run_id": "x", "overrides": "framework=jax trainer.seed=0 trainer.epochs=2"},
        {"status": "SKIPPED", "run_id": "", "overrides": ""},
    ]
    assert groups(rows_) == {"framework=torch": ["torch0", "torch1"], "framework=keras": ["keras0", "keras1"]}
    assert groups(rows_[:2]) == {"all trials": ["torch0", "torch1"]}
    curve = aggregate([{1: 0.5, 2: 0.7}, {1: 0.6, 2: math.nan}, {1: 0.4}])
    assert curve == [(1, pytest.approx(0.5), 0.4, 0.6, 3), (2, 0.7, 0.7, 0.7, 1)]
