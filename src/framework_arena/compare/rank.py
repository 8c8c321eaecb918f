"""Scores per criterion, normalized across frameworks, weighed by a ranking profile, with ties.

Normalization: a score is the fraction of the best framework's value, 1.0 for the best: ``v / best``
where higher is better, ``(best + floor) / (v + floor)`` where lower is better (a criterion's
``floor`` keeps differences below measurement resolution from looking large), 0 for "never
reached". The total is the weighted mean of the scores of the profile's criteria that every
framework has; a criterion missing for any framework is left out of every total and reported.

With several runs per framework, each framework's runs are resampled with replacement
(``bootstrap.samples`` times); the interval of a score or total is the central
``bootstrap.confidence`` share of the resampled values. Frameworks whose total intervals overlap
are tied: they share a rank ("1, 1, 3"), because the data cannot tell them apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from framework_arena.compare.criteria import CRITERIA, Cell, Criterion, GroupData


class NoRanking(RuntimeError):
    """No weighted criterion has a value for every framework."""


@dataclass
class RankRow:
    group: str
    total: float
    low: float
    high: float
    rank: int
    tied: bool  # shares its rank with another framework
    runs: int


@dataclass
class Ranking:
    rows: list[RankRow]
    scores: dict[str, dict[str, float | None]]  # criterion -> group -> normalized score
    value_intervals: dict[str, dict[str, tuple[float, float]]]  # criterion -> group -> raw-value interval
    best: dict[str, list[str]]  # criterion -> groups best or tied with the best
    weights: dict[str, float]
    used: list[str]
    excluded: dict[str, str]  # weighted criterion -> why it is out of the totals
    samples: int
    confidence: float


def normalize(crit: Criterion, values: Mapping[str, float | None]) -> dict[str, float | None]:
    rows = _normalize_rows(crit, {g: np.array([math.nan if v is None else v], dtype=float) for g, v in values.items()}, 1)
    return {g: None if math.isnan(r[0]) else float(r[0]) for g, r in rows.items()}


def _normalize_rows(crit: Criterion, values: Mapping[str, np.ndarray], samples: int) -> dict[str, np.ndarray]:
    """:func:`normalize`, applied to every bootstrap resample (column-wise over the groups)."""
    names = list(values)
    table = np.stack([values[g] for g in names]) if names else np.zeros((0, samples))  # groups x samples
    out = np.full_like(table, np.nan)
    present = ~np.isnan(table)
    if crit.direction == "higher":
        best = np.max(np.where(present, table, -np.inf), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(best > 0, table / best, np.where(table == best, 1.0, 0.0))
    else:
        finite = present & np.isfinite(table)
        best = np.min(np.where(finite, table, np.inf), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(table + crit.floor <= 0, 1.0, (best + crit.floor) / (table + crit.floor))
        out = np.where(np.isfinite(table), ratio, 0.0)
    out = np.where(present, out, np.nan)
    return {g: out[i] for i, g in enumerate(names)}


def _total(scores: Mapping[str, Mapping[str, float | None]], weights: Mapping[str, float], used: Sequence[str], group: str) -> float:
    wsum = sum(weights[k] for k in used)
    vals = [weights[k] * scores[k][group] for k in used]  # type: ignore[operator]
    return math.nan if any(v is None or math.isnan(v) for v in vals) or wsum == 0 else float(sum(vals) / wsum)


def _interval(samples: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return point, point
    tail = (1.0 - confidence) / 2.0 * 100.0
    # With "never reached" (inf) among the samples, pick observed values rather than interpolate.
    method = "linear" if np.all(np.isfinite(samples)) else "inverted_cdf"
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], method=method)
    return float(min(lo, point)), float(max(hi, point))


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def rank(
    groups: Mapping[str, GroupData], table: Mapping[str, Mapping[str, Cell]], weights: Mapping[str, float], samples: int, confidence: float, seed: int
) -> Ranking:
    """Ranks the groups; raises :class:`NoRanking` if no weighted criterion covers them all."""
    names = list(groups)
    weights = {k: float(w) for k, w in weights.items() if float(w) > 0}
    excluded = {}
    for k in weights:
        missing = [g for g in names if table[k][g].value is None]
        if missing:
            excluded[k] = "missing for " + ", ".join(missing)
    used = [k for k in weights if k not in excluded]
    if not used:
        raise NoRanking(
            "No weighted criterion of this ranking profile has a value for every framework: " + "; ".join(f"{k}: {why}" for k, why in excluded.items())
        )
    scores = {k: normalize(CRITERIA[k], {g: table[k][g].value for g in names}) for k in CRITERIA}
    totals = {g: _total(scores, weights, used, g) for g in names}

    # Bootstrap: resample each group's runs, all resamples at once; static values do not vary.
    rng = np.random.default_rng(seed)
    measured = [k for k, c in CRITERIA.items() if c.measure is not None]
    boot_values: dict[str, dict[str, np.ndarray]] = {k: {} for k in measured}
    for g, d in groups.items():
        idx = rng.integers(0, d.n, (samples, d.n))
        for k in measured:
            boot_values[k][g] = CRITERIA[k].measure(d, idx)  # type: ignore[misc]
    boot_scores = {
        k: _normalize_rows(CRITERIA[k], boot_values[k], samples)
        if k in boot_values
        else {g: np.full(samples, np.nan if scores[k][g] is None else scores[k][g]) for g in names}
        for k in used
    }
    wsum = sum(weights[k] for k in used)
    boot_totals = {g: sum(weights[k] * boot_scores[k][g] for k in used) / wsum for g in names}

    value_intervals = {}
    best: dict[str, list[str]] = {}
    for k in CRITERIA:
        cells = table[k]
        present = [g for g in names if cells[g].value is not None]
        iv = {g: (_interval(boot_values[k][g], confidence, cells[g].value) if k in boot_values else (cells[g].value, cells[g].value)) for g in present}  # type: ignore[arg-type]
        value_intervals[k] = iv
        finite = [g for g in present if math.isfinite(cells[g].value)]  # type: ignore[arg-type]
        if finite:  # "never reached" is nobody's best
            top = max(finite, key=lambda g: scores[k][g])  # type: ignore[arg-type, return-value]
            best[k] = [g for g in finite if g == top or _overlap(iv[g], iv[top])]
    order = sorted(names, key=lambda g: -totals[g])
    intervals = {g: _interval(boot_totals[g], confidence, totals[g]) for g in names}
    rows: list[RankRow] = []
    for pos, g in enumerate(order):
        tied_prev = bool(rows) and _overlap(intervals[g], intervals[rows[-1].group])
        if tied_prev:
            rows[-1].tied = True
        rows.append(RankRow(g, totals[g], *intervals[g], rank=rows[-1].rank if tied_prev else pos + 1, tied=tied_prev, runs=groups[g].n))
    return Ranking(rows, scores, value_intervals, best, weights, used, excluded, samples, confidence)
