"""``data=sequences``: token-sequence classification generated from a seed, any size.

Each sample is ``length`` token ids in ``[0, vocab_size)`` (stored as float32, exact below 2**24,
since every trainer feeds float32 batches; an ``embedding`` layer casts them back to integers).
Tokens 0 to 3 are markers A, B, C, D; the rest are filler. A sample holds exactly one A and one B,
and some Cs and Ds in different counts. Its label (4 classes, balanced) has two bits:

- order: 1 when A comes *before* B (the same tokens in the other order give the other label);
- content: 1 when C occurs more often than D.

So the label depends on the tokens' content and their order: a bag of tokens is not enough
(at best 50%, chance being 25%), which makes it a task for positions and attention.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

MARKERS = 4  # A, B, C, D
NUM_CLASSES = 4


def generate(num_samples: int, length: int, vocab_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: ``x`` float32 ``(num_samples, length)`` token ids, ``y`` int64 labels in [0, 4)."""
    rng = np.random.default_rng([seed, 49979687])
    y = rng.integers(0, NUM_CLASSES, size=num_samples).astype(np.int64)
    x = rng.integers(MARKERS, vocab_size, size=(num_samples, length))
    for i in range(num_samples):
        positions = rng.permutation(length)
        first, second = sorted(positions[:2])
        a, b = (first, second) if y[i] & 1 else (second, first)
        x[i, a], x[i, b] = 0, 1
        # Counts of C and D: different, at most a third of the sequence together.
        most = max(2, (length - 2) // 3)
        low, high = sorted(rng.choice(np.arange(0, most + 1), size=2, replace=False))
        c, d = (high, low) if y[i] >> 1 else (low, high)
        x[i, positions[2 : 2 + c]] = 2
        x[i, positions[2 + c : 2 + c + d]] = 3
    return x.astype(np.float32), y


def load(cfg: Mapping[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``data=sequences`` config's samples (the split is data.py's)."""
    return generate(int(cfg["num_samples"]), int(cfg["length"]), int(cfg["vocab_size"]), seed)
