"""A sweep's TensorBoard event files, downloaded side by side for ``tensorboard --logdir``."""

from __future__ import annotations

import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from framework_arena.tracking.store import resolve_uri


def download_sweep_events(uri: str, parent_run_id: str, dest: str) -> list[Path]:
    """Downloads each trial's ``tensorboard/`` artifacts of the sweep ``parent_run_id`` into
    ``dest/<run name>-<run id prefix>/`` (TensorBoard names its runs after these folders).

    Args:
        uri: the tracking URI; parent_run_id: the sweep's parent run (or any run with child runs).

    Returns:
        The folders made, one per trial that has event files.
    """
    client = MlflowClient(resolve_uri(uri))
    parent = client.get_run(parent_run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=50000)
    out = []
    for run in sorted(children, key=lambda r: r.info.start_time):
        if not any(a.path == "tensorboard" for a in client.list_artifacts(run.info.run_id)):
            continue
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", run.info.run_name or "trial")
        folder = Path(dest) / f"{name}-{run.info.run_id[:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(run.info.run_id, "tensorboard", str(folder))
        out.append(folder / "tensorboard")
    return out
