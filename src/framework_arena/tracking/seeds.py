"""Seed-aggregated learning curves on a sweep's parent run: one line per configuration, a band over its seeds.

A shoot-out of three frameworks over five seeds draws fifteen tangled curves in MLflow's chart
view; here the trials that differ only in ``trainer.seed`` make one group, drawn as the mean
validation accuracy and loss per epoch with a min-max band (``curves.BAND``). Logged as
``plots/seed_curves.png`` and, with the figures behind it, ``seed_curves.csv``.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from framework_arena.metric_names import metric_history
from framework_arena.tracking.curves import BAND, seed_curves

if TYPE_CHECKING:
    from framework_arena.tracking.handle import RunHandle

#: The metrics drawn (a trial logged before the sections has them under their flat names).
METRICS = ("val/accuracy", "val/loss")
SEED = "trainer.seed="


def groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Run ids of the finished (or skipped: already finished) jobs, by their overrides without
    the seed; each label keeps only the overrides that differ between groups."""
    by_key: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for row in rows:
        if row["status"] in ("FINISHED", "SKIPPED") and row.get("run_id"):
            key = tuple(o for o in str(row["overrides"]).split() if not o.startswith(SEED))
            by_key[key].append(row["run_id"])
    common = set.intersection(*(set(k) for k in by_key)) if by_key else set()
    return {" ".join(o for o in key if o not in common) or "all trials": ids for key, ids in by_key.items()}


def aggregate(histories: Sequence[Mapping[int, float]]) -> list[tuple[int, float, float, float, int]]:
    """Per epoch: ``(epoch, mean, min, max, trials)`` over the histories that reached it (NaNs left out)."""
    out = []
    for epoch in sorted({e for h in histories for e in h}):
        values = [h[epoch] for h in histories if epoch in h and not math.isnan(h[epoch])]
        if values:
            out.append((epoch, sum(values) / len(values), min(values), max(values), len(values)))
    return out


def _history(handle: RunHandle, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in metric_history(handle.client, run_id, key)}


def log_seed_curves(handle: RunHandle, rows: Sequence[Mapping[str, Any]], title: str) -> dict[str, dict[str, list[tuple[int, float, float, float, int]]]]:
    """Reads each group's trial histories, logs ``plots/seed_curves.png`` and ``seed_curves.csv``
    on ``handle``'s run; returns the curves (label -> metric -> rows). Nothing is logged without a finished trial."""
    curves = {label: {key: aggregate([_history(handle, run_id, key) for run_id in ids]) for key in METRICS} for label, ids in groups(rows).items()}
    if not curves:
        return curves
    csv = io.StringIO()
    csv.write("group,metric,epoch,mean,min,max,trials\n")
    for label, metrics in curves.items():
        for key, points in metrics.items():
            for epoch, mean, low, high, n in points:
                csv.write(f'"{label}",{key},{epoch},{mean!r},{low!r},{high!r},{n}\n')
    handle.log_text(csv.getvalue(), "seed_curves.csv")
    handle.client.log_figure(handle.run_id, seed_curves(curves, f"{title}: mean over seeds, band {BAND}"), "plots/seed_curves.png")
    return curves
