"""Which speed figures a comparison may trust: contended runs out, scattered groups flagged.

A trial tags itself ``arena.contended=true`` when other work took more than 20% of its cores
while it trained, beyond what the counters can resolve (``contention.py``). Its speed figures
measure the machine, not the framework, so by default :func:`screen` takes them out of the speed,
latency, start-up and time-to-target criteria (its quality figures still count);
``select.include_contended=true`` keeps them. What was left out, and why, goes to the terminal
and the report.

A group is **unstable** when its speed figures scatter: the runs' ``speed/samples_per_s`` vary
by more than :data:`UNSTABLE_CV` (coefficient of variation), or a run's own windows spread by
more than :data:`UNSTABLE_SPREAD` (``(p90 - p10) / median``). Its speed cells say so, and their
verdicts are not conclusive. Runs carrying different ``arena.machine`` fingerprints are warned
about: figures from different machines or core counts do not rank frameworks.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Mapping, Sequence

from framework_arena.compare.query import Trial

#: The criteria a contended run is left out of (they read the metrics below).
SPEED_CRITERIA = ("train_throughput", "time_to_target", "inference_latency", "large_data", "startup")
SPEED_METRICS = (
    "speed/samples_per_s",
    "speed/samples_per_s_p10",
    "speed/samples_per_s_p90",
    "speed/epoch_samples_per_s",
    "infer/latency_ms_p50",
    "infer/latency_ms_p95",
    "infer/samples_per_s",
    "speed/import_time_s",
    "speed/time_to_first_step_s",
    "speed/compile_time_s",
    "speed/fit_time_s",
)
SPEED_HISTORY = ("speed/epoch_time_s",)  # time to target sums it
#: Runs' speed/samples_per_s scatter (std / mean) above which a group's speed is unstable.
UNSTABLE_CV = 0.25
#: A run's own window spread ((p90 - p10) / median) above which its group's speed is unstable.
UNSTABLE_SPREAD = 0.5


def screen(trials: Sequence[Trial], include_contended: bool) -> list[str]:
    """Takes the speed figures out of contended runs (unless ``include_contended``); returns the
    notes that name them. Call it after the histories are loaded."""
    contended = [t for t in trials if t.tags.get("arena.contended") == "true"]
    if not contended:
        return []
    if include_contended:
        return [f"{len(contended)} contended run(s) kept in the speed criteria (select.include_contended=true): " + _names(contended)]
    for t in contended:
        for key in SPEED_METRICS:
            t.metrics.pop(key, None)
        for key in SPEED_HISTORY:
            t.history.pop(key, None)
    return [
        f"Left out of the speed criteria ({', '.join(SPEED_CRITERIA)}), quality still counted: {len(contended)} contended run(s), "
        + _names(contended)
        + " (select.include_contended=true keeps them)"
    ]


def _names(trials: Sequence[Trial]) -> str:
    return "; ".join(f"{t.run_name} ({t.run_id[:8]}): {t.tags.get('arena.contended_reason') or 'arena.contended=true'}" for t in trials)


def unstable(trials: Sequence[Trial]) -> str | None:
    """Why a group's speed figures are unstable, or None."""
    speeds = [t.metrics["speed/samples_per_s"] for t in trials if not math.isnan(t.metrics.get("speed/samples_per_s", math.nan))]
    if len(speeds) >= 2:
        cv = statistics.pstdev(speeds) / statistics.fmean(speeds)
        if cv > UNSTABLE_CV:
            return f"its runs' speed/samples_per_s scatter by {cv:.0%} (limit {UNSTABLE_CV:.0%})"
    for t in trials:
        m = t.metrics
        if m.get("speed/samples_per_s") and "speed/samples_per_s_p10" in m and "speed/samples_per_s_p90" in m:
            spread = (m["speed/samples_per_s_p90"] - m["speed/samples_per_s_p10"]) / m["speed/samples_per_s"]
            if spread > UNSTABLE_SPREAD:
                return f"run {t.run_name}'s timed windows spread by {spread:.0%} (limit {UNSTABLE_SPREAD:.0%})"
    return None


def mark(groups: Mapping[str, Sequence[Trial]], table: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Marks unstable groups' speed cells *not conclusive*; returns the notes, with a warning when
    the runs come from different machine fingerprints."""
    notes = []
    for name, trials in groups.items():
        why = unstable(trials)
        if why is None:
            continue
        notes.append(f"{name}: speed unstable, {why}: its speed verdicts are not conclusive")
        for key in SPEED_CRITERIA:
            cell = table.get(key, {}).get(name)
            if cell is not None and cell.value is not None:
                cell.display += " (unstable)"
                cell.unstable = True
                cell.note = (cell.note + "; " if cell.note else "") + "unstable: not conclusive"
    machines: dict[str, set[str]] = {}
    for name, trials in groups.items():
        for t in trials:
            if "speed/samples_per_s" in t.metrics or "infer/latency_ms_p50" in t.metrics:
                machines.setdefault(t.tags.get("arena.machine", "unknown"), set()).add(name)
    if len(machines) > 1:
        where = "; ".join(f"{m}: {', '.join(sorted(g))}" for m, g in sorted(machines.items()))
        notes.append(
            f"WARNING: speed figures from {len(machines)} machine fingerprints (arena.machine: CPU, cores used, memory, GPU, build): {where}. "
            "Speed differences between them may be the machines'; select one (select.filter=\"tags.`arena.machine` = '...'\")."
        )
    return notes
