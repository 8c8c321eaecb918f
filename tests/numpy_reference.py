"""A plain numpy forward pass of a ModelSpec: the yardstick every framework's build must match."""

from __future__ import annotations

import numpy as np

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


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    k = kernel.shape[0]
    lo = (k - 1) // 2  # TensorFlow's "same": the extra pad goes after
    xp = np.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h, w, kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += xp[:, i : i + h, j : j + w, :] @ kernel[i, j]
    return out + bias


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


def forward(spec: m.ModelSpec, weights: list[list[np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Logits of ``spec`` with ``weights`` (Keras layout) in inference mode."""
    z = x.astype(np.float64)
    for layer, w in zip(spec.layers, weights):
        if isinstance(layer, m.Reshape):
            z = z.reshape(len(z), *layer.target_shape)
        elif isinstance(layer, m.Flatten):
            z = z.reshape(len(z), -1)
        elif isinstance(layer, m.Dense):
            z = _act(layer.activation, z @ w[0] + w[1])
        elif isinstance(layer, m.Conv2D):
            z = _act(layer.activation, _conv_same(z, w[0], w[1]))
        elif isinstance(layer, m.MaxPool2D):
            p = layer.pool_size
            n, h, wd, c = z.shape
            z = z[:, : h // p * p, : wd // p * p].reshape(n, h // p, p, wd // p, p, c).max(axis=(2, 4))
        elif isinstance(layer, m.Dropout):
            pass
        elif isinstance(layer, m.LSTM):
            z = _lstm(z, w[0], w[1], w[2], layer.return_sequences)
    return z
