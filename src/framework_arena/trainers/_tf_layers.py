"""The spec's layers as low-level TensorFlow: tf.Variables and tf.nn / tf.linalg ops, no Keras.

Weights keep the Keras layout, which is TensorFlow's own (no transposes). Each layer's variables
are a list, a residual's a list of its body layers' lists and its projection's, as in
``models.init_weights``; BatchNormalization's running statistics are non-trainable variables,
assigned in training mode (the weight ``momentum`` kept, the biased batch variance: the spec's rule).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from framework_arena import layers as L
from framework_arena import names
from framework_arena.trainers.harness import NameMap

_ACTIVATIONS = NameMap(
    "model.activation",
    names.ACTIVATIONS,
    {
        "relu": tf.nn.relu,
        "tanh": tf.math.tanh,
        "sigmoid": tf.math.sigmoid,
        "gelu": functools.partial(tf.nn.gelu, approximate=False),  # exact erf form, as torch's default
    },
)


def _act(name: str | None, z: tf.Tensor) -> tf.Tensor:
    return z if name is None else _ACTIVATIONS[name](z)


def variables(layers: Sequence[L.Layer], shapes: Sequence[L.Shape], weights: Sequence[Any], prefix: str = "layer") -> list[Any]:
    """tf.Variables holding ``weights``, nested as they are; only BatchNorm's statistics are not trainable."""
    out: list[Any] = []
    for i, (layer, shape, ws) in enumerate(zip(layers, shapes, weights)):
        name = f"{prefix}{i}"
        if isinstance(layer, L.Residual):
            body = variables(layer.body, L.shapes_through(layer.body, shape), ws[:-1], f"{name}_")
            projection = [tf.Variable(np.asarray(w, np.float32), name=f"{name}_projection_{j}") for j, w in enumerate(ws[-1])]
            out.append([*body, projection])
        else:
            keep = L.trainable(layer)
            out.append([tf.Variable(np.asarray(w, np.float32), trainable=j < keep, name=f"{name}_{j}") for j, w in enumerate(ws)])
    return out


def _rnn(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, units: int, gates: int, cell: Callable[..., tuple[tf.Tensor, tf.Tensor]]) -> list[tf.Tensor]:
    steps, features = x.shape[1], x.shape[2]
    # The input projection of all steps is one matmul; only the recurrent part stays sequential.
    xz = tf.reshape(tf.matmul(tf.reshape(x, [-1, features]), kernel) + bias, [-1, steps, gates * units])
    h = c = tf.zeros([tf.shape(x)[0], units], x.dtype)
    outputs = []
    # The step count is static, so the loop unrolls into the graph: no while_loop per-step cost.
    for xz_t in tf.unstack(xz, axis=1):
        h, c = cell(xz_t, h, c)
        outputs.append(h)
    return outputs


def _lstm(x: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor, bias: tf.Tensor, units: int) -> list[tf.Tensor]:
    def cell(xz_t: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        i, f, g, o = tf.split(xz_t + tf.matmul(h, recurrent), 4, axis=1)  # Keras/torch gate order
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    return _rnn(x, kernel, bias, units, 4, cell)


def _gru(x: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor, bias: tf.Tensor, units: int) -> list[tf.Tensor]:
    def cell(xz_t: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        xz, xr, xh = tf.split(xz_t, 3, axis=1)
        hz, hr, hh = tf.split(tf.matmul(h, recurrent) + bias[1], 3, axis=1)  # reset after the matmul
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return z * h + (1.0 - z) * tf.tanh(xh + r * hh), c

    return _rnn(x, kernel, bias[0], units, 3, cell)


def _attention(x: tf.Tensor, w: Sequence[tf.Tensor], causal: bool) -> tf.Tensor:
    qk, qb, kk, kb, vk, vb, ok, ob = w
    q = tf.einsum("ntd,dhk->nthk", x, qk) + qb
    k = tf.einsum("ntd,dhk->nthk", x, kk) + kb
    v = tf.einsum("ntd,dhk->nthk", x, vk) + vb
    scores = tf.einsum("nqhk,nthk->nhqt", q * tf.cast(1.0 / math.sqrt(qk.shape[-1]), q.dtype), k)
    if causal:
        steps = x.shape[1]
        allowed = tf.linalg.band_part(tf.ones([steps, steps], tf.bool), -1, 0)
        scores = tf.where(allowed, scores, tf.cast(-1e9, scores.dtype))
    o = tf.einsum("nhqt,nthk->nqhk", tf.nn.softmax(scores, axis=-1), v)
    return tf.einsum("nqhk,hkd->nqd", o, ok) + ob


def _batch_norm(layer: L.BatchNorm, x: tf.Tensor, w: Sequence[Any], cast: Callable[[Any], tf.Tensor], training: bool) -> tf.Tensor:
    gamma, beta, moving_mean, moving_var = w
    if training:
        mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))  # biased variance
        keep = layer.momentum
        moving_mean.assign(moving_mean * keep + tf.cast(mean, tf.float32) * (1.0 - keep))
        moving_var.assign(moving_var * keep + tf.cast(var, tf.float32) * (1.0 - keep))
    else:
        mean, var = cast(moving_mean), cast(moving_var)
    return tf.nn.batch_normalization(x, mean, var, cast(beta), cast(gamma), layer.epsilon)


