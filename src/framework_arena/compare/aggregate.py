"""Scores within each workload, and their aggregate across workloads.

Within a workload, a measured criterion reduces each group's runs there (its seeds) to one value
(measures.py); the group's ratio to the best group on that workload is its score there: ``v / best``
where higher is better, ``(best + floor) / (v + floor)`` where lower is better (a criterion's
``floor`` keeps differences below measurement resolution from looking large), 0 for "never reached".

Across workloads, a group's score on a criterion is the **geometric mean of its ratios** over the
workloads counted for that criterion, and its value the geometric mean of its values there. Over the
same workloads, the ratio of two groups' values is the geometric mean of their per-workload ratios:
scale-free, so a slow workload weighs no more than a fast one, and a group with more runs of one
workload gains nothing from it. Counted: the scored workloads (coverage.py) on which every group
compared there has a value; with ``aggregate.include_partial``, each scored workload the group has a
value on. A lower-is-better workload where no group has a finite value (nobody reached the target)
tells nobody apart and is not counted, unless no workload is left. A ratio of 0 (never reached where
another did) makes the geometric mean 0: the performance profile (rank.py) shows on how many
workloads that happened.

Intervals: each group's seeds on each workload are resampled independently (``bootstrap.samples``
times, all resamples as one index array), and every figure above is recomputed on each resample.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from framework_arena.compare.coverage import Coverage, WorkloadRuns
from framework_arena.compare.criteria import CRITERIA, Criterion
from framework_arena.compare.measures import GroupData

#: The criteria measured on runs per workload (license and API size are per framework: rank.py).
PER_WORKLOAD = [k for k, c in CRITERIA.items() if c.measure is not None]


def normalize_rows(crit: Criterion, values: Mapping[str, np.ndarray], samples: int) -> dict[str, np.ndarray]:
    """Each group's ratio to the best group, column by column (one column per resample)."""
    names = list(values)
    if not names:
        return {}
    table = np.stack([values[g] for g in names])  # groups x samples
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


def interval(samples: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    """The central ``confidence`` share of the resampled values, widened to include ``point``."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return point, point
    tail = (1.0 - confidence) / 2.0 * 100.0
    # With "never reached" (inf) among the samples, pick observed values rather than interpolate.
    method = "linear" if np.all(np.isfinite(samples)) else "inverted_cdf"
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], method=method)
    return float(min(lo, point)), float(max(hi, point))


def geometric_mean(rows: list[np.ndarray]) -> np.ndarray:
    """Geometric mean across ``rows`` (workloads), column by column; 0 if any is 0, inf if any is inf."""
    if len(rows) == 1:
        return np.array(rows[0], dtype=float)  # one workload: its figures exactly, as before workloads
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.mean(np.log(np.stack(rows)), axis=0))


@dataclass
class WorkloadScores:
    """One workload's figures, for each measured criterion and each group that ran it."""

    runs: WorkloadRuns
    values: dict[str, dict[str, float | None]]  # criterion -> group -> median over its seeds here (None: missing)
    value_intervals: dict[str, dict[str, tuple[float, float]]]
    ratios: dict[str, dict[str, float | None]]  # criterion -> group -> ratio to the best group here; {} if not scored
    ratio_intervals: dict[str, dict[str, tuple[float, float]]]
    boot_values: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)
    boot_ratios: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)

    @property
    def label(self) -> str:
        return self.runs.label


@dataclass
class Aggregate:
    workloads: list[WorkloadScores]  # scored ones first, then those left out (values, no ratios)
    counted: dict[str, dict[str, list[str]]]  # criterion -> group -> labels of the workloads in its aggregate
    comparable: dict[str, bool]  # criterion -> every group's aggregate is over workloads it shares with the others
    shared: dict[str, dict[str, bool]]  # criterion -> group -> its aggregate is over workloads shared with the others
    values: dict[str, dict[str, float | None]]  # criterion -> group -> geometric mean of its values there
    value_samples: dict[str, dict[str, np.ndarray]]
    scores: dict[str, dict[str, float | None]]  # criterion -> group -> geometric mean of its ratios there
    score_samples: dict[str, dict[str, np.ndarray]]
    include_partial: bool
    samples: int  # bootstrap resamples (0: no intervals)


