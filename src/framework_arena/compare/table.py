"""The criteria tables: one value per criterion and group, across workloads and on each.

The aggregate table (``measure_all``) is what the ranking, the article and the reports read:
for a criterion measured per workload, a group's ``Cell.value`` is the geometric mean of its values
over the workloads counted for it (aggregate.py), in the criterion's unit (for one workload: the
median over its seeds, as before workloads); ``Cell.n`` the runs behind it; ``Cell.note`` which
workloads. License and API size are per framework, read from what its runs logged; static criteria
come from config. ``workload_table`` is one workload's table, seed medians only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from framework_arena.compare import scaling
from framework_arena.compare.aggregate import Aggregate, WorkloadScores
from framework_arena.compare.criteria import CRITERIA, Cell, Criterion, code_size_cell, fmt, license_cell, serve_note, tensorboard_cell
from framework_arena.compare.measures import GroupData

WHY_MISSING = {
    "reproducibility": "needs 2 seeds or more of one configuration",
    "large_data": "needs runs at 2 dataset or batch sizes or more",
    "time_to_target": "no epoch history loaded",
    "deployment": "not served: arena-compare deploy=true serves each group's best model",
}


def static_value(entry: Mapping[str, Any], group: str) -> float | None:
    """A static value for a group: ``keras-jax`` falls back to ``keras``; ``torch/cnn`` to ``torch``."""
    values = entry.get("values") or {}
    base = group.split("/")[0]
    for key in (group, base, base.split("-")[0]):
        if key in values and values[key] is not None:
            return float(values[key])
    return None


def _size_note(ws: WorkloadScores) -> str:
    d = next(iter(ws.runs.groups.values()))
    return f"{d.size_key}={d.largest_common_size:g}" if d.size_key and d.largest_common_size is not None else ""


def _aggregate_cell(crit: Criterion, group: str, agg: Aggregate) -> Cell:
    value = agg.values[crit.key][group]
    if value is None:
        why = WHY_MISSING.get(crit.key, "metric not logged by these runs")
        streamed = scaling.input_note(agg.workloads, group) if crit.key == "large_data" else ""
        return Cell(None, "missing", note="; ".join(n for n in (why, streamed) if n))
    chosen = [w for w in agg.workloads if w.label in agg.counted[crit.key][group]]
    display = fmt(value, crit.unit)
    never = sum(math.isinf(w.values[crit.key][group]) for w in chosen)  # type: ignore[arg-type]
    if never and never < len(chosen):
        display = f"not reached on {never} of {len(chosen)} workloads"
    notes = [] if agg.shared[crit.key][group] else ["not compared: measured only on workloads where another framework has no value"]
    if len(chosen) > 1:
        notes.append(f"geometric mean over {len(chosen)} workloads: " + ", ".join(w.label for w in chosen))
    if crit.key == "large_data":
        notes += sorted({n for n in map(_size_note, chosen) if n})
        notes += scaling.notes(agg.workloads, group)  # how it got there: the curve from the smallest common size
        notes += [n for n in [scaling.input_note(agg.workloads, group)] if n]  # and whether streaming waited on input
    return Cell(value, display, sum(w.runs.groups[group].n for w in chosen), "; ".join(notes))


def measure_all(groups: Mapping[str, GroupData], static: Mapping[str, Any], agg: Aggregate) -> dict[str, dict[str, Cell]]:
    """criterion key -> group -> Cell, for every criterion (missing ones included)."""
    table: dict[str, dict[str, Cell]] = {}
    for key, crit in CRITERIA.items():
        row: dict[str, Cell] = {}
        for name, g in groups.items():
            if crit.measure is not None:
                row[name] = _aggregate_cell(crit, name, agg)
                if key == "deployment" and row[name].value is not None:  # how it was served, and the rest deploy=true measured
                    row[name].note = "; ".join(n for n in (serve_note(g), row[name].note) if n)
            elif key == "code_size":
                row[name] = code_size_cell(g)
            elif key == "license":
                row[name] = license_cell(g)
            elif key == "tensorboard":
                row[name] = tensorboard_cell(g)
            else:
                entry = static.get(key) or {}
                value = static_value(entry, name)
                row[name] = Cell(value, fmt(value, crit.unit) if value is not None else "missing", note=f"{entry.get('source', '')} ({entry.get('date', '')})")
        table[key] = row
    return table


def workload_table(ws: WorkloadScores) -> dict[str, dict[str, Cell]]:
    """One workload: per measured criterion and group that ran it, the median over its seeds there."""
    table: dict[str, dict[str, Cell]] = {}
    for key, row in ws.values.items():
        crit = CRITERIA[key]
        table[key] = {
            g: Cell(v, fmt(v, crit.unit), ws.runs.groups[g].n, WHY_MISSING.get(key, "metric not logged by these runs") if v is None else "")
            for g, v in row.items()
        }
    return table
