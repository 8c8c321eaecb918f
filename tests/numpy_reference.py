"""A plain numpy forward pass of a ModelSpec: the yardstick every framework's build must match.

Float64 throughout. ``forward(..., training=True)`` uses batch statistics in BatchNormalization
and returns the weights with the running statistics updated as the spec defines them (the weight
``momentum`` kept, the biased batch variance), so a framework's inference after one training-mode
pass can be checked too. Dropout is the identity (the conformance models use rate 0 in training).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from framework_arena import layers as L
from framework_arena import models as m

_ACT = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def _act(name: str | None, z: np.ndarray) -> np.ndarray:
    if name == "gelu":
        from scipy.special import erf

        return 0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))
    return _ACT[name](z)


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, padding: str) -> np.ndarray:
    k = kernel.shape[0]
    n, h, w, _ = x.shape
    if padding == "same":
        (top, bottom), (left, right) = L.same_pads(h, k, stride), L.same_pads(w, k, stride)  # TF's: the odd pad after
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((n, oh, ow, kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride, :] @ kernel[i, j]
    return out + bias


def _pool(x: np.ndarray, size: int, stride: int, reduce: Any) -> np.ndarray:
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    windows = np.stack([x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride] for i in range(size) for j in range(size)])
    return reduce(windows, axis=0)


def _lstm(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray, return_sequences: bool) -> np.ndarray:
    n, t, _ = x.shape
    u = recurrent.shape[0]
    h = np.zeros((n, u))
    c = np.zeros((n, u))
    sig = _ACT["sigmoid"]
    outs = []
    for step in range(t):
        z = x[:, step] @ kernel + h @ recurrent + bias
        i, f, g, o = sig(z[:, :u]), sig(z[:, u : 2 * u]), np.tanh(z[:, 2 * u : 3 * u]), sig(z[:, 3 * u :])
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs, axis=1) if return_sequences else h


def _gru(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray, return_sequences: bool) -> np.ndarray:
    """Keras' GRU with reset_after=True (PyTorch's nn.GRU): gates z, r, h; r scales the recurrent projection and its bias."""
    n, t, _ = x.shape
    u = recurrent.shape[0]
    h = np.zeros((n, u))
    sig = _ACT["sigmoid"]
    outs = []
    for step in range(t):
        xz = x[:, step] @ kernel + bias[0]
        hz = h @ recurrent + bias[1]
        z = sig(xz[:, :u] + hz[:, :u])
        r = sig(xz[:, u : 2 * u] + hz[:, u : 2 * u])
        cand = np.tanh(xz[:, 2 * u :] + r * hz[:, 2 * u :])
        h = z * h + (1.0 - z) * cand
        outs.append(h)
    return np.stack(outs, axis=1) if return_sequences else h


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention(x: np.ndarray, w: list[np.ndarray], causal: bool) -> np.ndarray:
    qk, qb, kk, kb, vk, vb, ok, ob = w
    key_dim = qk.shape[-1]
    q = np.einsum("ntd,dhk->nthk", x, qk) + qb
    k = np.einsum("ntd,dhk->nthk", x, kk) + kb
    v = np.einsum("ntd,dhk->nthk", x, vk) + vb
    scores = np.einsum("nqhk,nthk->nhqt", q, k) / np.sqrt(key_dim)
    if causal:
        t = x.shape[1]
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    o = np.einsum("nhqt,nthk->nqhk", _softmax(scores, -1), v)
    return np.einsum("nqhk,hkd->nqd", o, ok) + ob


def _layer(layer: L.Layer, w: list[Any], z: np.ndarray, training: bool) -> np.ndarray:
    if isinstance(layer, L.Reshape):
        return z.reshape(len(z), *layer.target_shape)
    if isinstance(layer, L.Flatten):
        return z.reshape(len(z), -1)
    if isinstance(layer, L.Dense):
        return _act(layer.activation, z @ w[0] + w[1])
    if isinstance(layer, L.Conv2D):
        return _act(layer.activation, _conv(z, w[0], w[1], layer.strides, layer.padding))
    if isinstance(layer, (L.MaxPool2D, L.AvgPool2D)):
        return _pool(z, layer.pool_size, layer.strides or layer.pool_size, np.max if isinstance(layer, L.MaxPool2D) else np.mean)
    if isinstance(layer, L.GlobalAvgPool):
        return z.mean(axis=tuple(range(1, z.ndim - 1)))
    if isinstance(layer, L.Dropout):
        return z
    if isinstance(layer, L.Activation):
        return _act(layer.name, z)
    if isinstance(layer, L.BatchNorm):
        gamma, beta, mean, var = w
        if training:
            axes = tuple(range(z.ndim - 1))
            batch_mean, batch_var = z.mean(axis=axes), z.var(axis=axes)  # biased, as the spec defines
            w[2] = layer.momentum * mean + (1 - layer.momentum) * batch_mean
            w[3] = layer.momentum * var + (1 - layer.momentum) * batch_var
            mean, var = batch_mean, batch_var
        return (z - mean) / np.sqrt(var + layer.epsilon) * gamma + beta
    if isinstance(layer, L.LayerNorm):
        mean, var = z.mean(axis=-1, keepdims=True), z.var(axis=-1, keepdims=True)
        return (z - mean) / np.sqrt(var + layer.epsilon) * w[0] + w[1]
    if isinstance(layer, L.Embedding):
        return w[0][z.astype(np.int64)].astype(np.float64)
    if isinstance(layer, L.PositionalEmbedding):
        return z + w[0]
    if isinstance(layer, L.LSTM):
        return _lstm(z, w[0], w[1], w[2], layer.return_sequences)
    if isinstance(layer, L.GRU):
        return _gru(z, w[0], w[1], w[2], layer.return_sequences)
    if isinstance(layer, L.MultiHeadAttention):
        return attention(z, w, layer.causal)
    if isinstance(layer, L.Residual):
        y = _layers(layer.body, w[:-1], z, training)
        shortcut = _layer(layer.projection, w[-1], z, training) if layer.projection else z
        return shortcut + y
    raise TypeError(f"Unknown layer {layer!r}")


def _layers(layers: tuple[L.Layer, ...], weights: list[Any], z: np.ndarray, training: bool) -> np.ndarray:
    for layer, w in zip(layers, weights):
        z = _layer(layer, w, z, training)
    return z


def forward(spec: m.ModelSpec, weights: list[list[Any]], x: np.ndarray, training: bool = False) -> Any:
    """Logits of ``spec`` with ``weights`` (Keras layout); in training mode ``(logits, updated weights)``."""
    if training:
        weights = copy.deepcopy(weights)
        return _layers(spec.layers, weights, x.astype(np.float64), True), weights
    return _layers(spec.layers, weights, x.astype(np.float64), False)