def _measure_group(d: GroupData, idx: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
    """Criterion -> (point value, one value per resample ``idx`` row) of one group's runs."""
    out = {}
    for k in PER_WORKLOAD:
        measure = CRITERIA[k].measure
        out[k] = (float(measure(d, np.arange(d.n)[None, :])[0]), measure(d, idx))  # type: ignore[misc]
    return out


def _score_workload(runs: WorkloadRuns, rng: np.random.Generator, samples: int, confidence: float, pool: ThreadPoolExecutor) -> WorkloadScores:
    idx = {g: rng.integers(0, d.n, (samples, d.n)) for g, d in runs.groups.items()}
    # The groups' measures in threads: numpy's sorts and gathers, most of the time, release the GIL.
    measured = dict(zip(runs.groups, pool.map(lambda g: _measure_group(runs.groups[g], idx[g]), runs.groups)))
    ws = WorkloadScores(runs, {}, {}, {}, {})
    for k in PER_WORKLOAD:
        crit = CRITERIA[k]
        points, boot = {}, {}
        for g in runs.groups:
            point, boot[g] = measured[g][k]
            points[g] = None if math.isnan(point) else point
        ws.values[k], ws.boot_values[k] = points, boot
        ws.value_intervals[k] = {g: interval(boot[g], confidence, v) for g, v in points.items() if v is not None}
        if not runs.scored:
            continue
        present = [g for g, v in points.items() if v is not None]
        ratio = normalize_rows(crit, {g: np.array([points[g]]) for g in present}, 1)
        ws.ratios[k] = {g: float(ratio[g][0]) for g in present}
        ws.boot_ratios[k] = normalize_rows(crit, {g: boot[g] for g in present}, samples)
        ws.ratio_intervals[k] = {g: interval(ws.boot_ratios[k][g], confidence, ws.ratios[k][g]) for g in present}  # type: ignore[arg-type]
    return ws


def _counted(crit: Criterion, group: str, scored: list[WorkloadScores], include_partial: bool) -> tuple[list[WorkloadScores], bool]:
    """The workloads in ``group``'s aggregate for ``crit``, and whether it shares them with the others."""
    key = crit.key
    has = lambda w, g: w.values[key].get(g) is not None  # noqa: E731
    mine = [w for w in scored if has(w, group)]
    if include_partial:
        shared = [w for w in mine if sum(has(w, g) for g in w.runs.groups) >= 2 or len(w.runs.expected) == 1]
    else:
        shared = [w for w in mine if all(has(w, g) for g in w.runs.expected)]
    chosen, comparable = (shared, True) if shared else (mine, not mine)  # nothing shared: shown, never ranked on
    if crit.direction == "lower":
        informative = [w for w in chosen if any(math.isfinite(v) for v in w.values[key].values() if v is not None)]
        chosen = informative or chosen
    return chosen, comparable


def aggregate(coverage: Coverage, samples: int, confidence: float, seed: int) -> Aggregate:
    """Every workload's figures, and each group's aggregate per measured criterion."""
    rng = np.random.default_rng(seed)
    # Scored workloads draw their resamples first: a workload left out cannot shift their intervals.
    with ThreadPoolExecutor(max_workers=2) as pool:
        workloads = [_score_workload(w, rng, samples, confidence, pool) for w in coverage.workloads]
    scored = [w for w in workloads if w.runs.scored]
    agg = Aggregate(workloads, {}, {}, {}, {}, {}, {}, {}, coverage.include_partial, samples)
    for k in PER_WORKLOAD:
        crit = CRITERIA[k]
        for name in (agg.counted, agg.shared, agg.values, agg.value_samples, agg.scores, agg.score_samples):
            name[k] = {}
        for g in coverage.groups:
            chosen, agg.shared[k][g] = _counted(crit, g, scored, coverage.include_partial)
            agg.counted[k][g] = [w.label for w in chosen]
            if not chosen:
                agg.values[k][g] = agg.scores[k][g] = None
                agg.value_samples[k][g] = agg.score_samples[k][g] = np.full(samples, np.nan)
                continue
            agg.values[k][g] = float(geometric_mean([np.array([w.values[k][g]]) for w in chosen])[0])
            agg.scores[k][g] = float(geometric_mean([np.array([w.ratios[k][g]]) for w in chosen])[0])
            agg.value_samples[k][g] = geometric_mean([w.boot_values[k][g] for w in chosen])
            agg.score_samples[k][g] = geometric_mean([w.boot_ratios[k][g] for w in chosen])
        agg.comparable[k] = all(agg.shared[k].values())
    return agg
