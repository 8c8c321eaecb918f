"""What every benchmark script shares: the machine's description, medians, the results file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any, Iterable, Sequence

RESULTS = Path(__file__).with_name("results")


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and framework versions, load average now."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    versions = {}
    for dist in ("torch", "tensorflow", "tensorflow-cpu", "keras", "jax", "mlflow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def med(values: Iterable[float]) -> float:
    values = list(values)
    return median(values) if values else float("nan")


def run_json(cmd: Sequence[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Runs ``cmd`` (its stderr passes through as progress) and parses its last stdout line."""
    proc = subprocess.run(list(cmd), env=env, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(
    path: Path, title: str, command: str, mach: dict[str, Any], sections: Sequence[str], figures: Sequence[dict[str, Any]], load_end: Sequence[float]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}, {mach['cores']} cores ({mach['usable_cores']} usable), {mach['memory_gib']} GiB",
        f"- OS: {mach['os']}, Python {mach['python']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in mach["versions"].items()),
        f"- Load average (1, 5, 15 min) at start: {mach['loadavg']}, at end: {[round(x, 2) for x in load_end]}"
        " (other processes share this machine: figures are medians of alternating pairs)",
        f"- Date: {mach['date']}",
        "",
        *sections,
        "",
        "## Figures (JSON lines)",
        "",
        "```",
        *(json.dumps(f) for f in figures),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))


def python() -> str:
    return sys.executable


def compose_trial(overrides: Sequence[str]) -> Any:
    """A :class:`~framework_arena.trial.Trial` composed from the real config tree and resolved, as
    ``arena`` would: the benchmarks write no config of their own."""
    from hydra import compose, initialize_config_module

    from framework_arena.config import register_configs
    from framework_arena.trial import resolve_trial

    register_configs()
    with initialize_config_module(config_module="framework_arena.conf", version_base="1.3"):
        return resolve_trial(compose(config_name="config", overrides=list(overrides)))
