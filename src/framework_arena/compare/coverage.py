"""Which workloads a comparison covers: who ran each, which enter the aggregate, and which do not.

A workload (workload.py) is *covered* when every compared group ran it; with
``group_by=framework_model`` the groups compared on a workload are those of its model. The aggregate
counts the covered workloads only (``aggregate.include_partial=false``, the default); the others are
listed with who ran them and change no score. With ``aggregate.include_partial=true``, a workload two
groups or more ran is scored among those who ran it. A workload one group ran alone is never scored:
there is nobody to be the best against. Groups that share no scored workload with the others are
an error that names them and what each ran, before anything is ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from framework_arena.compare.measures import GroupData
from framework_arena.compare.query import NothingToCompare, Trial
from framework_arena.compare.workload import Workload, labels

SIZE_KEYS = ("data.num_samples", "trainer.batch_size")


class NoCommonWorkload(NothingToCompare):
    """The compared groups share no workload: no figure of one can be held against another's."""


@dataclass
class WorkloadRuns:
    """One workload's runs, per group that ran it."""

    workload: Workload
    label: str  # short and distinct among this comparison's workloads (workload.labels)
    groups: dict[str, GroupData]  # the groups that ran it, each with its runs (seeds) on it
    expected: list[str]  # the groups compared on it: every group; with group_by=framework_model, those of its model
    scored: bool = False  # enters the aggregate

    @property
    def missing(self) -> list[str]:
        """Compared groups that did not run it."""
        return [g for g in self.expected if g not in self.groups]

    @property
    def covered(self) -> bool:
        return not self.missing

    def seeds(self, group: str) -> list[str]:
        return sorted({t.seed for t in self.groups[group].trials}, key=lambda s: (len(s), s))


@dataclass
class Coverage:
    workloads: list[WorkloadRuns]  # the scored ones first, then the others; each by label
    groups: list[str]  # every compared group, sorted
    include_partial: bool
    size_key: str | None  # the size param the runs vary (large_data), if any

    @property
    def scored(self) -> list[WorkloadRuns]:
        return [w for w in self.workloads if w.scored]

    @property
    def left_out(self) -> list[WorkloadRuns]:
        return [w for w in self.workloads if not w.scored]


def size_dimension(trials: Sequence[Trial]) -> str | None:
    """The parameter whose growth the runs cover: dataset size first, then batch size."""
    for key in SIZE_KEYS:
        if len({t.params.get(key) for t in trials if t.params.get(key) is not None}) >= 2:
            return key
    return None


def build_groups(groups: Mapping[str, Sequence[Trial]], target_accuracy: float) -> dict[str, GroupData]:
    """Each group's runs over every workload: for what is per framework (license, API size, curves)."""
    size_key = size_dimension([t for ts in groups.values() for t in ts])
    return {g: GroupData(ts, target_accuracy, size_key) for g, ts in groups.items()}


def _model_of(group: str) -> str | None:
    """``torch/cnn`` (group_by=framework_model) is compared on cnn workloads only."""
    return group.partition("/")[2] or None


def _size(w: Workload, key: str) -> float:
    try:
        return float(w.get(key, "nan"))
    except ValueError:
        return math.nan


def _mark_largest(scored: Sequence[WorkloadRuns], size_key: str) -> None:
    """large_data: in each family of workloads differing only by size, the largest size scored."""
    families: dict[Workload, list[WorkloadRuns]] = {}
    for w in scored:
        families.setdefault(w.workload.without(size_key), []).append(w)
    for members in families.values():
        sizes = {s for s in (_size(w.workload, size_key) for w in members) if not math.isnan(s)}
        if len(sizes) < 2:
            continue  # one size: nothing about growth to measure
        top = max(sizes)
        for w in members:
            if _size(w.workload, size_key) == top:
                for d in w.groups.values():
                    d.largest_common_size = top


def _who_ran(workloads: Sequence[WorkloadRuns], limit: int = 12) -> str:
    lines = [f"{w.label}: " + ", ".join(f"{g} ({d.n} run{'s' if d.n != 1 else ''})" for g, d in w.groups.items()) for w in workloads[:limit]]
    more = f"; and {len(workloads) - limit} more (workloads.csv)" if len(workloads) > limit else ""
    return "; ".join(lines) + more


def _check(cov: Coverage) -> None:
    if len(cov.groups) < 2:
        return
    scored = cov.scored
    lonely = [g for g in cov.groups if not any(g in w.groups for w in scored)]
    if not lonely:
        return
    isolated = [g for g in cov.groups if not any(g in w.groups and len(w.groups) >= 2 for w in cov.workloads)]
    verb = lambda names: f"{', '.join(names)} share{'s' if len(names) == 1 else ''} no workload with"  # noqa: E731
    if not scored and not cov.include_partial:
        what = f"No workload was run by every compared framework ({', '.join(cov.groups)})" + (f": {verb(isolated)} any other" if isolated else "")
    else:
        what = f"{verb(lonely)} the other frameworks"
    others = [g for g in cov.groups if g not in isolated]
    if isolated and len(others) >= 2 and not any("/" in g for g in cov.groups):
        fix = f"leave {', '.join(isolated)} out (select.frameworks=[{','.join(others)}]) or compare {'it' if len(isolated) == 1 else 'them'} apart"
    else:
        fix = "compare them apart (select.frameworks, select.filter)"
    if not cov.include_partial:
        fix += ", or set aggregate.include_partial=true to score each workload among the frameworks that ran it"
    raise NoCommonWorkload(
        f"{what}, so no figure can be held against another's. Workloads and who ran them: {_who_ran(cov.workloads)}. "
        f"Expected the frameworks to share a workload (the same model spec, data, batch size, precision, compile mode, device and machine): {fix}."
    )


def build_coverage(groups: Mapping[str, Sequence[Trial]], target_accuracy: float, include_partial: bool) -> Coverage:
    """Splits each group's runs by workload and decides which workloads are scored.

    Raises:
        NoCommonWorkload: a compared group shares no scored workload with the others.
    """
    names = sorted(groups)
    size_key = size_dimension([t for ts in groups.values() for t in ts])
    buckets: dict[Workload, dict[str, list[Trial]]] = {}
    for g in names:
        for t in groups[g]:
            buckets.setdefault(t.workload, {}).setdefault(g, []).append(t)
    label_of = labels(buckets)
    out = []
    for w, by_group in buckets.items():
        expected = [g for g in names if _model_of(g) in (None, w.model)]
        runs = WorkloadRuns(w, label_of[w], {g: GroupData(by_group[g], target_accuracy, size_key) for g in names if g in by_group}, expected)
        if len(names) == 1:
            runs.scored = True  # one framework: described, not compared
        elif include_partial:
            runs.scored = len(runs.groups) >= 2
        else:
            runs.scored = runs.covered and len(expected) >= 2
        out.append(runs)
    out.sort(key=lambda w: (not w.scored, w.label))
    cov = Coverage(out, names, include_partial, size_key)
    _check(cov)
    if size_key:
        _mark_largest(cov.scored, size_key)
    return cov
