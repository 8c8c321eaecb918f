"""One conformance suite for every framework: same parameters, same initial function."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORKS, framework_id

MODELS = {
    "mlp": {"name": "mlp", "hidden": [128, 64], "activation": "relu", "dropout": 0.1, "init": "glorot_uniform"},
    "mlp-gelu": {"name": "mlp", "hidden": [32], "activation": "gelu", "dropout": 0.0, "init": "he_uniform"},
    "mlp-tanh": {"name": "mlp", "hidden": [32, 16], "activation": "tanh", "dropout": 0.0, "init": "lecun_uniform"},
    "cnn": {
        "name": "cnn",
        "filters": [16, 32],
        "kernel_size": 3,
        "pool_size": 2,
        "hidden": [64],
        "activation": "relu",
        "dropout": 0.1,
        "init": "glorot_uniform",
    },
    "cnn-k5": {
        "name": "cnn",
        "filters": [8],
        "kernel_size": 5,
        "pool_size": 2,
        "hidden": [],
        "activation": "sigmoid",
        "dropout": 0.0,
        "init": "glorot_uniform",
    },
    "lstm": {"name": "lstm", "units": [64], "dropout": 0.0, "init": "glorot_uniform"},
    "lstm-2": {"name": "lstm", "units": [32, 16], "dropout": 0.2, "init": "glorot_uniform"},
}


@pytest.fixture(scope="module", params=FRAMEWORKS, ids=framework_id)
def probed(request: pytest.FixtureRequest) -> dict[str, dict[str, float]]:
    """Every model of MODELS built by one framework, in one fresh process."""
    framework, backend = request.param
    probe = Path(__file__).with_name("probe_trainer.py")
    proc = subprocess.run(
        [sys.executable, str(probe), framework, backend or "-", json.dumps(MODELS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_matches_the_numpy_reference(probed: dict[str, dict[str, float]], model: str) -> None:
    out = probed[model]
    assert out["num_params"] == out["spec_params"]
    assert out["max_abs_diff"] < 1e-4, out
