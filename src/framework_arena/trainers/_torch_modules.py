"""The spec as ``torch.nn`` modules holding the shared initial weights (Keras layout, transposed here).

The spec is NHWC; torch's convolutions, pools and BatchNorm2d want NCHW. The builder tracks the
layout: it permutes to NCHW before the image layers and back before a layer that reads the last
axis (Flatten orders features as Keras and the reference do), and a residual over an image works
in NCHW throughout, so a block adds no permutes of its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from framework_arena import layers as L
from framework_arena import names
from framework_arena.trainers.harness import NameMap

ACTIVATIONS = NameMap(
    "model.activation",
    names.ACTIVATIONS,
    {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": lambda: nn.GELU(approximate="none")},
)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class _Permute(nn.Module):
    """Moves between the spec's NHWC layout and the NCHW layout torch convolutions want."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class _Reshape(nn.Module):
    def __init__(self, target_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.target_shape = target_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.target_shape)


class _Recurrent(nn.Module):
    """One Keras-style LSTM or GRU layer: the whole sequence or only the last step's output."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, return_sequences: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out if self.return_sequences else out[:, -1]


class _SequenceMean(nn.Module):
    """Global average pooling over the steps of a (N, T, F) sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class _BatchNorm(nn.Module):
    """``nn.BatchNorm1d``/``2d`` with the spec's running-statistics rule.

    torch's own module updates the running variance with the *unbiased* batch variance; the spec
    (and Keras, and tf.nn.moments) uses the biased one. So in training mode the batch statistics
    normalize through ``F.batch_norm`` without running buffers, and the buffers are then updated
    with the biased variance; inference mode is the module's own forward. ``rank`` 2 inputs are
    (N, F); 3 are sequences (N, T, F), normalized over N and T; 4 are NCHW images.
    """

    def __init__(self, features: int, rank: int, layer: L.BatchNorm) -> None:
        super().__init__()
        cls = nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d
        # torch's momentum is the weight of the *new* statistic: 1 - the spec's.
        self.bn = cls(features, eps=layer.epsilon, momentum=1.0 - layer.momentum)
        self.sequence = rank == 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequence:
            x = x.transpose(1, 2)  # BatchNorm1d wants (N, C, L)
        bn = self.bn
        if self.training:
            dims = [0, *range(2, x.dim())]
            with torch.no_grad():
                mean, var = x.mean(dims), x.var(dims, unbiased=False)
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var, bn.momentum)
            out = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        else:
            out = bn(x)
        return out.transpose(1, 2) if self.sequence else out


class _Embedding(nn.Module):
    """``nn.Embedding`` on token ids that arrive as float32, like every batch the trainer feeds."""

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x.long())


