"""What makes two runs' figures comparable: their workload.

A workload is everything a trial trains except the framework (what is compared) and the seeds
(what the bootstrap resamples): the architecture's whole spec (every ``model.*`` param, not just its
name), the data (``data.*``: name, size, shape ...), the optimizer, the trainer's settings (batch
size, epochs, threads ...), the precision, the compile mode, the device and, where a run logged
one, the machine (tag ``arena.machine``). Throughput of an MLP and of a CNN, or at batch 64 and
batch 512, are different workloads: compare ranks frameworks within each, then aggregates.

Written once, here; a pure function of a run's params and ``arena.*`` tags, so a store compares the
same anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

# Params that are not the workload: where results go and how a sweep treats a trial (tracking,
# arena, platform), the framework compared (framework.*; its compile switch is read below), and the
# params the fields below replace with what really ran.
NOT_WORKLOAD_SECTIONS = ("tracking.", "arena.", "platform.", "framework.")
REPLACED = ("model.name", "data.name", "trainer.device", "trainer.precision")


@dataclass(frozen=True, order=True)
class Workload:
    """A workload's identity: sorted ``(name, value)`` pairs, hashable, compared field by field."""

    fields: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "?") -> str:
        return dict(self.fields).get(name, default)

    @property
    def model(self) -> str:
        return self.get("model")

    @property
    def data(self) -> str:
        return self.get("data")

    def without(self, name: str) -> Workload:
        """The same workload with one field left out (e.g. the data size, to find its family)."""
        return Workload(tuple(f for f in self.fields if f[0] != name))

    def describe(self) -> str:
        """Every field, ``name=value``, for the report."""
        return ", ".join(f"{k}={v}" for k, v in self.fields)


def _device(text: str) -> str:
    """``cuda:0`` (torch) and ``gpu:0`` (TensorFlow) are the same kind of device: ``gpu``."""
    kind = text.split(":")[0].lower()
    return "gpu" if kind in ("cuda", "gpu") else kind


def _compile(params: Mapping[str, str], tags: Mapping[str, str]) -> str | None:
    """The compile mode asked for (``framework.compile``), not the tag: ``arena.compile`` says what
    ran, and Keras on jax always runs under XLA; that is its way of running the same workload."""
    if "framework.compile" in params:
        return str(params["framework.compile"]).lower()
    if tags.get("arena.compile"):
        return "false" if tags["arena.compile"] == "off" else "true"
    return None


def workload_of(params: Mapping[str, str], tags: Mapping[str, str]) -> Workload:
    """The workload of a run from its params and ``arena.*`` tags (see the module docstring)."""
    fields = {k: str(v) for k, v in params.items() if not k.startswith(NOT_WORKLOAD_SECTIONS) and k not in REPLACED and "seed" not in k.rpartition(".")[2]}
    fields["model"] = tags.get("arena.model") or params.get("model.name", "?")
    fields["data"] = tags.get("arena.data") or params.get("data.name", "?")
    device = tags.get("arena.device") or params.get("trainer.device")
    if device and device != "auto":
        fields["device"] = _device(device)
    precision = tags.get("arena.precision") or params.get("trainer.precision")
    if precision:
        fields["precision"] = precision
    compile_mode = _compile(params, tags)
    if compile_mode is not None:
        fields["compile"] = compile_mode
    if tags.get("arena.machine"):
        fields["machine"] = tags["arena.machine"]
    return Workload(tuple(sorted(fields.items())))


def labels(workloads: Iterable[Workload]) -> dict[Workload, str]:
    """Short, distinct names: ``model/data``, plus the fields that tell apart workloads sharing it."""
    by_base: dict[str, list[Workload]] = {}
    for w in sorted(set(workloads)):
        by_base.setdefault(f"{w.model}/{w.data}", []).append(w)
    out = {}
    for base, members in by_base.items():
        names = sorted({k for w in members for k, _ in w.fields} - {"model", "data"})
        varying = [k for k in names if len({w.get(k, "-") for w in members}) > 1]
        for w in members:
            out[w] = " ".join([base] + [f"{k}={w.get(k, '-')}" for k in varying])
    return out
