"""A group's runs (one framework's seeds) as arrays, and the measures that reduce them to values.

A measure takes the group and ``idx``, the runs to use: one row of run indices (the point
estimate) or one row per bootstrap resample, so rank.py evaluates all its resamples in one call. It
returns one value per row, NaN where the value does not exist.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from framework_arena.compare.query import Trial


class GroupData:
    """A group's runs as arrays, so a bootstrap resample is an index array, not a copy of dicts."""

    def __init__(self, trials: Sequence[Trial], target_accuracy: float, size_key: str | None) -> None:
        self.trials = list(trials)
        self.n = len(self.trials)
        self.target_accuracy = target_accuracy
        self._metrics: dict[str, np.ndarray] = {}
        self.time_to_target = np.array([_seconds_to_target(t, target_accuracy) for t in self.trials], dtype=float)
        self.cells = _cells(self.trials)
        self.size_key = size_key
        self.sizes = np.array([_float(t.params.get(size_key)) if size_key else math.nan for t in self.trials], dtype=float)
        self.largest_common_size: float | None = None  # set by measure_all once every group is known

    def metric(self, key: str) -> np.ndarray:
        if key not in self._metrics:
            self._metrics[key] = np.array([t.metrics.get(key, math.nan) for t in self.trials], dtype=float)
        return self._metrics[key]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _seconds_to_target(trial: Trial, target: float) -> float:
    """Training seconds (speed/epoch_time_s summed) until val/accuracy first reaches ``target``.

    NaN when the run's history was not loaded; inf when it never got there.
    """
    acc, times = trial.history.get("val/accuracy"), trial.history.get("speed/epoch_time_s")
    if not acc or not times:
        return math.nan
    elapsed = dict(times)
    total = 0.0
    for step, value in acc:
        total += elapsed.get(step, 0.0)
        if value >= target:
            return total
    return math.inf


def _cells(trials: Sequence[Trial]) -> np.ndarray:
    """Runs that differ only by seed share a cell: reproducibility is the spread inside a cell."""
    keys: dict[tuple, int] = {}
    out = []
    for t in trials:
        key = tuple(sorted((k, v) for k, v in t.params.items() if "seed" not in k and not k.startswith(("tracking.", "arena.", "platform."))))
        out.append(keys.setdefault(key, len(keys)))
    return np.array(out, dtype=int)


def _row_median(values: np.ndarray) -> np.ndarray:
    """Median of each row, ignoring NaN; NaN for a row with no value (without numpy's warning).

    Equal, bit for bit, to ``np.nanmedian`` row by row: the middle value, or the mean ``(a + b) / 2``
    of the two middle ones."""
    nan = np.isnan(values)
    if not nan.any():
        return np.median(values, axis=-1)
    # nanmedian loops over rows in Python (seconds on 1000 resamples of 1000 runs, most of them NaN
    # for time_to_target, whose history only some runs load): one sort puts each row's NaN last.
    rows = values.reshape(-1, values.shape[-1])
    ordered = np.sort(rows, axis=-1)
    count = rows.shape[-1] - nan.reshape(rows.shape).sum(axis=-1)
    at = np.arange(rows.shape[0])
    hi = ordered[at, np.minimum(count // 2, rows.shape[-1] - 1)]
    lo = ordered[at, np.maximum(count - 1, 0) // 2]
    with np.errstate(invalid="ignore"):  # the rows with no value are NaN whatever this gives
        out = np.where(count % 2 == 1, hi, (lo + hi) / 2)
    return np.where(count > 0, out, np.nan).reshape(values.shape[:-1])


def median_of(*keys: str) -> Callable[[GroupData, np.ndarray], np.ndarray]:
    """The measure "median over runs of the sum of the metrics ``keys``"."""

    def measure(g: GroupData, idx: np.ndarray) -> np.ndarray:
        return _row_median(sum(g.metric(k) for k in keys)[idx])

    return measure


def time_to_target(g: GroupData, idx: np.ndarray) -> np.ndarray:
    """Median over runs of the training seconds until val/accuracy reached the target."""
    return _row_median(g.time_to_target[idx])


def reproducibility(g: GroupData, idx: np.ndarray) -> np.ndarray:
    """Mean over configurations of the std of test/accuracy across seeds (cells of 2 runs or more)."""
    out = np.full(idx.shape[0], np.nan)
    if g.n == 0:
        return out
    acc = g.metric("test/accuracy")[idx]
    ok = ~np.isnan(acc)
    width = int(g.cells.max()) + 1
    # One bincount for every resample: bin = row * width + cell, read row after row, so each bin
    # sums its runs in the order a bincount per row did (the same figures, bit for bit).
    bins, acc = (np.arange(idx.shape[0])[:, None] * width + g.cells[idx])[ok], acc[ok]
    size = idx.shape[0] * width
    n = np.bincount(bins, minlength=size).reshape(-1, width)
    s1 = np.bincount(bins, acc, minlength=size).reshape(-1, width)
    s2 = np.bincount(bins, acc * acc, minlength=size).reshape(-1, width)
    many = n >= 2
    with np.errstate(divide="ignore", invalid="ignore"):  # cells of fewer than 2 runs are left out below
        sd = np.sqrt(np.maximum((s2 - s1**2 / n) / (n - 1), 0.0))
    for row in np.flatnonzero(many.any(axis=1)):
        out[row] = float(np.mean(sd[row][many[row]]))  # np.mean of the same values in the same order
    return out


def large_data(g: GroupData, idx: np.ndarray) -> np.ndarray:
    """Median speed/samples_per_s of the runs at the largest size every group ran."""
    if g.largest_common_size is None:
        return np.full(idx.shape[0], np.nan)
    at_largest = np.where(g.sizes == g.largest_common_size, g.metric("speed/samples_per_s"), np.nan)
    return _row_median(at_largest[idx])
