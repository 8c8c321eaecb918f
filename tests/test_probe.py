"""The debugging probe's rubric on the errors the frameworks really raise (messages copied from them)."""

from __future__ import annotations

import numpy as np
import pytest

from framework_arena.probe import shape_bug

X = np.zeros((5, 8, 8, 1), np.float32)  # digits; the probe feeds (5, 8, 8, 2)


def _raising(message: str):
    def predict(x: np.ndarray) -> np.ndarray:
        assert x.shape == (5, 8, 8, 2)
        raise ValueError(message)

    return predict


@pytest.mark.parametrize(
    "message, score",
    [
        ("mat1 and mat2 shapes cannot be multiplied (5x128 and 64x128)", 1.0),  # PyTorch: shapes, no layer
        ("Can not cast TensorSpec(shape=(5, 8, 8, 2), dtype=tf.float32) to TensorSpec(shape=(None, 8, 8, 1))", 1.0),  # tf.function
        (
            "Input 0 of layer 'dense' is incompatible with the layer: expected axis -1 of input shape to have value 64, but received input with shape (5, 128)",
            2.0,
        ),  # Keras: shapes and layer
        ("something went wrong in float32 land", 0.0),
    ],
)
def test_rubric(message: str, score: float) -> None:
    metrics, text = shape_bug(_raising(message), X)
    assert metrics == {"debug/error_clarity": score} and message in text


def test_no_error_is_the_worst_case() -> None:
    metrics, text = shape_bug(lambda x: np.zeros((len(x), 10)), X)
    assert metrics == {"debug/error_clarity": 0.0} and "no error" in text
