"""The arena's vocabulary: every name a config value may take, written once.

Imported by the config schema, the validation, the trainers and compare alike; it imports nothing,
so any module may use it without pulling in Hydra, MLflow or a framework.
"""

from __future__ import annotations

FRAMEWORKS = ("torch", "tensorflow", "keras")
KERAS_BACKENDS = ("tensorflow", "torch", "jax")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adam", "adamw", "sgd")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
INITIALIZERS = ("glorot_uniform", "he_uniform", "lecun_uniform")
MODEL_KINDS = ("mlp", "cnn", "lstm", "custom", "resnet", "transformer")
#: Models written as a layer list in ``model.layers`` (the stock ones in conf/model/).
LAYER_LIST_MODELS = ("custom", "resnet", "transformer")
TRACKING_NAMES = ("local", "none", "server")
PLATFORMS = ("auto", "none", "domino")
# Metrics a sweep can optimize, with the direction that makes sense for each.
OBJECTIVES = ("val/accuracy", "test/accuracy", "val/loss", "test/loss", "speed/samples_per_s", "speed/fit_time_s")


def label(framework: str, backend: str | None = None) -> str:
    """``torch``, ``tensorflow`` or ``keras-<backend>``: how runs, groups and reports name a variant."""
    return f"{framework}-{backend}" if framework == "keras" and backend else framework