def forward(
    layers: Sequence[L.Layer], shapes: Sequence[L.Shape], params: Sequence[Any], x: tf.Tensor, training: bool, cast: Callable[[Any], tf.Tensor]
) -> tf.Tensor:
    """The layers on ``x``; ``cast`` turns a variable into the compute dtype (mixed precision)."""
    for layer, shape, variables_ in zip(layers, shapes, params):
        if isinstance(layer, L.BatchNorm):
            x = _batch_norm(layer, x, variables_, cast, training)
            continue
        if isinstance(layer, L.Residual):
            y = forward(layer.body, L.shapes_through(layer.body, shape), variables_[:-1], x, training, cast)
            shortcut = forward((layer.projection,), (shape,), (variables_[-1],), x, training, cast) if layer.projection else x
            x = shortcut + y
            continue
        w = [cast(v) for v in variables_]
        if isinstance(layer, L.Reshape):
            x = tf.reshape(x, [-1, *layer.target_shape])
        elif isinstance(layer, L.Flatten):
            x = tf.reshape(x, [-1, math.prod(shape)])
        elif isinstance(layer, L.Dense):
            z = tf.matmul(x, w[0]) if len(shape) == 1 else tf.tensordot(x, w[0], 1)
            x = _act(layer.activation, tf.nn.bias_add(z, w[1]))
        elif isinstance(layer, L.Conv2D):
            z = tf.nn.conv2d(x, w[0], strides=layer.strides, padding=layer.padding.upper())
            x = _act(layer.activation, tf.nn.bias_add(z, w[1]))
        elif isinstance(layer, L.MaxPool2D):
            x = tf.nn.max_pool2d(x, layer.pool_size, layer.strides or layer.pool_size, padding="VALID")
        elif isinstance(layer, L.AvgPool2D):
            x = tf.nn.avg_pool2d(x, layer.pool_size, layer.strides or layer.pool_size, padding="VALID")
        elif isinstance(layer, L.GlobalAvgPool):
            x = tf.reduce_mean(x, axis=list(range(1, len(shape))))
        elif isinstance(layer, L.Dropout):
            if training:
                x = tf.nn.dropout(x, rate=layer.rate)
        elif isinstance(layer, L.Activation):
            x = _act(layer.name, x)
        elif isinstance(layer, L.LayerNorm):
            mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
            x = tf.nn.batch_normalization(x, mean, var, w[1], w[0], layer.epsilon)
        elif isinstance(layer, L.Embedding):
            x = tf.nn.embedding_lookup(w[0], tf.cast(x, tf.int32))
        elif isinstance(layer, L.PositionalEmbedding):
            x = x + w[0]
        elif isinstance(layer, (L.LSTM, L.GRU)):
            outputs = (_lstm if isinstance(layer, L.LSTM) else _gru)(x, *w, layer.units)
            x = tf.stack(outputs, axis=1) if layer.return_sequences else outputs[-1]
        elif isinstance(layer, L.MultiHeadAttention):
            x = _attention(x, w, layer.causal)
        else:
            raise TypeError(f"Unknown layer {layer!r}")
    return x
