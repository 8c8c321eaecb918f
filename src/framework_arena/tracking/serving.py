"""What the serving benchmark needs from MLflow: a run's model on disk, its facts, the figures back.

The scoring server itself (``mlflow models serve``) runs in a process of its own, started by
``framework_arena.deploy``; this module only reads the store and writes the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import yaml
from mlflow.tracking import MlflowClient

from framework_arena.tracking.models import run_model_id
from framework_arena.tracking.store import global_store, metric_batch, tag_batch


def fetch_model(uri: str, run_id: str, dst: Path) -> tuple[str, Path] | None:
    """Downloads the run's LoggedModel into ``dst``; returns ``(model_id, folder)``, or None without a model.

    The server is then started on the folder: it needs no access to the store, and the size on
    disk is that of exactly what it serves.
    """
    import mlflow

    client = MlflowClient(uri)
    model_id = run_model_id(client, run_id)
    if model_id is None:
        return None
    dst.mkdir(parents=True, exist_ok=True)
    with global_store(uri):  # models:/ URIs resolve through the global store only
        folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=str(dst))
    return model_id, Path(folder)


def model_facts(folder: Path) -> dict[str, Any]:
    """What a deploying user sees in the model folder: flavor, Keras back end, size, pinned requirements,
    and the serving input example (``{"inputs": ...}``) MLflow wrote."""
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    flavors = mlmodel.get("flavors", {})
    loader = flavors.get("python_function", {}).get("loader_module", "")
    requirements = folder / "requirements.txt"
    pinned = [line for line in requirements.read_text().splitlines() if "==" in line] if requirements.exists() else []
    example = folder / "serving_input_example.json"
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {
        "loader_module": loader,
        "keras_backend": (flavors.get("keras") or {}).get("keras_backend"),
        "size_mb": size / 1e6,
        "pinned_requirements": len(pinned),
        "serving_input": json.loads(example.read_text()) if example.exists() else None,
    }


def log_serving(uri: str, run_id: str, model_id: str | None, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    """Logs the ``serve_*`` figures on the trial's run (and links them to its model) with the ``arena.serve_*`` tags."""
    client = MlflowClient(uri)
    step = 0
    batch = metric_batch(metrics, step)
    if model_id:
        from mlflow.entities import Metric

        batch = [Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id) for m in batch]
    client.log_batch(run_id, metrics=batch, tags=tag_batch(tags))
