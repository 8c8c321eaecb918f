"""The ranking: scores per criterion across workloads, weighed by a ranking profile, with ties.

A criterion measured per workload scores each group by the geometric mean of its ratios to the
best group over the workloads counted for it (aggregate.py); a per-framework criterion (license,
API size, the static ratings) by its ratio to the best group: ``v / best`` where higher is better,
``(best + floor) / (v + floor)`` where lower is better. The total is the weighted mean of the scores
of the profile's criteria that every group has; a criterion missing for any group, or only measured
on workloads the groups do not share, is left out of every total and reported.

Intervals come from the bootstrap in aggregate.py (each group's seeds resampled within each
workload); the interval of a score or total is the central ``bootstrap.confidence`` share of its
resampled values. Groups whose total intervals overlap are tied: they share a rank ("1, 1, 3").

The performance profile: on each workload, a group is within ``tau`` of the best when its ratio is
at least ``1 / tau``; ``within_tau`` counts those workloads per criterion, and for ``"total"``, on
the profile's weighted score per workload (``workload_totals``) against the best group's there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from framework_arena.compare.aggregate import PER_WORKLOAD, Aggregate, WorkloadScores, interval, normalize_rows
from framework_arena.compare.criteria import CRITERIA, Cell, Criterion, GroupData

TOTAL = "total"  # the key of the profile's weighted score in within_tau


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
    scores: dict[str, dict[str, float | None]]  # criterion -> group -> score across workloads (1.0: best everywhere)
    value_intervals: dict[str, dict[str, tuple[float, float]]]  # criterion -> group -> interval of Cell.value
    best: dict[str, list[str]]  # criterion -> groups best or whose score interval overlaps the best's
    weights: dict[str, float]
    used: list[str]
    excluded: dict[str, str]  # weighted criterion -> why it is out of the totals
    samples: int
    confidence: float
    score_intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)  # criterion -> group -> score interval
    workloads: list[WorkloadScores] = field(default_factory=list)  # per workload: values, ratios, intervals, runs (aggregate.py)
    counted: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # criterion -> group -> workload labels behind its score
    workload_totals: dict[str, dict[str, float]] = field(default_factory=dict)  # workload label -> group -> profile score there
    within_tau: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # criterion or "total" -> group -> (within, of)
    tau: float = 1.0
    include_partial: bool = False


def normalize(crit: Criterion, values: Mapping[str, float | None]) -> dict[str, float | None]:
    rows = normalize_rows(crit, {g: np.array([math.nan if v is None else v], dtype=float) for g, v in values.items()}, 1)
    return {g: None if math.isnan(r[0]) else float(r[0]) for g, r in rows.items()}


def _total(scores: Mapping[str, Mapping[str, float | None]], weights: Mapping[str, float], used: Sequence[str], group: str) -> float:
    wsum = sum(weights[k] for k in used)
    vals = [weights[k] * scores[k][group] for k in used]  # type: ignore[operator]
    return math.nan if any(v is None or math.isnan(v) for v in vals) or wsum == 0 else float(sum(vals) / wsum)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _within(ratios: Sequence[float], tau: float) -> tuple[int, int]:
    return sum(r >= 1.0 / tau - 1e-12 for r in ratios), len(ratios)


def _profile(rk: Ranking, agg: Aggregate, names: Sequence[str]) -> None:
    """Fills ``workload_totals`` and ``within_tau`` (see the module docstring)."""
    by_label = {w.label: w for w in agg.workloads}
    for k in PER_WORKLOAD:
        rk.within_tau[k] = {g: _within([by_label[lab].ratios[k][g] for lab in agg.counted[k][g]], rk.tau) for g in names if agg.counted[k][g]}  # type: ignore[misc]
    wsum = sum(rk.weights[k] for k in rk.used)
    for w in agg.workloads:
        if not w.runs.scored:
            continue
        totals = {}
        for g in w.runs.groups:
            parts = [rk.scores[k][g] if k not in PER_WORKLOAD else (w.ratios[k][g] if w.label in agg.counted[k][g] else None) for k in rk.used]
            if all(p is not None for p in parts) and wsum:
                totals[g] = sum(rk.weights[k] * p for k, p in zip(rk.used, parts)) / wsum  # type: ignore[operator]
        if len(totals) >= 2 or (totals and len(names) == 1):
            rk.workload_totals[w.label] = totals
    best = {lab: max(t.values()) for lab, t in rk.workload_totals.items()}
    rk.within_tau[TOTAL] = {g: _within([t[g] / best[lab] if best[lab] > 0 else 1.0 for lab, t in rk.workload_totals.items() if g in t], rk.tau) for g in names}


def rank(
    groups: Mapping[str, GroupData], table: Mapping[str, Mapping[str, Cell]], weights: Mapping[str, float], agg: Aggregate, confidence: float, tau: float
) -> Ranking:
    """Ranks the groups; raises :class:`NoRanking` if no weighted criterion covers them all."""
    names = list(groups)
    samples = agg.samples
    weights = {k: float(w) for k, w in weights.items() if float(w) > 0}
    excluded = {}
    for k in weights:
        missing = [g for g in names if table[k][g].value is None]
        if missing:
            excluded[k] = "missing for " + ", ".join(missing)
        elif k in PER_WORKLOAD and not agg.comparable[k]:
            excluded[k] = "measured only on workloads the frameworks do not share (see the workload tables)"
    used = [k for k in weights if k not in excluded]
    if not used:
        raise NoRanking(
            "No weighted criterion of this ranking profile has a value for every framework: " + "; ".join(f"{k}: {why}" for k, why in excluded.items())
        )
    scores = {k: dict(agg.scores[k]) if k in PER_WORKLOAD else normalize(CRITERIA[k], {g: table[k][g].value for g in names}) for k in CRITERIA}
    totals = {g: _total(scores, weights, used, g) for g in names}
    # Per-framework criteria do not vary between resamples; per-workload ones come resampled.
    boot_scores = {
        k: agg.score_samples[k] if k in PER_WORKLOAD else {g: np.full(samples, np.nan if scores[k][g] is None else scores[k][g]) for g in names}
        for k in CRITERIA
    }
    wsum = sum(weights[k] for k in used)
    boot_totals = {g: sum(weights[k] * boot_scores[k][g] for k in used) / wsum for g in names}

    value_intervals, score_intervals, best = {}, {}, {}
    for k in CRITERIA:
        cells = table[k]
        present = [g for g in names if cells[g].value is not None and scores[k][g] is not None]
        if k in PER_WORKLOAD:
            value_intervals[k] = {g: interval(agg.value_samples[k][g], confidence, cells[g].value) for g in present}  # type: ignore[arg-type]
        else:
            value_intervals[k] = {g: (cells[g].value, cells[g].value) for g in present}
        score_intervals[k] = {g: interval(boot_scores[k][g], confidence, scores[k][g]) for g in present}  # type: ignore[arg-type]
        finite = [g for g in present if math.isfinite(cells[g].value)]  # type: ignore[arg-type]
        if finite and (k not in PER_WORKLOAD or agg.comparable[k]):  # "never reached" is nobody's best; unshared workloads nobody's
            top = max(finite, key=lambda g: scores[k][g])  # type: ignore[arg-type, return-value]
            best[k] = [g for g in finite if g == top or _overlap(score_intervals[k][g], score_intervals[k][top])]
    order = sorted(names, key=lambda g: -totals[g])
    intervals = {g: interval(boot_totals[g], confidence, totals[g]) for g in names}
    rows: list[RankRow] = []
    for pos, g in enumerate(order):
        tied_prev = bool(rows) and _overlap(intervals[g], intervals[rows[-1].group])
        if tied_prev:
            rows[-1].tied = True
        rows.append(RankRow(g, totals[g], *intervals[g], rank=rows[-1].rank if tied_prev else pos + 1, tied=tied_prev, runs=groups[g].n))
    ranking = Ranking(rows, scores, value_intervals, best, weights, used, excluded, samples, confidence, score_intervals, agg.workloads, agg.counted, tau=tau)
    ranking.include_partial = agg.include_partial
    _profile(ranking, agg, names)
    return ranking
