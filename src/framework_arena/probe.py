"""The debugging probe: plant a shape bug and score the error the framework raises.

criteria.md's "debugging" row asks whether a framework's error, on the most common bug there is
(an input of the wrong shape), names the shapes and the layer. The child calls :func:`shape_bug`
on the trained model at the end of a trial: the framework is already imported, so it costs
milliseconds. The score (``debug/error_clarity``, 0 to 2) and the message itself are logged.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np

LAYER_WORDS = re.compile(r"\b(layer|linear|dense|conv\w*|lstm|sequential)\b", re.IGNORECASE)


def _ints(text: str) -> list[int]:
    """The integers of ``text`` in order; "5x128" is two (PyTorch's style), "float32" none."""
    text = re.sub(r"(\d)x(?=\d)", r"\1 ", text)
    return [int(v) for v in re.findall(r"(?<![\w.])\d+(?![\w.])", text)]


def _contains_run(haystack: list[int], needle: list[int]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


def _names(message: str, shape: tuple[int, ...]) -> bool:
    """Does ``message`` state ``shape``: as a tuple (batch dim optional) or flattened?"""
    found = _ints(message)
    return _contains_run(found, list(shape)) or _contains_run(found, list(shape[1:])) or math.prod(shape[1:]) in found


def shape_bug(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> tuple[dict[str, float], str]:
    """Predicts on ``x`` with its last axis one element too wide.

    Returns:
        ``debug/error_clarity`` (1 point for naming the received and expected shapes, 1 for naming
        the layer), and the error text (or why there was none).
    """
    bad = np.zeros(x.shape[:-1] + (x.shape[-1] + 1,), dtype=x.dtype)
    try:
        predict(bad)
    except Exception as e:  # noqa: BLE001 - the error is what is measured
        message = f"{type(e).__name__}: {e}"
    else:
        return {"debug/error_clarity": 0.0}, f"no error: a {bad.shape} input for a model built for {x.shape} was accepted"
    shapes = _names(message, bad.shape) and _names(message, x.shape)
    layer = bool(LAYER_WORDS.search(message))
    return {"debug/error_clarity": float(shapes) + float(layer)}, message
