"""What identifies a trial and a sweep's records in MLflow: the config hash, the run name, the
flattened params and the job records a sweep files as tags. Written once; the launching side
writes them, compare and the sweep summary read them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Mapping

from framework_arena.names import label

# Config sections that say where results go or how a sweep treats a trial, not what is trained:
# left out of the config hash.
NOT_HASHED = ("tracking", "arena", "platform")
#: Prefix of the tags a sweep's jobs file on its parent run: ``arena.job.<5-digit number>``.
JOB_TAG = "arena.job."


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A stable hash of what a trial trains (everything but where results go)."""
    payload = {k: v for k, v in cfg.items() if k not in NOT_HASHED}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys for nested mappings: ``{"optim": {"lr": 1e-3}}`` gives ``("optim.lr", 0.001)``."""
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{dotted}.")
        else:
            yield dotted, value


def run_name(cfg: Mapping[str, Any]) -> str:
    """``<framework>[-<backend>]-<model>-<data>-s<seed>``, or ``tracking.run_name`` when set."""
    if cfg["tracking"].get("run_name"):
        return str(cfg["tracking"]["run_name"])
    fw = cfg["framework"]
    return f"{label(fw['name'], fw.get('backend'))}-{cfg['model']['name']}-{cfg['data']['name']}-s{cfg['trainer']['seed']}"


def job_tag(job_num: int) -> str:
    return f"{JOB_TAG}{job_num:05d}"


def job_records(tags: Mapping[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """A sweep run's job records, ``(job number, record)`` in job order, from its tags."""
    return sorted(((int(k[len(JOB_TAG) :]), json.loads(v)) for k, v in tags.items() if k.startswith(JOB_TAG)), key=lambda item: item[0])
