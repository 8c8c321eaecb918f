"""A run's offline copy, and bringing it back into the store (``arena-sync``).

When the server goes away during a trial, what the store missed is kept in
``<hydra output dir>/arena-offline/<run_id>/`` by its two owners:

- ``metrics.json``, by the launcher's :class:`~framework_arena.tracking.relay.RunRelay`: the run id, the
  tracking URI, every metric with its step and timestamp, the tags, and the model's name, step
  and params when ``model/`` (the model in its MLflow flavor's format) holds it; ``plots/``;
- ``outcome.json``, by the launching side (:func:`write_outcome`): the status the run should
  end with and the tags that say why.

:func:`sync` uploads a copy into the run it belongs to. It is idempotent: a metric the run
already has at that step, an artifact already there, a model already READY are left as they are,
so syncing twice (or a copy whose first epochs did reach the server) doubles nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from framework_arena.tracking.handle import STATUS
from framework_arena.tracking.models import link_final_metrics, log_saved_model
from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import resolve_uri, tag_batch

OFFLINE_DIR = "arena-offline"
METRICS_FILE = "metrics.json"
OUTCOME_FILE = "outcome.json"
#: The tags of a run that did not finish; dropped when the copy says it did.
FAILURE_TAGS = ("arena.failure_reason", "arena.error")


def write_outcome(folder: str, uri: str, run_id: str, status: str, tags: Mapping[str, str]) -> Path:
    """Records the status (and its tags) the run should end with, for :func:`sync`."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "tracking_uri": uri, "status": status, "end_time": int(time.time() * 1000), "tags": dict(tags)}
    (path / OUTCOME_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return path / OUTCOME_FILE


def find(paths: Iterable[str | Path]) -> list[Path]:
    """The offline copies in ``paths``: each a copy itself, or a folder (a sweep dir, Hydra's
    outputs, a Domino artifacts folder) searched for ``arena-offline/<run_id>/``."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        candidates = [path] if _is_copy(path) else [p for d in sorted(path.rglob(OFFLINE_DIR)) if d.is_dir() for p in sorted(d.iterdir())]
        found.update((p.resolve(), None) for p in candidates if _is_copy(p))
    return list(found)


def _is_copy(path: Path) -> bool:
    return path.is_dir() and ((path / METRICS_FILE).is_file() or (path / OUTCOME_FILE).is_file())


@dataclass
class Synced:
    """What :func:`sync` uploaded into one run (zeros and False: it was all there already)."""

    run_id: str
    uri: str
    metrics: int = 0
    artifacts: int = 0
    model: bool = False
    tags: int = 0
    status: str | None = None  # the status set, None when the run had it already


def read_copy(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics.json, outcome.json) of a copy, each empty when absent."""
    kept = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else {}
    outcome = json.loads((folder / OUTCOME_FILE).read_text()) if (folder / OUTCOME_FILE).is_file() else {}
    return kept, outcome


def sync(folder: Path, uri: str | None = None) -> Synced:
    """Uploads the offline copy in ``folder`` into its run; returns what it added.

    Args:
        folder: ``arena-offline/<run_id>``.
        uri: the store, when not the one the copy names (a server behind another address, or
            one whose URI carried credentials, which the copy keeps redacted).

    Raises:
        TrackingUnavailable: the server does not answer (nothing is half-done that a second
            sync would not finish).
    """
    kept, outcome = read_copy(folder)
    run_id = str(kept.get("run_id") or outcome.get("run_id") or folder.name)
    target = resolve_uri(uri or str(outcome.get("tracking_uri") or kept.get("tracking_uri")))
    guard = Guard(target, run_id)
    done = Synced(run_id, target)
    with guard.required(f"Nothing more was uploaded from {folder}; run arena-sync again once the server answers."):
        client = MlflowClient(target)
        run = client.get_run(run_id)
        done.metrics = _metrics(client, run_id, kept.get("metrics", []))
        done.artifacts = _artifacts(client, run_id, folder / "plots", "plots")
        model_id = _model(client, run, folder / "model", kept.get("model") or {}, kept.get("tags", {}))
        done.model = model_id is not None
        if model_id is not None:
            link_final_metrics(client, run_id, model_id)
        status = str(outcome.get("status") or "")
        tags = {**kept.get("tags", {}), **outcome.get("tags", {})}
        current = run.data.tags
        changed = {k: v for k, v in tags.items() if current.get(k) != v}
        if changed:
            client.log_batch(run_id, tags=tag_batch(changed))
        done.tags = len(changed)
        if status == "FINISHED":
            for key in FAILURE_TAGS:
                if key in current:
                    client.delete_tag(run_id, key)
        if status in STATUS and run.info.status != status:
            client.set_terminated(run_id, status, end_time=outcome.get("end_time"))
            done.status = status
    return done


def _metrics(client: MlflowClient, run_id: str, kept: list[Mapping[str, Any]]) -> int:
    """Logs each kept metric the run lacks at its step, with its original timestamp."""
    keys = {m["key"] for m in kept}
    have = {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}
    now = int(time.time() * 1000)
    batch, seen = [], set(have)
    for m in kept:
        if (m["key"], int(m["step"])) in seen:
            continue
        seen.add((m["key"], int(m["step"])))
        batch.append(Metric(m["key"], float(m["value"]), int(m.get("timestamp") or now), int(m["step"])))
    for i in range(0, len(batch), 1000):  # MLflow's limit per request
        client.log_batch(run_id, metrics=batch[i : i + 1000])
    return len(batch)


def _artifacts(client: MlflowClient, run_id: str, folder: Path, artifact_path: str) -> int:
    """Uploads the files of ``folder`` the run does not have under ``artifact_path``."""
    if not folder.is_dir():
        return 0
    have = {a.path for a in client.list_artifacts(run_id, artifact_path)}
    missing = [p for p in sorted(folder.iterdir()) if p.is_file() and f"{artifact_path}/{p.name}" not in have]
    for path in missing:
        client.log_artifact(run_id, str(path), artifact_path)
    return len(missing)


def _model(client: MlflowClient, run: Any, folder: Path, about: Mapping[str, Any], kept_tags: Mapping[str, str]) -> str | None:
    """Logs the kept model as the run's LoggedModel, unless one is READY; returns the new id or None.

    A PENDING model (created, then the server was lost while uploading) is completed rather than
    left beside a second one.
    """
    if not (folder / "MLmodel").is_file():
        return None
    run_id = run.info.run_id
    models = list(client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"))
    if any(str(m.status) == "READY" for m in models):
        return None
    pending = [m for m in models if str(m.status) == "PENDING"]
    return log_saved_model(
        client, run, folder, str(about.get("name") or "model"), int(about.get("step", 0)), about.get("params") or {}, kept_tags, pending[0] if pending else None
    )
