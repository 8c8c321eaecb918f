"""``model.layers``: a list of layers written in YAML or on the command line, checked and shaped.

Each item is ``{kind: {arg: value, ...}}`` (or just ``kind`` when it takes no argument), e.g.
``[{conv2d: {filters: 32, kernel_size: 3}}, {batch_norm: {}}, relu, {max_pool2d: {pool_size: 2}},
flatten, {dense: {units: 64}}]``. :func:`resolve` turns the list into :mod:`~framework_arena.layers`
dataclasses while inferring the shape through it, so a wrong list fails before any run with the
layer's path (``model.layers[3]``), its kind, the shape it received and what it needed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Mapping, Sequence

from framework_arena import layers as L
from framework_arena.names import ACTIVATIONS

#: Each kind: its dataclass maker, its required args, its optional args with their defaults.
KINDS: dict[str, tuple[Callable[..., Any], tuple[str, ...], dict[str, Any]]] = {
    "dense": (L.Dense, ("units",), {"activation": None}),
    "conv2d": (L.Conv2D, ("filters", "kernel_size"), {"strides": 1, "padding": "same", "activation": None}),
    "max_pool2d": (L.MaxPool2D, ("pool_size",), {"strides": None}),
    "avg_pool2d": (L.AvgPool2D, ("pool_size",), {"strides": None}),
    "global_avg_pool": (L.GlobalAvgPool, (), {}),
    "flatten": (L.Flatten, (), {}),
    "reshape": (lambda target_shape: L.Reshape(tuple(int(d) for d in target_shape)), ("target_shape",), {}),
    "dropout": (L.Dropout, ("rate",), {}),
    "batch_norm": (L.BatchNorm, (), {"momentum": 0.99, "epsilon": 1e-3}),
    "layer_norm": (L.LayerNorm, (), {"epsilon": 1e-5}),
    "embedding": (L.Embedding, ("output_dim",), {"input_dim": None}),  # None: the data's vocabulary
    "positional_embedding": (L.PositionalEmbedding, (), {}),
    "lstm": (L.LSTM, ("units",), {"return_sequences": False}),
    "gru": (L.GRU, ("units",), {"return_sequences": False}),
    "multi_head_attention": (L.MultiHeadAttention, ("num_heads",), {"key_dim": None, "causal": False}),  # None: dim // num_heads
    "residual": (L.Residual, ("layers",), {"projection": False}),
    **{name: (lambda name=name: L.Activation(name), (), {}) for name in ACTIVATIONS},
}

#: The kind a dataclass is written as in ``model.layers`` (messages name layers this way).
KIND_OF = {L.Dense: "dense", L.Conv2D: "conv2d", L.MaxPool2D: "max_pool2d", L.AvgPool2D: "avg_pool2d", L.GlobalAvgPool: "global_avg_pool",
           L.Flatten: "flatten", L.Reshape: "reshape", L.Dropout: "dropout", L.BatchNorm: "batch_norm", L.LayerNorm: "layer_norm",
           L.Embedding: "embedding", L.PositionalEmbedding: "positional_embedding", L.LSTM: "lstm", L.GRU: "gru",
           L.MultiHeadAttention: "multi_head_attention", L.Residual: "residual"}  # fmt: skip


def kind_of(layer: L.Layer) -> str:
    return layer.name if isinstance(layer, L.Activation) else KIND_OF[type(layer)]


def _split(item: Any, path: str) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and len(item) == 1:
        kind, args = next(iter(item.items()))
        if args is None:
            args = {}
        if isinstance(args, Mapping):
            return str(kind), dict(args)
    raise L.LayerError(f"Expected {path} to be one layer: {{kind: {{arg: value}}}} or a bare kind. Received: {path}={item!r}")


def _check_args(kind: str, args: dict[str, Any], path: str) -> None:
    _, required, optional = KINDS[kind]
    missing = [a for a in required if a not in args]
    unknown = [a for a in args if a not in required and a not in optional]
    if missing or unknown:
        allowed = ", ".join([*required, *(f"{k}={v!r}" for k, v in optional.items())]) or "no arguments"
        raise L.LayerError(f"Expected {path} ({kind}) to take {allowed}. Received: {path}={{{kind}: {args!r}}}")
    for key in ("units", "filters", "kernel_size", "pool_size", "strides", "output_dim", "input_dim", "num_heads", "key_dim"):
        value = args.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise L.LayerError(f"Expected {path}.{key} to be an integer >= 1. Received: {path}.{key}={value!r}")
    checks = {
        "activation": (lambda v: v is None or v in ACTIVATIONS, f"in {ACTIVATIONS} or null"),
        "padding": (lambda v: v in ("same", "valid"), "in ('same', 'valid')"),
        "rate": (lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0, "in [0, 1)"),
        "momentum": (lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0, "in [0, 1) (the weight the running statistics keep)"),
        "epsilon": (lambda v: isinstance(v, (int, float)) and v > 0.0, "> 0"),
    }
    for key, (ok, expected) in checks.items():
        if key in args and not ok(args[key]):
            raise L.LayerError(f"Expected {path}.{key} {expected}. Received: {path}.{key}={args[key]!r}")


def _projection(shape: L.Shape, out: L.Shape, path: str) -> L.Dense | L.Conv2D:
    if len(shape) == 3 and len(out) == 3:
        for stride in range(1, shape[0] + 1):
            if math.ceil(shape[0] / stride) == out[0] and math.ceil(shape[1] / stride) == out[1]:
                return L.Conv2D(out[2], 1, None, stride, "same")
    elif len(shape) == len(out) and shape[:-1] == out[:-1]:
        return L.Dense(out[-1])
    raise L.LayerError(
        f"{path} (residual): its layers map {shape} to {out}; no projection fits (a 1x1 strided conv2d between images, "
        f"or a dense layer when only the last axis differs): change the layers so the shapes can match"
    )


def resolve(items: Sequence[Any], shape: L.Shape, vocab_size: int | None, path: str = "model.layers") -> tuple[list[L.Layer], list[L.Shape], L.Shape]:
    """Parses ``items`` into layers, inferring each one's input shape from ``shape``.

    Args:
        items: the ``model.layers`` list (plain data).
        shape: the data's sample shape, no batch axis.
        vocab_size: the data's vocabulary for ``embedding`` (None: data without tokens).
        path: the config key of ``items``, for messages.

    Returns:
        The layers, the input shape of each, and the output shape.

    Raises:
        LayerError: naming the layer's path and kind, the shape it received and what it needed.
    """
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise L.LayerError(f"Expected {path} to be a non-empty list of layers. Received: {path}={items!r}")
    out: list[L.Layer] = []
    shapes: list[L.Shape] = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        kind, args = _split(item, here)
        if kind not in KINDS:
            raise L.LayerError(f"Expected {here} to be a layer kind in {sorted(KINDS)}. Received: {kind!r}")
        _check_args(kind, args, here)
        make, _, defaults = KINDS[kind]
        args = {**defaults, **args}
        if kind == "embedding" and args["input_dim"] is None:
            if vocab_size is None:
                raise L.LayerError(f"{here} (embedding) needs token ids: data=sequences, or embedding.input_dim. Received: a {shape} input")
            args["input_dim"] = vocab_size
        if kind == "multi_head_attention" and args["key_dim"] is None:
            args["key_dim"] = max(1, shape[-1] // args["num_heads"])
        if kind == "residual":
            body, _, body_out = resolve(args["layers"], shape, vocab_size, f"{here}.layers")
            projection = None
            if body_out != shape:
                if not args["projection"]:
                    raise L.LayerError(
                        f"{here} (residual): its layers map {shape} to {body_out}, which cannot be added to its input: set projection: true, or keep the shape"
                    )
                projection = _projection(shape, body_out, here)
            layer: L.Layer = L.Residual(tuple(body), projection)
            next_shape = body_out
        else:
            layer = make(**args)
            try:
                next_shape = L.out_shape(layer, shape)
            except L.LayerError as e:
                after = f" from {path}[{i - 1}] ({kind_of(out[-1])})" if out else " (the data's sample shape)"
                raise L.LayerError(f"{here} ({kind}) needs {e}. Received: an input of shape {shape}{after}") from None
        out.append(layer)
        shapes.append(shape)
        shape = next_shape
    return out, shapes, shape


def walk(layers: Sequence[L.Layer], shapes: Sequence[L.Shape], path: str = "model.layers") -> Iterator[tuple[str, L.Layer, L.Shape]]:
    """Every layer with its config path and input shape, residual bodies included."""
    for i, (layer, shape) in enumerate(zip(layers, shapes)):
        yield f"{path}[{i}]", layer, shape
        if isinstance(layer, L.Residual):
            yield from walk(layer.body, L.shapes_through(layer.body, shape), f"{path}[{i}].layers")


def framework_limits(layers: Sequence[L.Layer], shapes: Sequence[L.Shape], variant: str) -> list[str]:
    """What ``variant`` (``torch``, ``tensorflow``, ``keras-<backend>``) cannot build exactly: a
    refused config, never a silently different model. Empty when it can build every layer."""
    problems = []
    for path, layer, shape in walk(layers, shapes):
        if variant == "torch" and isinstance(layer, L.MultiHeadAttention) and layer.num_heads * layer.key_dim != shape[-1]:
            problems.append(
                f"framework=torch cannot build {path} (multi_head_attention) exactly: torch.nn.MultiheadAttention splits the "
                f"input's {shape[-1]} features into heads, so it needs num_heads * key_dim = {shape[-1]}. "
                f"Received: num_heads={layer.num_heads}, key_dim={layer.key_dim}"
            )
    return problems
