"""Where a trial's wall time goes: contiguous phases, each process timing its own.

A short trial spends most of its wall time outside training (imports, the store, the model's
export), so every run records its phases as ``phase/<name>_s`` metrics (logged once by the
launching side, ``runner._finish``) and ``arena arena.phases=true`` prints them as a table.

The launcher's phases follow one another, and so do the child's; the two processes overlap (the
child imports its framework while the launcher creates the run), so each process's phases sum
to no more than its own wall time, and the launcher's to no more than ``phase/total_s``.
"""

from __future__ import annotations

import time
from typing import Mapping

PREFIX = "phase/"

#: What each phase covers, in the order they happen; the table's second column.
LAUNCHER = {
    "launch": "Python start, imports, Hydra composition, validation (single runs only)",
    "run_create": "the store opened, the run created, params and config.yaml logged",
    "warm_up": "what the plots and the model upload need loaded, while the child imports (before it trains)",
    "child": "waiting for the child, from its start to its result, relaying what it logs",
    "model_upload": "the model the child saved, logged as the run's LoggedModel (while the child runs its probe)",
    "plots": "the learning curves drawn and logged, while the child exports its model",
    "exit": "the child's exit after its result",
    "metrics_flush": "the last training metrics sent",
    "finish": "final metrics linked to the model, the description, outcome tags",
}
CHILD = {
    "child_start": "interpreter start and the trial received",
    "import": "the framework imported",
    "data": "the dataset loaded and split",
    "build": "spec, initial weights, trainer setup and build",
    "tracking_start": "the run awaited, start tags, facts and model summaries handed to the launcher (no store here)",
    "training": "fit",
    "evaluation": "test evaluation (and the input pipeline alone, for streamed data)",
    "inference": "inference timing",
    "final_logging": "the final figures handed to the launcher",
    "model_logging": "the framework's files of the model written in its flavor's layout (the launcher completes the folder)",
    "probe": "the debugging probe",
}


class Phases:
    """Contiguous wall-clock phases of one process: :meth:`mark` closes the phase that began at
    the previous mark (or at ``start``, a ``time.perf_counter()`` value)."""

    def __init__(self, start: float | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter() if start is None else start

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.add(name, now - self._last)
        self._last = now

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, seconds)


def process_age_s() -> float:
    """Seconds since this process started (its creation time as the kernel records it)."""
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def as_metrics(phases: Mapping[str, float]) -> dict[str, float]:
    """``phase/<name>_s`` for each phase."""
    return {f"{PREFIX}{name}_s": float(seconds) for name, seconds in phases.items()}


def table(launcher: Mapping[str, float], child: Mapping[str, float], total: float) -> str:
    """The phases as a plain-text table: the launcher's, then the child's (which overlap them)."""
    lines = [f"{'phase':<16}{'seconds':>9}  what", f"launcher (total {total:.1f} s)"]
    lines += _rows(launcher, LAUNCHER)
    if child:
        lines.append(f"child ({sum(child.values()):.1f} s, overlapping the launcher's run_create and child)")
        lines += _rows(child, CHILD)
    return "\n".join(lines)


def _rows(seconds: Mapping[str, float], described: Mapping[str, str]) -> list[str]:
    names = [*(n for n in described if n in seconds), *(n for n in seconds if n not in described)]
    return [f"  {name:<14}{seconds[name]:>9.2f}  {described.get(name, '')}" for name in names]
