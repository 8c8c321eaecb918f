"""The framework-neutral architecture: described once, built three times.

A :class:`ModelSpec` is a list of layers with their shapes already inferred. Every trainer
builds exactly these layers and loads exactly the initial weights from :func:`init_weights`,
so the three frameworks start from the same function, not just the same scheme.

Weights are given in the Keras layout, which each trainer transposes where its framework
differs (PyTorch stores Dense kernels as ``(out, in)`` and convolutions as ``(out, in, kh, kw)``):

- Dense: ``kernel (in, units)``, ``bias (units,)``
- Conv2D: ``kernel (kh, kw, in_channels, filters)``, ``bias (filters,)``
- LSTM: ``kernel (features, 4*units)``, ``recurrent_kernel (units, 4*units)``, ``bias (4*units,)``
  with the gates in the order input, forget, cell, output (PyTorch and Keras agree on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

import numpy as np

from framework_arena.names import INITIALIZERS, MODEL_KINDS


@dataclass(frozen=True)
class Reshape:
    target_shape: tuple[int, ...]


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str | None  # None: linear (the logits layer)


@dataclass(frozen=True)
class Conv2D:
    filters: int
    kernel_size: int
    activation: str | None  # padding is always "same", stride 1


@dataclass(frozen=True)
class MaxPool2D:
    pool_size: int


@dataclass(frozen=True)
class Dropout:
    rate: float


@dataclass(frozen=True)
class LSTM:
    units: int
    return_sequences: bool


Layer = Union[Reshape, Flatten, Dense, Conv2D, MaxPool2D, Dropout, LSTM]


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
        return _out_shape(self.layers[-1], self.shapes[-1])


def _out_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, Reshape):
        if math.prod(layer.target_shape) != math.prod(shape):
            raise ValueError(f"Cannot reshape {shape} to {layer.target_shape}.")
        return layer.target_shape
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Dense):
        return (*shape[:-1], layer.units)
    if isinstance(layer, Conv2D):
        return (shape[0], shape[1], layer.filters)
    if isinstance(layer, MaxPool2D):
        return (shape[0] // layer.pool_size, shape[1] // layer.pool_size, shape[2])
    if isinstance(layer, Dropout):
        return shape
    if isinstance(layer, LSTM):
        return (shape[0], layer.units) if layer.return_sequences else (layer.units,)
    raise TypeError(f"Unknown layer {layer!r}")


def build_spec(model_cfg: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> ModelSpec:
    """Turns a ``model`` config group into a :class:`ModelSpec` for data of ``input_shape``.

    Args:
        model_cfg: the resolved ``model`` config (``name``, sizes, ``activation``, ``dropout``...).
        input_shape: one sample's shape without the batch axis: ``(H, W, C)`` or ``(T, F)``.
        num_classes: number of output logits.

    Returns:
        The spec; raises ``ValueError`` when the data's shape cannot feed this model.
    """
    kind = model_cfg["name"]
    shape = tuple(int(d) for d in input_shape)
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
    layers.append(Dense(int(num_classes), None))

    shapes: list[tuple[int, ...]] = []
    current = shape
    for layer in layers:
        shapes.append(current)
        current = _out_shape(layer, current)
        if min(current) < 1:
            raise ValueError(
                f"Expected model={kind} to fit the input shape {shape}: it shrinks the input to nothing "
                f"at layer {layer}; use fewer pooling layers or a smaller pool_size"
            )
    return ModelSpec(kind, shape, int(num_classes), tuple(layers), tuple(shapes), model_cfg.get("init", "glorot_uniform"))


def weight_shapes(layer: Layer, in_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes of a layer's weights in the Keras layout; empty for layers without weights."""
    if isinstance(layer, Dense):
        return [(in_shape[-1], layer.units), (layer.units,)]
    if isinstance(layer, Conv2D):
        k = layer.kernel_size
        return [(k, k, in_shape[-1], layer.filters), (layer.filters,)]
    if isinstance(layer, LSTM):
        u = layer.units
        return [(in_shape[-1], 4 * u), (u, 4 * u), (4 * u,)]
    return []


def count_params(spec: ModelSpec) -> int:
    """Trainable parameters of the spec: what every framework's count must equal."""
    return sum(math.prod(s) for layer, shape in zip(spec.layers, spec.shapes) for s in weight_shapes(layer, shape))


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


def init_weights(spec: ModelSpec, seed: int) -> list[list[np.ndarray]]:
    """Initial weights for every layer of ``spec`` (an empty list for weightless layers).

    Kernels follow ``spec.init``; LSTM recurrent kernels are orthogonal; biases are zero except
    the LSTM forget gate, which starts at one (Keras' ``unit_forget_bias``).
    """
    rng = np.random.default_rng([seed, 7919])  # its own stream: data order does not shift it
    weights: list[list[np.ndarray]] = []
    for layer, shape in zip(spec.layers, spec.shapes):
        shapes = weight_shapes(layer, shape)
        if isinstance(layer, LSTM):
            u = layer.units
            bias = np.zeros(shapes[2], np.float32)
            bias[u : 2 * u] = 1.0
            weights.append([_kernel(rng, shapes[0], spec.init), _orthogonal(rng, shapes[1]), bias])
        elif shapes:
            weights.append([_kernel(rng, shapes[0], spec.init), np.zeros(shapes[1], np.float32)])
        else:
            weights.append([])
    return weights
