"""Platform job modes: what a job leaves behind for the platform that runs it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

PLATFORMS = ("auto", "none", "domino")
DOMINO_STATS = "dominostats.json"
#: The trial metrics Domino's job dashboard shows as columns.
TRIAL_STATS = ("test_accuracy", "val_accuracy", "test_loss", "train_samples_per_s", "fit_time_s", "num_params")


def active(platform: Mapping[str, Any]) -> str:
    """The job mode in force: ``platform.name``, with ``auto`` detected from the environment."""
    name = platform.get("name", "auto")
    if name == "auto":
        return "domino" if os.environ.get("DOMINO_RUN_ID") else "none"
    return name


def tracking_for(platform: Mapping[str, Any], tracking: Mapping[str, Any]) -> dict[str, Any]:
    """``tracking`` with the platform's own tracking server when it sets one.

    Domino jobs get ``MLFLOW_TRACKING_URI`` from the platform; with the embedded default
    (``tracking=local``) that URI wins, so runs land where the platform looks for them.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if active(platform) == "domino" and uri and tracking.get("name") == "local":
        return {**tracking, "uri": uri}
    return dict(tracking)


def write_stats(platform: Mapping[str, Any], stats: Mapping[str, Any], folder: str | os.PathLike[str] = ".") -> Path | None:
    """Writes ``dominostats.json`` (a flat object of finite numbers) in domino mode; returns its path."""
    if active(platform) != "domino":
        return None
    flat = {k: float(v) for k, v in stats.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}
    path = Path(folder) / DOMINO_STATS
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    return path
