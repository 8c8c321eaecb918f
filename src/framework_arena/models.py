"""The framework-neutral architecture: described once, built three times.

A :class:`ModelSpec` is a list of layers with their shapes already inferred. Every trainer
builds exactly these layers and loads exactly the initial weights from :func:`init_weights`,
so the three frameworks start from the same function, not just the same scheme.

``mlp``, ``cnn`` and ``lstm`` are made from their sizes; ``custom``, ``resnet`` and
``transformer`` from a layer list in ``model.layers`` (``layerlist.py``). Weights are given in
the Keras layout (``layers.py`` lists them per kind), which each trainer transposes where its
framework differs (PyTorch stores Dense kernels as ``(out, in)``, convolutions as ``(out, in, kh, kw)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from framework_arena import layerlist
from framework_arena.layers import (  # the layer kinds, re-exported for the trainers
    GRU,
    LSTM,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    Layer,
    LayerError,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    PositionalEmbedding,
    Reshape,
    Residual,
    out_shape,
    shapes_through,
    trainable,
    weight_shapes,
)
from framework_arena.names import INITIALIZERS, LAYER_LIST_MODELS, MODEL_KINDS

__all__ = [
    "GRU", "LSTM", "Activation", "AvgPool2D", "BatchNorm", "Conv2D", "Dense", "Dropout", "Embedding", "Flatten", "GlobalAvgPool",
    "Layer", "LayerError", "LayerNorm", "MaxPool2D", "ModelSpec", "MultiHeadAttention", "PositionalEmbedding", "Reshape", "Residual",
    "build_spec", "count_params", "init_weights", "out_shape", "shapes_through", "trainable", "weight_shapes",
]  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """Layers with the input shape of each, ending in ``num_classes`` logits."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    layers: tuple[Layer, ...]
    shapes: tuple[tuple[int, ...], ...]  # shapes[i] is the input shape of layers[i], no batch
    init: str

    @property
    def output_shape(self) -> tuple[int, ...]:
        return out_shape(self.layers[-1], self.shapes[-1])


def _preset_layers(model_cfg: Mapping[str, Any], shape: tuple[int, ...]) -> list[Layer]:
    """The layers of ``mlp``, ``cnn`` and ``lstm``, from their sizes."""
    kind = model_cfg["name"]
    act = model_cfg.get("activation", "relu")
    dropout = float(model_cfg.get("dropout", 0.0))
    layers: list[Layer] = []
    if kind == "mlp":
        layers.append(Flatten())
        for units in model_cfg["hidden"]:
            layers.append(Dense(int(units), act))
            if dropout > 0:
                layers.append(Dropout(dropout))
    elif kind == "cnn":
        if len(shape) != 3:
            raise ValueError(f"model=cnn expects image data of shape (height, width, channels). Received: input_shape={shape}")
        for filters in model_cfg["filters"]:
            layers.append(Conv2D(int(filters), int(model_cfg["kernel_size"]), act))
            layers.append(MaxPool2D(int(model_cfg["pool_size"])))
        layers.append(Flatten())
        for units in model_cfg["hidden"]:
            layers.append(Dense(int(units), act))
            if dropout > 0:
                layers.append(Dropout(dropout))
    elif kind == "lstm":
        if len(shape) == 3:  # images are read row by row: height steps of width*channels features
            layers.append(Reshape((shape[0], shape[1] * shape[2])))
        elif len(shape) != 2:
            raise ValueError(f"model=lstm expects sequences (steps, features) or images (height, width, channels). Received: input_shape={shape}")
        units_list = [int(u) for u in model_cfg["units"]]
        for i, units in enumerate(units_list):
            layers.append(LSTM(units, return_sequences=i < len(units_list) - 1))
        if dropout > 0:
            layers.append(Dropout(dropout))
    else:
        raise ValueError(f"Expected model.name in {MODEL_KINDS}. Received: model.name={kind!r}")
    return layers


