"""The layer vocabulary of a model spec: one frozen dataclass per kind, its output shape and its weights.

Shapes are one sample's, without the batch axis: images ``(height, width, channels)``, sequences
``(steps, features)``, token sequences ``(steps,)``. Weights are in the Keras layout, which each
trainer transposes where its framework differs:

- Dense: ``kernel (in, units)``, ``bias (units,)``; Conv2D: ``kernel (kh, kw, in, filters)``, ``bias``
- LSTM: ``kernel (features, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``, gates input, forget,
  cell, output (PyTorch and Keras agree on it).
- GRU: ``kernel (features, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (2, 3u)`` (input bias, then
  recurrent bias), gates update z, reset r, candidate h (Keras' order; PyTorch's is r, z, n and its
  trainer reorders). The reset gate multiplies the recurrent projection *after* its matmul, bias
  included: Keras' ``reset_after=True``, the only form PyTorch's ``nn.GRU`` has.
- BatchNormalization: ``gamma``, ``beta`` (trainable), ``moving_mean``, ``moving_variance``.
  ``momentum`` is the weight the running statistic *keeps* (Keras' convention; PyTorch's momentum
  is ``1 - momentum``), and the running variance is updated with the *biased* batch variance, as
  Keras and ``tf.nn.moments`` do (PyTorch's own module uses the unbiased one: its trainer says so).
- LayerNormalization: ``gamma``, ``beta`` over the last axis.
- Embedding: ``embeddings (input_dim, output_dim)``; PositionalEmbedding: ``embeddings (steps, dim)``.
- MultiHeadAttention (self-attention): ``query/key/value kernel (dim, heads, key_dim)`` with ``bias
  (heads, key_dim)`` each, then ``output kernel (heads, key_dim, dim)``, ``bias (dim,)``.
- Residual: the weights of each body layer in turn, then the projection's (empty without one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

Shape = tuple[int, ...]


class LayerError(ValueError):
    """A layer that cannot take the shape it receives, or a malformed layer in ``model.layers``."""


@dataclass(frozen=True)
class Reshape:
    target_shape: Shape


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str | None = None  # None: linear (the logits layer)


@dataclass(frozen=True)
class Conv2D:
    filters: int
    kernel_size: int
    activation: str | None = None
    strides: int = 1
    padding: str = "same"  # "same" pads as TensorFlow does: the odd pad goes after


@dataclass(frozen=True)
class MaxPool2D:
    pool_size: int
    strides: int | None = None  # None: pool_size; padding is always "valid"


@dataclass(frozen=True)
class AvgPool2D:
    pool_size: int
    strides: int | None = None


@dataclass(frozen=True)
class GlobalAvgPool:
    pass  # mean over the spatial axes of an image, or over the steps of a sequence


@dataclass(frozen=True)
class Dropout:
    rate: float


@dataclass(frozen=True)
class Activation:
    name: str


@dataclass(frozen=True)
class BatchNorm:
    momentum: float = 0.99  # weight kept by the running statistics (Keras' convention)
    epsilon: float = 1e-3


@dataclass(frozen=True)
class LayerNorm:
    epsilon: float = 1e-5


@dataclass(frozen=True)
class Embedding:
    input_dim: int
    output_dim: int


@dataclass(frozen=True)
class PositionalEmbedding:
    pass  # a learned vector per step, added to the input


@dataclass(frozen=True)
class LSTM:
    units: int
    return_sequences: bool


@dataclass(frozen=True)
class GRU:
    units: int
    return_sequences: bool


@dataclass(frozen=True)
class MultiHeadAttention:
    num_heads: int
    key_dim: int
    causal: bool = False


@dataclass(frozen=True)
class Residual:
    """``y = x + f(x)``, or ``projection(x) + f(x)`` when ``f`` changes the shape."""

    body: tuple[Layer, ...]
    projection: Dense | Conv2D | None = None


Layer = Union[
    Reshape, Flatten, Dense, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool, Dropout, Activation, BatchNorm, LayerNorm,
    Embedding, PositionalEmbedding, LSTM, GRU, MultiHeadAttention, Residual,
]  # fmt: skip


def _conv_out(size: int, kernel: int, stride: int, padding: str) -> int:
    return math.ceil(size / stride) if padding == "same" else (size - kernel) // stride + 1


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), the odd pad after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _need(ok: bool, needed: str) -> None:
    if not ok:
        raise LayerError(needed)


def out_shape(layer: Layer, shape: Shape) -> Shape:
    """The shape ``layer`` makes of ``shape``; :class:`LayerError` saying what it needed otherwise."""
    rank = len(shape)
    if isinstance(layer, Reshape):
        _need(math.prod(layer.target_shape) == math.prod(shape), f"target_shape={list(layer.target_shape)} to hold the same {math.prod(shape)} values")
        return layer.target_shape
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Dense):
        return (*shape[:-1], layer.units)
    if isinstance(layer, Conv2D):
        _need(rank == 3, "an image input (height, width, channels)")
        h, w = (_conv_out(d, layer.kernel_size, layer.strides, layer.padding) for d in shape[:2])
        _need(h >= 1 and w >= 1, f"an image of at least {layer.kernel_size}x{layer.kernel_size} for padding='valid'")
        return (h, w, layer.filters)
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        _need(rank == 3, "an image input (height, width, channels)")
        s = layer.strides or layer.pool_size
        h, w = (_conv_out(d, layer.pool_size, s, "valid") for d in shape[:2])
        _need(h >= 1 and w >= 1, f"an image of at least {layer.pool_size}x{layer.pool_size}")
        return (h, w, shape[2])
    if isinstance(layer, GlobalAvgPool):
        _need(rank in (2, 3), "an image (height, width, channels) or a sequence (steps, features)")
        return (shape[-1],)
    if isinstance(layer, Embedding):
        _need(rank == 1, "token ids (steps,): data=sequences")
        return (shape[0], layer.output_dim)
    if isinstance(layer, PositionalEmbedding):
        _need(rank == 2, "a sequence (steps, features), e.g. after an embedding")
        return shape
    if isinstance(layer, (LSTM, GRU)):
        _need(rank == 2, "a sequence (steps, features)")
        return (shape[0], layer.units) if layer.return_sequences else (layer.units,)
    if isinstance(layer, MultiHeadAttention):
        _need(rank == 2, "a sequence (steps, features)")
        return shape
    if isinstance(layer, Residual):
        return shape  # the sum has the input's shape, or the projection's (checked when built)
    if isinstance(layer, (Dropout, Activation, BatchNorm, LayerNorm)):
        _need(rank >= 1, "an input with a feature axis")
        return shape
    raise TypeError(f"Unknown layer {layer!r}")


def weight_shapes(layer: Layer, shape: Shape) -> list[Shape]:
    """Shapes of the layer's weights in the Keras layout (module docstring); residuals: see :func:`residual_shapes`."""
    if isinstance(layer, Dense):
        return [(shape[-1], layer.units), (layer.units,)]
    if isinstance(layer, Conv2D):
        k = layer.kernel_size
        return [(k, k, shape[-1], layer.filters), (layer.filters,)]
    if isinstance(layer, LSTM):
        u = layer.units
        return [(shape[-1], 4 * u), (u, 4 * u), (4 * u,)]
    if isinstance(layer, GRU):
        u = layer.units
        return [(shape[-1], 3 * u), (u, 3 * u), (2, 3 * u)]
    if isinstance(layer, BatchNorm):
        return [(shape[-1],)] * 4
    if isinstance(layer, LayerNorm):
        return [(shape[-1],)] * 2
    if isinstance(layer, Embedding):
        return [(layer.input_dim, layer.output_dim)]
    if isinstance(layer, PositionalEmbedding):
        return [shape]
    if isinstance(layer, MultiHeadAttention):
        d, h, k = shape[-1], layer.num_heads, layer.key_dim
        return [(d, h, k), (h, k)] * 3 + [(h, k, d), (d,)]
    return []


def trainable(layer: Layer) -> int:
    """How many of :func:`weight_shapes` are trained (the leading ones): BatchNorm's moving statistics are not."""
    return 2 if isinstance(layer, BatchNorm) else len(weight_shapes(layer, (1, 1, 1)))


def shapes_through(layers: tuple[Layer, ...], shape: Shape) -> list[Shape]:
    """The input shape of each layer of an already checked list (a residual's body, say)."""
    shapes = []
    for layer in layers:
        shapes.append(shape)
        shape = out_shape(layer, shape)
    return shapes
