"""The spec as a functional ``keras.Model`` of Keras' own layers, holding the shared initial weights.

Keras' weight layout is the spec's own, so each layer takes its weights as they are (``set_weights``
right after the layer is built). A residual is ``keras.layers.Add`` of the shortcut (or its 1x1
projection) and the body. The one layer Keras does not ship, a learned positional embedding, is a
small Layer holding a ``keras.layers.Embedding`` over the positions.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from framework_arena import layers as L


@keras.saving.register_keras_serializable(package="framework_arena")
class PositionalEmbedding(keras.layers.Layer):
    """Adds a learned vector per step: ``x + Embedding(steps, dim)(arange(steps))``."""

    def __init__(self, steps: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps, self.dim = steps, dim
        self.embedding = keras.layers.Embedding(steps, dim, name="positions")

    def build(self, input_shape: Any) -> None:
        self.embedding.build((self.steps,))

    def call(self, x: Any) -> Any:
        return x + keras.ops.cast(self.embedding(keras.ops.arange(self.steps)), x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "steps": self.steps, "dim": self.dim}


def _layer(layer: L.Layer, shape: L.Shape, init: str) -> keras.layers.Layer:
    # The initializers are overwritten by set_weights; they are named so the saved config tells the truth.
    if isinstance(layer, L.Reshape):
        return keras.layers.Reshape(layer.target_shape)
    if isinstance(layer, L.Flatten):
        return keras.layers.Flatten()
    if isinstance(layer, L.Dense):
        return keras.layers.Dense(layer.units, activation=layer.activation, kernel_initializer=init, bias_initializer="zeros")
    if isinstance(layer, L.Conv2D):
        return keras.layers.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            activation=layer.activation,
            kernel_initializer=init,
            bias_initializer="zeros",
        )
    if isinstance(layer, L.MaxPool2D):
        return keras.layers.MaxPooling2D(layer.pool_size, layer.strides or layer.pool_size)
    if isinstance(layer, L.AvgPool2D):
        return keras.layers.AveragePooling2D(layer.pool_size, layer.strides or layer.pool_size)
    if isinstance(layer, L.GlobalAvgPool):
        return keras.layers.GlobalAveragePooling2D() if len(shape) == 3 else keras.layers.GlobalAveragePooling1D()
    if isinstance(layer, L.Dropout):
        return keras.layers.Dropout(layer.rate)
    if isinstance(layer, L.Activation):
        return keras.layers.Activation(layer.name)
    if isinstance(layer, L.BatchNorm):
        return keras.layers.BatchNormalization(axis=-1, momentum=layer.momentum, epsilon=layer.epsilon)
    if isinstance(layer, L.LayerNorm):
        return keras.layers.LayerNormalization(axis=-1, epsilon=layer.epsilon)
    if isinstance(layer, L.Embedding):
        return keras.layers.Embedding(layer.input_dim, layer.output_dim)
    if isinstance(layer, L.PositionalEmbedding):
        return PositionalEmbedding(*shape)
    if isinstance(layer, L.LSTM):
        return keras.layers.LSTM(
            layer.units,
            return_sequences=layer.return_sequences,
            kernel_initializer=init,
            recurrent_initializer="orthogonal",
            bias_initializer="zeros",
            unit_forget_bias=True,
        )
    if isinstance(layer, L.GRU):
        return keras.layers.GRU(
            layer.units, return_sequences=layer.return_sequences, reset_after=True, kernel_initializer=init, recurrent_initializer="orthogonal"
        )
    raise TypeError(f"Unknown layer {layer!r}")


def _apply(layers: Sequence[L.Layer], shapes: Sequence[L.Shape], weights: Sequence[Any], x: Any, init: str) -> Any:
    for layer, shape, w in zip(layers, shapes, weights):
        if isinstance(layer, L.Residual):
            y = _apply(layer.body, L.shapes_through(layer.body, shape), w[:-1], x, init)
            shortcut = _apply((layer.projection,), (shape,), (w[-1],), x, init) if layer.projection else x
            x = keras.layers.Add()([shortcut, y])
            continue
        if isinstance(layer, L.MultiHeadAttention):
            mha = keras.layers.MultiHeadAttention(layer.num_heads, layer.key_dim, kernel_initializer=init)
            x_out = mha(x, x, use_causal_mask=layer.causal)
            mha.set_weights([np.asarray(a, np.float32) for a in w])
            x = x_out
            continue
        keras_layer = _layer(layer, shape, init)
        x = keras_layer(x)
        if w:
            keras_layer.set_weights([np.asarray(a, np.float32) for a in w])
    return x


def build_model(spec: Any, weights: Sequence[Sequence[Any]]) -> keras.Model:
    """The spec as a functional model holding ``weights`` (Keras layout, as they are)."""
    inputs = keras.Input(spec.input_shape)
    return keras.Model(inputs, _apply(spec.layers, spec.shapes, weights, inputs, spec.init), name=spec.name)