def build_spec(model_cfg: Mapping[str, Any], input_shape: Sequence[int], num_classes: int, vocab_size: int | None = None) -> ModelSpec:
    """Turns a ``model`` config group into a :class:`ModelSpec` for data of ``input_shape``.

    Args:
        model_cfg: the resolved ``model`` config (``name``, sizes, ``activation``, ``dropout``...;
            ``layers`` for ``custom``, ``resnet`` and ``transformer``: see ``layerlist.py``).
        input_shape: one sample's shape without the batch axis: ``(H, W, C)``, ``(T, F)`` or tokens ``(T,)``.
        num_classes: number of output logits, added as the last Dense layer.
        vocab_size: the data's vocabulary when its samples are token ids (an ``embedding``'s default input_dim).

    Returns:
        The spec; raises ``ValueError`` (a :class:`LayerError` for a layer list, naming the layer)
        when the data's shape cannot feed this model.
    """
    kind = model_cfg["name"]
    shape = tuple(int(d) for d in input_shape)
    if kind in LAYER_LIST_MODELS:
        layers, shapes, out = layerlist.resolve(model_cfg.get("layers") or [], shape, vocab_size)
        layers.append(Dense(int(num_classes), None))
        shapes.append(out)
        return ModelSpec(kind, shape, int(num_classes), tuple(layers), tuple(shapes), model_cfg.get("init", "glorot_uniform"))
    layers = _preset_layers(model_cfg, shape)
    layers.append(Dense(int(num_classes), None))
    shapes = []
    current = shape
    for layer in layers:
        shapes.append(current)
        try:
            current = out_shape(layer, current)
        except LayerError:
            current = (0,)
        if min(current) < 1:
            raise ValueError(
                f"Expected model={kind} to fit the input shape {shape}: it shrinks the input to nothing "
                f"at layer {layer}; use fewer pooling layers or a smaller pool_size"
            )
    return ModelSpec(kind, shape, int(num_classes), tuple(layers), tuple(shapes), model_cfg.get("init", "glorot_uniform"))


def _layer_params(layer: Layer, shape: tuple[int, ...]) -> int:
    if isinstance(layer, Residual):
        inner = sum(_layer_params(sub, s) for sub, s in zip(layer.body, shapes_through(layer.body, shape)))
        return inner + (_layer_params(layer.projection, shape) if layer.projection else 0)
    return sum(math.prod(s) for s in weight_shapes(layer, shape)[: trainable(layer)])


def count_params(spec: ModelSpec) -> int:
    """Trainable parameters of the spec: what every framework's count must equal."""
    return sum(_layer_params(layer, shape) for layer, shape in zip(spec.layers, spec.shapes))


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _kernel(rng: np.random.Generator, shape: tuple[int, ...], scheme: str) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    if scheme == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    elif scheme == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
    elif scheme == "lecun_uniform":
        limit = math.sqrt(3.0 / fan_in)
    else:
        raise ValueError(f"Expected model.init in {INITIALIZERS}. Received: model.init={scheme!r}")
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # Same construction as Keras' Orthogonal initializer: QR of a normal matrix, sign-corrected.
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q[:rows, :cols].astype(np.float32)


def _layer_weights(rng: np.random.Generator, layer: Layer, shape: tuple[int, ...], init: str) -> list[Any]:
    shapes = weight_shapes(layer, shape)
    zeros = lambda s: np.zeros(s, np.float32)  # noqa: E731
    ones = lambda s: np.ones(s, np.float32)  # noqa: E731
    if isinstance(layer, Residual):
        body = [_layer_weights(rng, sub, s, init) for sub, s in zip(layer.body, shapes_through(layer.body, shape))]
        return [*body, _layer_weights(rng, layer.projection, shape, init) if layer.projection else []]
    if isinstance(layer, LSTM):
        bias = zeros(shapes[2])
        bias[layer.units : 2 * layer.units] = 1.0
        return [_kernel(rng, shapes[0], init), _orthogonal(rng, shapes[1]), bias]
    if isinstance(layer, GRU):
        return [_kernel(rng, shapes[0], init), _orthogonal(rng, shapes[1]), zeros(shapes[2])]
    if isinstance(layer, BatchNorm):
        return [ones(shapes[0]), zeros(shapes[1]), zeros(shapes[2]), ones(shapes[3])]
    if isinstance(layer, LayerNorm):
        return [ones(shapes[0]), zeros(shapes[1])]
    if isinstance(layer, (Embedding, PositionalEmbedding)):
        return [rng.uniform(-0.05, 0.05, size=shapes[0]).astype(np.float32)]  # Keras' Embedding default
    if isinstance(layer, MultiHeadAttention):
        d, h, k = shapes[0]
        # Fans of the (dim, heads * key_dim) matrices the kernels are, as Keras' EinsumDense sees them.
        out = []
        for _ in range(3):
            out += [_kernel(rng, (d, h * k), init).reshape(d, h, k), zeros((h, k))]
        return [*out, _kernel(rng, (h * k, d), init).reshape(h, k, d), zeros((d,))]
    if shapes:
        return [_kernel(rng, shapes[0], init), zeros(shapes[1])]
    return []


def init_weights(spec: ModelSpec, seed: int) -> list[list[Any]]:
    """Initial weights for every layer of ``spec`` (an empty list for weightless layers).

    Kernels follow ``spec.init``; recurrent kernels are orthogonal; biases are zero except the
    LSTM forget gate, which starts at one (Keras' ``unit_forget_bias``); normalization scales
    start at one, running variances at one; embeddings uniform in +-0.05 (Keras' default). A
    residual's entry is a list: each body layer's weights, then the projection's.
    """
    rng = np.random.default_rng([seed, 7919])  # its own stream: data order does not shift it
    return [_layer_weights(rng, layer, shape, spec.init) for layer, shape in zip(spec.layers, spec.shapes)]
