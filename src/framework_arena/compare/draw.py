"""Drawing the report's figures, here or in worker processes, from their recorded calls.

plots.py decides what each figure shows and records it as a :class:`Sketch`: the Figure and Axes
calls, in order, with their arguments (numbers, strings, arrays). :func:`draw` replays a sketch on a
real matplotlib Figure and saves the PNG, so the picture is the one the calls would have made
directly. A large comparison hands its sketches to worker processes (:class:`Painter`), which import
matplotlib while the main process aggregates and ranks, and draw while it writes the other files.
This module imports only numpy and matplotlib (and the latter when drawing), so a worker starts fast.

    python -m framework_arena.compare.draw   # a worker: pickled sketches on stdin, PNG files out
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("arena.compare")

#: Comparisons of this many runs or more draw their figures in worker processes: below it, starting
#: a process (and importing matplotlib there) costs more than the figures.
PARALLEL_FROM = 1000


class _Target:
    """Stands for the Figure (``index`` None) or one of its Axes while recording."""

    def __init__(self, sketch: Sketch, index: int | None) -> None:
        self._sketch, self._index = sketch, index

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "add_subplot" and self._index is None:  # the one call whose result is drawn on
                return self._sketch._axes("add_subplot", args, kwargs, ())
            self._sketch.calls.append((self._index, name, args, kwargs))
            return None

        return call


class Sketch:
    """A figure as the calls that draw it, saved to ``path``; the same three entry points as
    pyplot's (``subplots``, ``figure``, ``close``), on a Figure of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls: list[tuple[int | None, str, tuple, dict]] = []  # (axes index or None for the figure, method, args, kwargs)
        self._count = 0

    def _axes(self, method: str, args: tuple, kwargs: dict, shape: tuple[int, ...]) -> Any:
        first = self._count
        size = int(np.prod(shape)) if shape else 1
        self._count += size
        self.calls.append((None, method, args, kwargs))
        if not shape:
            return _Target(self, first)
        grid = np.empty(shape, dtype=object)
        for i in range(size):
            grid.flat[i] = _Target(self, first + i)
        return grid

    def subplots(self, nrows: int = 1, ncols: int = 1, *, figsize: Any = None, squeeze: bool = True, **kwargs: Any) -> tuple[Any, Any]:
        self.calls.append((None, "__figure__", (), {"figsize": figsize}))
        shape = (nrows, ncols)
        if squeeze:  # as Figure.subplots: dimensions of 1 dropped
            shape = tuple(n for n in shape if n != 1)
        return _Target(self, None), self._axes("subplots", (nrows, ncols), dict(kwargs, squeeze=squeeze), shape)

    def figure(self, figsize: Any = None) -> Any:
        self.calls.append((None, "__figure__", (), {"figsize": figsize}))
        return _Target(self, None)

    def close(self, fig: Any) -> None:
        """Nothing to close: the figure is drawn later, by :func:`draw`."""

    @property
    def cost(self) -> int:
        return len(self.calls)


def draw(sketch: Sketch) -> Path:
    """Replays ``sketch`` on a bare matplotlib Figure (no pyplot: no backend chosen, no global state,
    so a notebook keeps its own) and returns the saved file."""
    from matplotlib.figure import Figure

    fig: Any = None
    axes: list[Any] = []
    for index, method, args, kwargs in sketch.calls:
        if method == "__figure__":
            fig = Figure(**kwargs)
        elif index is None and method in ("subplots", "add_subplot"):
            made = getattr(fig, method)(*args, **kwargs)
            axes += list(np.asarray(made, dtype=object).flat) if method == "subplots" else [made]
        else:
            getattr(fig if index is None else axes[index], method)(*args, **kwargs)
    return sketch.path


class Painter:
    """Draws sketches: in this process (``workers=0``), or split over worker processes started at
    once, so they import matplotlib while the caller goes on. :meth:`wait` returns when every file
    is written; a worker that fails leaves its sketches to be drawn here."""

    def __init__(self, workers: int) -> None:
        self.procs: list[subprocess.Popen] = []
        self.sent: list[list[Sketch]] = []
        if workers <= 0:
            return
        # The worker imports this very package, whatever sys.path the caller set up (a notebook, a test).
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        for _ in range(workers):
            try:
                self.procs.append(
                    subprocess.Popen([sys.executable, "-m", "framework_arena.compare.draw"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                )
            except OSError as e:  # no process to be had: drawn here
                log.debug("No figure worker (%s): the figures are drawn in this process", e)
                break
        self.sent: list[list[Sketch]] = [[] for _ in self.procs]

    def draw(self, sketches: Sequence[Sketch]) -> None:
        """Starts drawing ``sketches``; the longest first, each to the least loaded worker."""
        if not self.procs:
            for s in sketches:
                draw(s)
            return
        for s in sorted(sketches, key=lambda s: -s.cost):
            min(self.sent, key=lambda batch: sum(x.cost for x in batch)).append(s)
        for proc, batch in zip(self.procs, self.sent):
            try:
                assert proc.stdin is not None
                proc.stdin.write(pickle.dumps(batch))
                proc.stdin.close()
            except OSError:  # the worker died before its work came: wait() draws its batch here
                pass

    def wait(self) -> None:
        for proc, batch in zip(self.procs, self.sent):
            assert proc.stderr is not None
            err = proc.stderr.read()  # stdin is closed already: read what it says, then its end
            proc.wait()
            if proc.returncode != 0:
                log.warning("A figure worker failed (exit %s): drawing its figures here. %s", proc.returncode, err.decode(errors="replace")[-500:])
                for s in batch:
                    draw(s)
        self.procs = []

    def close(self) -> None:
        """Ends workers left running (the report failed before :meth:`wait`)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        self.procs = []


def _work() -> None:
    import matplotlib.figure  # noqa: F401 - imported while the caller ranks, before the sketches come
    from matplotlib.backends import backend_agg  # noqa: F401

    for sketch in pickle.loads(sys.stdin.buffer.read()):
        draw(sketch)


if __name__ == "__main__":
    _work()
