"""The scaling curve: each framework's throughput and peak memory against the size its runs vary.

The size is the param the runs vary (coverage.size_dimension: ``data.num_samples`` first, then
``trainer.batch_size``); a *family* is a workload but its size, so a sweep over sizes and batch
sizes gives one curve per batch size. A point is one workload's seed medians
(``train_throughput``, ``peak_memory``). The large_data criterion scores the point at the largest
size every framework ran (coverage._mark_largest); this module says how the curve got there: from
the smallest to the largest size every framework ran in the family, throughput and peak memory at
the largest / at the smallest. Written once, here, for the criterion's note, ``scaling.csv`` and
the scaling figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median
from typing import Sequence

from framework_arena.compare.aggregate import WorkloadScores
from framework_arena.compare.workload import Workload, labels


@dataclass
class Point:
    size: float
    throughput: float  # samples/s, median over the runs (NaN: not logged)
    memory: float  # memory/peak_rss_mb, median over the runs
    runs: int
    common: bool  # every compared framework ran this size (a scored workload)


@dataclass
class Curve:
    family: str  # the workload but its size, labelled distinctly among the families
    group: str
    points: list[Point] = field(default_factory=list)  # by size

    def change(self) -> tuple[float, float, float, float] | None:
        """``(smallest, largest, throughput ratio, memory ratio)`` over the sizes every framework ran;
        None with fewer than two such sizes."""
        common = [p for p in self.points if p.common]
        if len(common) < 2:
            return None
        lo, hi = common[0], common[-1]
        ratio = lambda a, b: b / a if a > 0 and not math.isnan(a) and not math.isnan(b) else math.nan  # noqa: E731
        return lo.size, hi.size, ratio(lo.throughput, hi.throughput), ratio(lo.memory, hi.memory)

    def describe(self) -> str:
        change = self.change()
        if change is None:
            return ""
        lo, hi, speed, memory = change
        ratio = lambda r: "not logged" if math.isnan(r) else f"x{r:.2f}"  # noqa: E731
        return f"{self.family}: from {lo:,.0f} to {hi:,.0f}, throughput {ratio(speed)}, peak memory {ratio(memory)}"


def _value(value: float | None) -> float:
    return math.nan if value is None else float(value)


def size_key(workloads: Sequence[WorkloadScores]) -> str | None:
    return next((d.size_key for w in workloads for d in w.runs.groups.values() if d.size_key), None)


def curves(workloads: Sequence[WorkloadScores]) -> list[Curve]:
    """One curve per family and group, over every workload (those not every framework ran too)."""
    key = size_key(workloads)
    if not key:
        return []
    family_of = {w.label: w.runs.workload.without(key) for w in workloads}
    names = labels(family_of.values())
    out: dict[tuple[Workload, str], Curve] = {}
    for w in workloads:
        family = family_of[w.label]
        for g, d in w.runs.groups.items():
            size = float(d.sizes[0]) if d.n else math.nan
            if math.isnan(size):
                continue
            curve = out.setdefault((family, g), Curve(names[family], g))
            speed, memory = _value(w.values["train_throughput"].get(g)), _value(w.values["peak_memory"].get(g))
            curve.points.append(Point(size, speed, memory, d.n, w.runs.scored))
    for curve in out.values():
        curve.points.sort(key=lambda p: p.size)
    return sorted(out.values(), key=lambda c: (c.family, c.group))


def notes(workloads: Sequence[WorkloadScores], group: str) -> list[str]:
    """How ``group``'s throughput and memory changed with size, one line per family."""
    return [text for c in curves(workloads) if c.group == group and (text := c.describe())]


def input_note(workloads: Sequence[WorkloadScores], group: str) -> str:
    """Whether ``group``'s streamed runs (``data=shards``) waited on their input pipeline, and how much.

    Over the runs at the largest common size (all of them when no size varies): the median
    ``input/share`` (training throughput / the pipeline's own, no model: the share of the
    training time the input alone would take) and how many runs the trial tagged
    ``arena.input_bound=true``. Empty when no run streamed.
    """
    runs = [d for w in workloads if (d := w.runs.groups.get(group)) is not None]
    largest = [d for d in runs if d.largest_common_size is not None]  # set on the largest common size's workloads only
    shares, bound = [], 0
    for d in largest or runs:
        for trial in d.trials:
            if "input/share" in trial.metrics:
                shares.append(trial.metrics["input/share"])
                bound += trial.tags.get("arena.input_bound") == "true"
    if not shares:
        return ""
    verdict = f"input-bound in {bound} of {len(shares)} runs" if bound else f"not input-bound (0 of {len(shares)} runs)"
    return f"streamed input: {verdict}; training ran at {median(shares):.0%} of the input pipeline's own throughput (input/share)"
