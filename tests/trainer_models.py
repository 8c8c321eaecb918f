"""The stock models of the conformance suite (tests/test_conformance.py): every architecture and
activation the trainers build from a model config, probed by tests/probe_trainer.py."""

from __future__ import annotations

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
