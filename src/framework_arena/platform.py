"""Platform job modes: what a job leaves behind for the platform that runs it."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

DOMINO_STATS = "dominostats.json"
DOMINO_ARTIFACTS = "/mnt/artifacts"  # a Git-based project's artifacts folder, synced back after a job
#: The trial metrics Domino's job dashboard shows as columns.
TRIAL_STATS = ("test/accuracy", "val/accuracy", "test/loss", "speed/samples_per_s", "speed/fit_time_s", "model/num_params")


def active(platform: Mapping[str, Any]) -> str:
    """The job mode in force: ``platform.name``, with ``auto`` detected from the environment."""
    name = platform.get("name", "auto")
    if name == "auto":
        return "domino" if os.environ.get("DOMINO_RUN_ID") else "none"
    return name


def tracking_for(platform: Mapping[str, Any], tracking: Mapping[str, Any]) -> dict[str, Any]:
    """``tracking`` as the platform needs it.

    Domino jobs get ``MLFLOW_TRACKING_URI`` from the platform; with the embedded default
    (``tracking=local``) that URI wins, so runs land where the platform looks for them. Domino's
    experiment names are unique across the whole deployment, so the experiment becomes
    ``<experiment>-<DOMINO_PROJECT_OWNER>-<DOMINO_PROJECT_NAME>``: one per project, shared by
    its collaborators, never colliding with another project's.
    """
    out = dict(tracking)
    if active(platform) != "domino":
        return out
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and out.get("name") == "local":
        out["uri"] = uri
    out["experiment"] = domino_experiment(out.get("experiment") or "framework-arena")
    return out


def domino_experiment(name: str) -> str:
    """``name`` made unique per Domino project; unchanged when it already carries the suffix."""
    suffix = "-".join(v for v in (os.environ.get("DOMINO_PROJECT_OWNER"), os.environ.get("DOMINO_PROJECT_NAME")) if v)
    return name if not suffix or name.endswith(f"-{suffix}") else f"{name}-{suffix}"


def artifacts_dir() -> Path | None:
    """Domino's artifacts folder: ``DOMINO_ARTIFACTS_DIR``, else ``/mnt/artifacts`` when it exists."""
    if os.environ.get("DOMINO_ARTIFACTS_DIR"):
        return Path(os.environ["DOMINO_ARTIFACTS_DIR"])
    return Path(DOMINO_ARTIFACTS) if Path(DOMINO_ARTIFACTS).is_dir() else None


def publish(platform: Mapping[str, Any], paths: Iterable[str | os.PathLike[str]], folder: str = "") -> list[Path]:
    """Copies files (a report, a summary) into the platform's artifacts folder, in domino mode.

    Args:
        platform: the ``platform`` config section.
        paths: files to copy; folders are copied whole.
        folder: a sub-folder of the artifacts folder to copy into (created).

    Returns:
        The copies, or ``[]`` outside domino mode or without an artifacts folder.
    """
    target = artifacts_dir() if active(platform) == "domino" else None
    if target is None:
        return []
    target = target / folder
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for src in map(Path, paths):
        dst = target / src.name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
        copies.append(dst)
    return copies


def write_stats(platform: Mapping[str, Any], stats: Mapping[str, Any], folder: str | os.PathLike[str] = ".") -> Path | None:
    """Writes ``dominostats.json`` (a flat object of finite numbers) in domino mode; returns its path."""
    if active(platform) != "domino":
        return None
    flat = {k: float(v) for k, v in stats.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}
    path = Path(folder) / DOMINO_STATS
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    return path
