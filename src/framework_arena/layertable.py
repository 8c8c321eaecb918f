"""The arena's own, framework-neutral view of a model: one row per layer, with shapes and parameters.

Logged beside each framework's own summary (``model_summary.txt``) as ``model_layers.txt``, so a
trial's model reads the same whatever framework trained it. Residual bodies are listed under
their residual, indented; the counts come from :mod:`~framework_arena.layers`, the same source
as :func:`~framework_arena.models.count_params`, which every framework's count must equal.
"""

from __future__ import annotations

import dataclasses
import math

from framework_arena import layers as L
from framework_arena.layerlist import kind_of, walk
from framework_arena.models import ModelSpec

HEADER = ("layer", "kind", "arguments", "input shape", "output shape", "trainable", "other")


def _args(layer: L.Layer) -> str:
    if isinstance(layer, (L.Activation, L.Residual)):
        return "projection" if isinstance(layer, L.Residual) and layer.projection else ""
    return ", ".join(f"{f.name}={getattr(layer, f.name)}" for f in dataclasses.fields(layer))


def _params(layer: L.Layer, shape: L.Shape) -> tuple[int, int]:
    """(trainable, not trained) weights of the layer itself; a residual's body counts in its own rows."""
    if isinstance(layer, L.Residual):
        return _params(layer.projection, shape) if layer.projection else (0, 0)
    sizes = [math.prod(s) for s in L.weight_shapes(layer, shape)]
    n = L.trainable(layer)
    return sum(sizes[:n]), sum(sizes[n:])


def _out(layer: L.Layer, shape: L.Shape) -> L.Shape:
    if isinstance(layer, L.Residual) and layer.body:  # out_shape says the input's; a projection changes it
        return L.out_shape(layer.body[-1], L.shapes_through(layer.body, shape)[-1])
    return L.out_shape(layer, shape)


def rows(spec: ModelSpec) -> list[tuple[str, ...]]:
    """The table's rows: path (``layers[i]``, nested for residual bodies), kind, arguments, shapes
    (without the batch axis) and the trainable and other (e.g. BatchNorm's moving statistics) weights."""
    out = []
    for path, layer, shape in walk(spec.layers, spec.shapes, "layers"):
        trained, other = _params(layer, shape)
        depth = path.count("[") - 1
        out.append(("  " * depth + path, kind_of(layer), _args(layer), str(shape), str(_out(layer, shape)), str(trained), str(other)))
    return out


def layer_table(spec: ModelSpec) -> str:
    """The plain-text table of :func:`rows`, with the totals and the input and output shapes."""
    table = [HEADER, *rows(spec)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    trained = sum(int(r[5]) for r in table[1:])
    other = sum(int(r[6]) for r in table[1:])
    return "\n".join(
        [
            f"model={spec.name}: input {spec.input_shape} -> {spec.num_classes} logits, init={spec.init} (the arena's framework-neutral view)",
            "",
            *lines,
            "",
            f"Trainable parameters: {trained:,}",
            f"Other weights (not trained): {other:,}",
            "",
        ]
    )
