"""The machine a trial ran on, as tags: speed figures from different machines are not mixed.

``arena.machine`` is a short fingerprint (10 hex digits) of the machine's part in speed: CPU
model, number of cores used, memory, GPU and driver, CPU or GPU. Two runs with the same fingerprint
ran on the same kind of machine with the same share of it, whatever their framework (its build is
the tag ``arena.framework_build``); ``arena-compare`` warns when the runs it
ranks on speed carry different ones. The parts are tags of their own, for people.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Sequence


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def memory_available() -> int:
    """Bytes a new process may still take: the machine's available memory, or less under a cgroup limit."""
    import psutil

    available = int(psutil.virtual_memory().available)
    try:  # cgroup v2: a container's limit is lower than what the machine shows
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text().strip())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def gpu() -> str:
    """``name, driver`` of the first visible GPU (nvidia-smi), or ``none``."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        return out.splitlines()[0].strip() if out else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def framework_build(framework: str, backend: str | None) -> str:
    """The framework as built: version and CUDA (the framework is already imported in the child)."""
    if framework == "torch" or backend == "torch":
        import torch

        build = f"torch {torch.__version__} cuda {torch.version.cuda or 'none'}"
    elif framework == "tensorflow" or backend == "tensorflow":
        import tensorflow as tf

        info = tf.sysconfig.get_build_info()
        build = f"tensorflow {tf.__version__} cuda {info.get('cuda_version') or 'none'}"
    elif backend == "jax":
        import jax

        build = f"jax {jax.__version__} {jax.default_backend()}"
    else:
        build = framework
    if framework == "keras":
        import keras

        build = f"keras {keras.__version__} on {build}"
    return build


def tags(cores: Sequence[int], framework: str, backend: str | None, device: str) -> dict[str, str]:
    """The fingerprint tags of this process's machine; ``device`` is what the trainer uses."""
    mem = memory_gb()
    gpu_name = gpu() if device.lower().startswith(("cuda", "gpu")) else "none"
    parts = {
        "arena.cpu_model": cpu_model(),
        "arena.memory_gb": "unknown" if mem is None else f"{mem:g}",
        "arena.gpu": gpu_name,
        "arena.framework_build": framework_build(framework, backend),
    }
    # The machine only: the framework's build is a tag of its own, not part of the fingerprint, since
    # arena-compare holds frameworks against each other only within one machine (a workload's key).
    # The device by kind: torch says cuda:0 where TensorFlow says gpu:0 for the same GPU.
    kind = "gpu" if device.lower().startswith(("cuda", "gpu")) else "cpu"
    key = "|".join([parts["arena.cpu_model"], f"{len(cores)} cores", parts["arena.memory_gb"], gpu_name, kind])
    return {"arena.machine": hashlib.sha1(key.encode()).hexdigest()[:10], **parts}
