"""The layer-list models of the conformance suite: together they hold every layer kind.

Each entry is the data it reads and its model config (``model=custom`` layer lists, and the stock
``resnet`` and ``transformer`` as conf/model/ defines them). Dropout is 0 where a model trains, so
every framework's step is the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _from_file(path: Path) -> dict[str, Any]:
    cfg = yaml.safe_load(path.read_text())
    return {"name": cfg["name"], "init": "glorot_uniform", "layers": cfg["layers"]}


def _stock(name: str) -> dict[str, Any]:
    return _from_file(ROOT / "conf" / "model" / f"{name}.yaml")


def _custom(*layers: Any) -> dict[str, Any]:
    return {"name": "custom", "init": "glorot_uniform", "layers": list(layers)}


LAYER_MODELS: dict[str, dict[str, Any]] = {
    # conv2d with stride and both paddings (an odd "same" pad), both pools, flatten, dense, dropout
    "conv-pools": {
        "data": "digits",
        "model": _custom(
            {"conv2d": {"filters": 8, "kernel_size": 3, "strides": 2}},
            "relu",
            {"conv2d": {"filters": 8, "kernel_size": 2, "padding": "valid"}},
            {"avg_pool2d": {"pool_size": 2, "strides": 1}},
            {"max_pool2d": {"pool_size": 2}},
            "flatten",
            {"dense": {"units": 16, "activation": "tanh"}},
            {"dropout": {"rate": 0.0}},
        ),
    },
    # batch norm on vectors and on sequences, layer norm, activations as layers, reshape, GRU, global pooling of a sequence
    "norms-gru": {
        "data": "digits",
        "model": _custom(
            "flatten",
            {"dense": {"units": 32}},
            {"batch_norm": {"momentum": 0.8, "epsilon": 0.001}},
            "gelu",
            {"layer_norm": {"epsilon": 1.0e-5}},
            "sigmoid",
            {"reshape": {"target_shape": [4, 8]}},
            {"batch_norm": {"momentum": 0.5, "epsilon": 0.01}},
            {"gru": {"units": 12, "return_sequences": True}},
            "tanh",
            {"gru": {"units": 6, "return_sequences": True}},
            "global_avg_pool",
        ),
    },
    # causal attention on embeddings with learned positions
    "causal-attention": {
        "data": "sequences",
        "model": _custom(
            {"embedding": {"output_dim": 16}},
            "positional_embedding",
            {"multi_head_attention": {"num_heads": 4, "key_dim": 4, "causal": True}},
            "global_avg_pool",
        ),
    },
    # a residual whose body changes the last axis: a dense projection; an LSTM after it
    "residual-dense": {
        "data": "sequences",
        "model": _custom(
            {"embedding": {"output_dim": 8}},
            {"residual": {"projection": True, "layers": [{"dense": {"units": 12, "activation": "relu"}}]}},
            {"lstm": {"units": 8}},
        ),
    },
    "resnet": {"data": "digits", "model": _stock("resnet")},
    # the layer list examples/ ships: built, checked and stepped in every variant like the stock models
    "example-cnn-bn": {"data": "digits", "model": _from_file(ROOT / "examples" / "layers" / "model" / "cnn_bn.yaml")},
    "transformer": {"data": "sequences", "model": _stock("transformer")},
}

#: The models built of attention, compared within 1e-4 rather than 1e-5 (softmax of float32 sums).
ATTENTION = ("causal-attention", "transformer")
