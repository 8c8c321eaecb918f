"""Cores as a budget: which cores a trial may use, and a disjoint share of them per parallel trial.

``trainer.threads=0`` means the cores this trial may actually use: the process's CPU affinity
(``taskset``, SLURM, a container's cpuset) cut to the cgroup's CPU quota (cgroup v2 ``cpu.max``,
v1 ``cpu.cfs_quota_us``; Docker ``--cpus``, Kubernetes limits, Domino hardware tiers), divided by
the trials that run in parallel on this host. ``os.cpu_count()`` alone counts cores the trial
cannot have: two joblib trials with every core each oversubscribe them, and torch's OpenMP
threads then spin against each other (2.5x slower on 2 cores, issue 13).

The launching side (``runner.run_trial``) takes its cores with :func:`allocate` before the child
starts: one lock file per core in a per-user folder of the temp dir (``ARENA_CORES_DIR`` moves
it), locked with ``fcntl.flock`` by the launching process for the trial's life. The kernel drops
a flock when its process dies, so a crashed or killed trial cannot leak cores; whichever launcher
runs the jobs (joblib, Ray local, submitit local), trials on one host see the same locks. The
child pins itself to the cores (``os.sched_setaffinity``) before it imports the framework.

How many trials run in parallel comes from the Hydra launcher of the job
(:func:`parallel_trials`): joblib's ``n_jobs`` (-1: all cores), submitit local's
``array_parallelism``; ``ARENA_PARALLEL_TRIALS`` overrides it for launchers arena cannot read
(Ray: set it to the trials Ray runs at once on one host).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

PARALLEL_ENV = "ARENA_PARALLEL_TRIALS"
DIR_ENV = "ARENA_CORES_DIR"


#: What bounds a process's threads, read by OpenMP/MKL (torch, numpy) and TensorFlow at import:
#: set in the environment of a process before it imports a framework.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment variables that hold a framework imported later to ``threads`` threads."""
    return {var: str(threads) for var in THREAD_VARS}


def affinity() -> list[int]:
    """The core ids this process may run on (every core where the OS has no affinity)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The cgroup's CPU quota in cores (``200000 100000`` -> 2.0); None when unlimited or unknown."""
    try:
        quota, period = Path(root, "cpu.max").read_text().split()[:2]  # cgroup v2
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int(Path(root, "cpu", "cpu.cfs_quota_us").read_text())
        period_us = int(Path(root, "cpu", "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def budget() -> int:
    """Cores this process may really use: its affinity cut to the cgroup quota (at least 1)."""
    cores = len(affinity())
    quota = cpu_quota()
    return max(1, min(cores, math.floor(quota))) if quota else cores


def parallel_trials(launcher: Mapping[str, Any] | None) -> int:
    """Trials a Hydra launcher runs at once on this host: 1 for the basic (sequential) launcher.

    Args:
        launcher: the job's ``hydra.launcher`` node (``_target_`` and its options).
    """
    forced = os.environ.get(PARALLEL_ENV)
    if forced:
        return max(1, int(forced))
    launcher = launcher or {}
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n_jobs = int(launcher.get("n_jobs") or -1)
        cores = len(affinity())
        return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)  # joblib: -1 = all cores, -2 = all but one
    if "submitit" in target.lower() and "Local" in target:
        return max(1, min(int(launcher.get("array_parallelism") or 1), len(affinity())))
    return 1


def share(parallel: int) -> int:
    """Threads for one of ``parallel`` trials when ``trainer.threads=0``: its share of the budget."""
    return max(1, budget() // max(1, parallel))


def lock_dir() -> Path:
    folder = Path(os.environ.get(DIR_ENV) or Path(tempfile.gettempdir(), f"framework-arena-{os.getuid()}", "cores"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Allocation:
    """The cores a trial runs on; the locks of the ones it owns are held until :meth:`release`."""

    cores: list[int]
    shared: bool  # fewer free cores than threads: some are used by another trial too
    quota: float | None
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    def tags(self) -> dict[str, str]:
        return {
            "arena.cores": ",".join(map(str, self.cores)),
            "arena.cores_count": str(len(self.cores)),
            "arena.cores_shared": str(self.shared).lower(),
            "arena.cpu_quota": "none" if self.quota is None else f"{self.quota:g}",
        }

    def release(self) -> None:
        for f in self._files:
            f.close()  # closing the descriptor drops its flock
        self._files.clear()

    def __enter__(self) -> Allocation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextmanager
def pinned(cores: Sequence[int]) -> Iterator[None]:
    """Runs this process's own work for a trial on the trial's cores, then restores its affinity.

    The launching side works while its trial runs: it creates the run while the child imports,
    relays and sends the metrics, draws the learning curves while the child exports the model.
    Unpinned, that work lands on a parallel trial's core (joblib, Ray local) and slows it: a
    parallel Keras trial ran at 0.67 of its speed alone (bench/fairness.py), and a trial's speed
    figures were screened out as contended. Threads and processes started meanwhile (the metric
    sender) inherit the cores; the child sets its own to the same ones.
    """
    if not hasattr(os, "sched_setaffinity"):  # not Linux: no affinity to set (allocate knows no cores either)
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def allocate(threads: int, slot: int = 0) -> Allocation:
    """Takes ``threads`` free cores of this process's affinity, locked for the trial's life.

    The search starts at the ``slot``-th share (a job's number modulo the parallel trials), so
    parallel jobs land on different cores even when one starts after another ended.

    When fewer are free (more parallel trials x threads than cores), the trial takes the free ones
    and tops them up with busy ones: it still runs, with ``shared=True`` (tag ``arena.cores_shared``).
    """
    import fcntl

    available = affinity()
    want = max(1, min(threads, len(available)))
    folder = lock_dir()
    got: list[int] = []
    files: list[IO[bytes]] = []
    start = (slot * want) % len(available)
    for core in available[start:] + available[:start]:
        if len(got) == want:
            break
        f = open(folder / f"cpu{core}.lock", "ab")  # noqa: SIM115 - held open: the lock lives with it
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        got.append(core)
        files.append(f)
    shared = len(got) < want
    if shared:
        got += [c for c in available if c not in got][: want - len(got)]
        log.warning(
            "Cores shared: this trial wants %d core(s) but only %d of %s are free (other trials hold the rest); "
            "its speed figures compete with theirs (tag arena.cores_shared=true). Lower trainer.threads or the launcher's n_jobs.",
            want,
            len(files),
            available,
        )
    return Allocation(sorted(got), shared, cpu_quota(), files)