class _PositionalEmbedding(nn.Module):
    """A learned vector per step (an ``nn.Embedding`` over the positions), added to the input."""

    def __init__(self, steps: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(steps, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embedding.weight.to(x.dtype)


class _SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` on one sequence (query = key = value), optionally causal."""

    def __init__(self, dim: int, layer: L.MultiHeadAttention, steps: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, layer.num_heads, batch_first=True)
        self.causal = layer.causal
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(steps) if layer.causal else None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(x, x, x, need_weights=False, attn_mask=self.mask, is_causal=self.causal)
        return out


class _Residual(nn.Module):
    def __init__(self, body: nn.Sequential, projection: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.projection = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.projection is None else self.projection(x)
        return shortcut + self.body(x)


def _load(param: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(_t(value))


def _gates(a: np.ndarray, units: int) -> np.ndarray:
    """Keras' GRU gate order (z, r, h) along the last axis to torch's (r, z, n)."""
    z, r, h = a[..., :units], a[..., units : 2 * units], a[..., 2 * units :]
    return np.concatenate([r, z, h], axis=-1)


def _conv(layer: L.Conv2D, shape: L.Shape, w: Sequence[np.ndarray]) -> list[nn.Module]:
    k, s = layer.kernel_size, layer.strides
    mods: list[nn.Module] = []
    padding: Any = 0
    if layer.padding == "same":
        (top, bottom), (left, right) = L.same_pads(shape[0], k, s), L.same_pads(shape[1], k, s)
        if (top, left) == (bottom, right):
            padding = (top, left)
        else:  # TensorFlow puts the odd pad after: torch's Conv2d pads symmetrically, ZeroPad2d does it exactly
            mods.append(nn.ZeroPad2d((left, right, top, bottom)))
    conv = nn.Conv2d(shape[-1], layer.filters, k, stride=s, padding=padding)
    _load(conv.weight, w[0].transpose(3, 2, 0, 1))
    _load(conv.bias, w[1])
    mods.append(conv)
    if layer.activation is not None:
        mods.append(ACTIVATIONS[layer.activation]())
    return mods


def _module(layer: L.Layer, shape: L.Shape, w: Sequence[Any]) -> list[nn.Module]:
    """The modules of one layer, in the layout the builder chose for it."""
    if isinstance(layer, L.Reshape):
        return [_Reshape(layer.target_shape)]
    if isinstance(layer, L.Flatten):
        return [nn.Flatten()]
    if isinstance(layer, L.Dropout):
        return [nn.Dropout(layer.rate)]
    if isinstance(layer, L.Activation):
        return [ACTIVATIONS[layer.name]()]
    if isinstance(layer, (L.MaxPool2D, L.AvgPool2D)):
        cls = nn.MaxPool2d if isinstance(layer, L.MaxPool2D) else nn.AvgPool2d
        return [cls(layer.pool_size, layer.strides or layer.pool_size)]  # "valid": floors like Keras
    if isinstance(layer, L.GlobalAvgPool):
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if len(shape) == 3 else [_SequenceMean()]
    if isinstance(layer, L.Dense):
        mod = nn.Linear(shape[-1], layer.units)
        _load(mod.weight, w[0].T)
        _load(mod.bias, w[1])
        return [mod] if layer.activation is None else [mod, ACTIVATIONS[layer.activation]()]
    if isinstance(layer, L.Conv2D):
        return _conv(layer, shape, w)
    if isinstance(layer, L.BatchNorm):
        bn = _BatchNorm(shape[-1], len(shape) + 1, layer)
        for param, value in zip((bn.bn.weight, bn.bn.bias, bn.bn.running_mean, bn.bn.running_var), w):
            _load(param, value)
        return [bn]
    if isinstance(layer, L.LayerNorm):
        ln = nn.LayerNorm(shape[-1], eps=layer.epsilon)
        _load(ln.weight, w[0])
        _load(ln.bias, w[1])
        return [ln]
    if isinstance(layer, L.Embedding):
        emb = _Embedding(layer.input_dim, layer.output_dim)
        _load(emb.embedding.weight, w[0])
        return [emb]
    if isinstance(layer, L.PositionalEmbedding):
        pos = _PositionalEmbedding(*shape)
        _load(pos.embedding.weight, w[0])
        return [pos]
    if isinstance(layer, L.LSTM):
        lstm = nn.LSTM(shape[-1], layer.units, batch_first=True)
        _load(lstm.weight_ih_l0, w[0].T)
        _load(lstm.weight_hh_l0, w[1].T)
        _load(lstm.bias_ih_l0, w[2])
        _load(lstm.bias_hh_l0, np.zeros_like(w[2]))
        # Keras has a single LSTM bias: freeze torch's second one at zero so the counts agree.
        lstm.bias_hh_l0.requires_grad_(False)
        return [_Recurrent(lstm, layer.return_sequences)]
    if isinstance(layer, L.GRU):
        # Both biases are real here: Keras' reset_after GRU has an input and a recurrent bias too.
        gru = nn.GRU(shape[-1], layer.units, batch_first=True)
        u = layer.units
        _load(gru.weight_ih_l0, _gates(w[0], u).T)
        _load(gru.weight_hh_l0, _gates(w[1], u).T)
        _load(gru.bias_ih_l0, _gates(w[2][0], u))
        _load(gru.bias_hh_l0, _gates(w[2][1], u))
        return [_Recurrent(gru, layer.return_sequences)]
    if isinstance(layer, L.MultiHeadAttention):
        d = shape[-1]
        att = _SelfAttention(d, layer, shape[0])
        qk, qb, kk, kb, vk, vb, ok, ob = w
        mha = att.attention
        _load(mha.in_proj_weight, np.concatenate([k.reshape(d, -1).T for k in (qk, kk, vk)]))
        _load(mha.in_proj_bias, np.concatenate([b.reshape(-1) for b in (qb, kb, vb)]))
        _load(mha.out_proj.weight, ok.reshape(-1, d).T)
        _load(mha.out_proj.bias, ob)
        return [att]
    if isinstance(layer, L.Residual):
        image = len(shape) == 3
        body, channels_first = _sequence(layer.body, L.shapes_through(layer.body, shape), w[:-1], image)
        if image and not channels_first:
            body.append(_Permute((0, 3, 1, 2)))
        projection = nn.Sequential(*_module(layer.projection, shape, w[-1])) if layer.projection else None
        return [_Residual(nn.Sequential(*body), projection)]
    raise TypeError(f"Unknown layer {layer!r}")


def _wants_channels_first(layer: L.Layer, shape: L.Shape) -> bool | None:
    """True for the image layers torch runs in NCHW, None where the layout does not matter."""
    if isinstance(layer, (L.Dropout, L.Activation)):
        return None
    image_layer = isinstance(layer, (L.Conv2D, L.MaxPool2D, L.AvgPool2D, L.GlobalAvgPool, L.BatchNorm, L.Residual))
    return image_layer and len(shape) == 3


def _sequence(layers: Sequence[L.Layer], shapes: Sequence[L.Shape], weights: Sequence[Any], channels_first: bool) -> tuple[list[nn.Module], bool]:
    mods: list[nn.Module] = []
    for layer, shape, w in zip(layers, shapes, weights):
        wants = _wants_channels_first(layer, shape)
        if wants and not channels_first:
            mods.append(_Permute((0, 3, 1, 2)))
            channels_first = True
        elif wants is False and channels_first:
            mods.append(_Permute((0, 2, 3, 1)))
            channels_first = False
        mods.extend(_module(layer, shape, w))
        if channels_first and len(L.out_shape(layer, shape)) != 3:
            channels_first = False  # e.g. global pooling: no image, no layout left
    return mods, channels_first


def build_module(spec: Any, weights: Sequence[Sequence[Any]]) -> nn.Sequential:
    """The spec as an ``nn.Sequential`` holding ``weights`` (Keras layout, transposed here)."""
    mods, channels_first = _sequence(spec.layers, spec.shapes, weights, False)
    assert not channels_first, "the logits layer is a Dense: the builder is back in NHWC"
    return nn.Sequential(*mods)
