"""How much of the trial's cores other work took while it trained, measured in the trial's process.

Measured over ``trainer.fit`` as a whole (warm-up, validation and the timed windows alike: a
stall anywhere in it can move the figures), on the cores the trial is pinned to:

- ``contention/other_share``: CPU time the kernel counted busy on those cores (``/proc/stat``,
  per CPU) minus the trial's own CPU time, over wall time x cores. Other processes, the kernel's
  work for them, the launching process too (it relays metrics: a few ms per epoch).
- ``contention/own_share``: the trial's own CPU time (all its threads) over wall time x threads: near 1
  when its threads ran all the time; low when they waited for a core (or for I/O, or idled).
- ``contention/steal_share``: time the hypervisor gave the cores' virtual CPUs to other machines.
- ``contention/cgroup_throttled_s``: seconds the cgroup was throttled by its CPU quota (``cpu.stat``).
- ``contention/loadavg_start`` / ``contention/loadavg_end``: the 1-minute load average around ``fit``.
- ``contention/resolution``: what the busy figure may be off by, as a share: ``/proc/stat`` counts
  in clock ticks (10 ms), so each read is exact to about a tick; :data:`RESOLUTION_TICKS` ticks
  over wall time x cores. 0.2% of a 10 s fit on 1 core, but 20% of a 0.1 s one.
- ``gpu_other_processes``: on a GPU with the NVML bindings (``pynvml``) installed, other
  processes holding the trial's GPU.

The trial is **contended** (tag ``arena.contended=true``, the reason in
``arena.contended_reason``) when others took more than :data:`OTHER_SHARE_LIMIT` of its cores'
time (``contention/other_share + contention/steal_share``) beyond the resolution, when the cgroup
throttled it for more than :data:`THROTTLE_LIMIT` of the wall time, or when another process used
its GPU. Without the resolution a 2-epoch MLP (fit 0.1 s on 1 core) was flagged by a 3-tick
reading: a flag must be more than the counter's rounding.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Sequence

#: Others' share of the trial's cores above which its speed figures are not trusted. A quiet
#: machine leaves the launcher, interrupts and daemons a few per cent; a second trial or a hog on
#: the same core takes 50% or more.
OTHER_SHARE_LIMIT = 0.20
#: Clock ticks the busy figure may be off by over a measurement (a tick per read, two reads; a
#: busy loop pinned to one core read at most one tick of "other work" over 0.05-1 s windows).
RESOLUTION_TICKS = 2.0
#: Share of the wall time the cgroup's quota may throttle the trial before it counts as contended.
THROTTLE_LIMIT = 0.10

_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def _cpu_ticks(cores: Sequence[int]) -> tuple[float, float]:
    """(busy, steal) seconds summed over ``cores`` since boot, from ``/proc/stat``."""
    busy = steal = 0.0
    wanted = {f"cpu{c}" for c in cores}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return float("nan"), float("nan")
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
            busy += v[0] + v[1] + v[2] + v[5] + v[6]
            steal += v[7]
    return busy / _TICK, steal / _TICK


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return r.ru_utime + r.ru_stime


def _throttled_s() -> float | None:
    try:
        for line in Path("/sys/fs/cgroup/cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "throttled_usec":
                return int(value) / 1e6
    except (OSError, ValueError):
        pass
    return None


def _gpu_others() -> int | None:
    """Other processes on this trial's GPU, from NVML; None without pynvml or a GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(visible)) if visible.isdigit() else pynvml.nvmlDeviceGetHandleByUUID(visible)
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle) + pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)
            return len({p.pid for p in procs} - {os.getpid()})
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML, no GPU, a driver mismatch: nothing to measure
        return None


class Meter:
    """Call :meth:`start` before the measured part and :meth:`stop` after; :meth:`stop` returns
    the metrics and tags (``arena.contended``, ``arena.contended_reason``).

    Args:
        cores: the cores the process is pinned to.
        threads: the trial's thread count (``trainer.threads``, resolved).
        gpu: whether the trial trains on a GPU (then NVML is asked about other processes).
    """

    def __init__(self, cores: Sequence[int], threads: int, gpu: bool = False) -> None:
        self.cores = list(cores)
        self.threads = max(1, threads)
        self.gpu = gpu
        self._start: tuple[float, float, float, float, float | None, float, int | None] | None = None

    def start(self) -> None:
        busy, steal = _cpu_ticks(self.cores)
        gpu = _gpu_others() if self.gpu else None
        self._start = (time.perf_counter(), _own_cpu_s(), busy, steal, _throttled_s(), os.getloadavg()[0], gpu)

    def stop(self) -> tuple[dict[str, float], dict[str, str]]:
        assert self._start is not None, "Meter.stop() before start()"
        wall0, own0, busy0, steal0, thr0, load0, gpu0 = self._start
        busy1, steal1 = _cpu_ticks(self.cores)
        wall = max(time.perf_counter() - wall0, 1e-9)
        own = _own_cpu_s() - own0
        capacity = wall * len(self.cores)
        metrics = {
            "contention/other_share": max(0.0, (busy1 - busy0) - own) / capacity,
            "contention/own_share": own / (wall * self.threads),
            "contention/steal_share": (steal1 - steal0) / capacity,
            "contention/resolution": RESOLUTION_TICKS / _TICK / capacity,
            "contention/loadavg_start": load0,
            "contention/loadavg_end": os.getloadavg()[0],
        }
        thr1 = _throttled_s()
        if thr0 is not None and thr1 is not None:
            metrics["contention/cgroup_throttled_s"] = thr1 - thr0
        if self.gpu:
            gpu1 = _gpu_others()
            if gpu0 is not None or gpu1 is not None:
                metrics["gpu_other_processes"] = float(max(gpu0 or 0, gpu1 or 0))
        reasons = []
        others = metrics["contention/other_share"] + metrics["contention/steal_share"]
        resolution = metrics["contention/resolution"]
        if others > OTHER_SHARE_LIMIT + resolution:
            reasons.append(
                f"other work took {others:.0%} of the trial's cores {self.cores} over {wall:.2f} s "
                f"(limit {OTHER_SHARE_LIMIT:.0%} + {resolution:.0%} the measurement's resolution)"
            )
        if metrics.get("contention/cgroup_throttled_s", 0.0) > THROTTLE_LIMIT * wall:
            reasons.append(f"the cgroup's CPU quota throttled it {metrics['contention/cgroup_throttled_s']:.2f} s of {wall:.2f} s")
        if metrics.get("gpu_other_processes", 0.0) > 0:
            reasons.append(f"{metrics['gpu_other_processes']:.0f} other process(es) on its GPU")
        tags = {"arena.contended": str(bool(reasons)).lower()}
        if reasons:
            tags["arena.contended_reason"] = "; ".join(reasons)
        return metrics, tags
