"""The framework-neutral spec: shapes, parameter counts and initial weights."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose

from framework_arena import models
from framework_arena.trial import plain


@pytest.mark.parametrize("model, expected", [("mlp", 17226), ("cnn", 13706), ("lstm", 19338)])
def test_default_parameter_counts(model: str, expected: int) -> None:
    cfg = plain(compose([f"model={model}"]))["model"]
    spec = models.build_spec(cfg, (8, 8, 1), 10)
    # mlp: 64*128+128 + 128*64+64 + 64*10+10; lstm: 4*64*(8+64)+4*64 + 64*10+10
    assert models.count_params(spec) == expected
    weights = models.init_weights(spec, 0)
    assert sum(w.size for layer in weights for w in layer) == expected


def test_init_is_seeded_and_follows_the_scheme() -> None:
    spec = models.build_spec(plain(compose(["model=lstm"]))["model"], (8, 8, 1), 10)
    w0, w0_again, w1 = models.init_weights(spec, 0), models.init_weights(spec, 0), models.init_weights(spec, 1)
    kernel, recurrent, bias = w0[1]
    assert np.array_equal(kernel, w0_again[1][0]) and not np.array_equal(kernel, w1[1][0])
    limit = np.sqrt(6 / (kernel.shape[0] + kernel.shape[1]))
    assert np.abs(kernel).max() <= limit
    assert np.allclose(recurrent @ recurrent.T, np.eye(64), atol=1e-5)  # orthogonal rows
    assert np.array_equal(bias[64:128], np.ones(64)) and not bias[:64].any()


def test_shapes_that_cannot_feed_a_model_are_refused() -> None:
    cnn = plain(compose(["model=cnn"]))["model"]
    with pytest.raises(ValueError, match="model=cnn expects image data"):
        models.build_spec(cnn, (12, 5), 10)
    with pytest.raises(ValueError, match="shrinks the input to nothing"):
        models.build_spec({**cnn, "filters": [8, 8, 8, 8]}, (8, 8, 1), 10)
