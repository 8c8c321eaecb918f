"""A trial's LoggedModel: logged from the folder the child saved, its final metrics linked, the Model Registry.

MLflow links to a LoggedModel only the metrics already logged at the step the model was logged
at. A trial's figures reach the store through the launcher's relay while the model is logged
(the epoch metrics are sent in batches, in a thread), so the last epoch's figures, ``speed/fit_time_s`` (step 0) and the probe's score
(logged after the model) would be missing. :func:`link_final_metrics` is the one owner of the
link: the launcher calls it once every metric has arrived (``runner._link_model``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from mlflow.entities import LoggedModelOutput, Metric
from mlflow.tracking import MlflowClient

from framework_arena.tracking.store import param_batch

#: Sampled while training, not a trial's figure: left off the model.
NOT_LINKED_PREFIXES = ("system/",)


def link_final_metrics(client: MlflowClient, run_id: str, model_id: str) -> int:
    """Links each of the run's metrics, at its last value and step, to ``model_id``; returns how many.

    Metrics the model already has at that step (``Model.log`` linked them) are skipped; the run's
    own history is not changed (MLflow skips a metric that is already there).
    """
    run = client.get_run(run_id)
    linked = {(m.key, m.step) for m in (client.get_logged_model(model_id).metrics or [])}
    batch = [
        Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id)
        for m in run.data._metric_objs  # the latest value of each key, with its step
        if not m.key.startswith(NOT_LINKED_PREFIXES) and (m.key, m.step) not in linked
    ]
    for i in range(0, len(batch), 1000):  # MLflow's limit per request
        client.log_batch(run_id, metrics=batch[i : i + 1000])
    return len(batch)


def log_saved_model(
    client: MlflowClient,
    run: Any,
    folder: Path,
    name: str,
    step: int,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    pending: Any = None,
) -> str:
    """Logs ``folder`` (a model folder completed by ``flavors.complete_model``) as the run's LoggedModel; returns its id.

    What ``Model.log`` does, from a saved folder: the LoggedModel created with exactly ``params``
    (redacted, as the run's) and the run's ``arena.*`` tags (``tags`` over the run's own, so
    ``search_logged_models`` finds it by framework, model, data), recorded as the run's output at
    ``step``, its ``MLmodel`` naming the run, the model and its location, its files uploaded, then READY.
    ``pending``: a PENDING LoggedModel of this run to complete instead of creating one.
    """
    run_id = run.info.run_id
    model = pending
    if model is None:
        arena_tags = {k: v for k, v in {**run.data.tags, **tags}.items() if k.startswith("arena.")}
        model_params = {p.key: p.value for p in param_batch(params)}
        model = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id, tags=arena_tags, params=model_params)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(shutil.copytree(folder, Path(tmp) / "model"))
        meta = Model.load(str(copy))
        meta.run_id, meta.model_id, meta.model_uuid, meta.artifact_path = run_id, model.model_id, model.model_id, model.artifact_location
        meta.save(str(copy / "MLmodel"))
        client.log_model_artifacts(model.model_id, str(copy))
    client.finalize_logged_model(model.model_id, "READY")
    return model.model_id


def default_registered_name(experiment: str, label: str, model: str) -> str:
    """``<experiment>-<framework>[-<backend>]-<model>``: one registered model per variant and architecture."""
    return f"{experiment}-{label}-{model}"


def register(client: MlflowClient, model_id: str, name: str, run_id: str, tags: Mapping[str, str] | None = None) -> Any:
    """Registers the LoggedModel ``model_id`` as a new version of ``name`` (created if missing); returns the version."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Registered by framework-arena (tracking.register=true).")
    return client.create_model_version(name, f"models:/{model_id}", run_id=run_id, tags=dict(tags or {}), model_id=model_id)


def run_model_id(client: MlflowClient, run_id: str) -> str | None:
    """The id of the LoggedModel the run logged (its newest), or None."""
    outputs = client.get_run(run_id).outputs
    models = list(outputs.model_outputs) if outputs is not None else []
    return models[-1].model_id if models else None


def promote(uri: str, run_id: str, default_name: str, comparison_run_id: str | None, alias: str = "champion") -> tuple[str, str] | None:
    """Sets ``alias`` on the registered version of the run's model, registering it under
    ``default_name`` first when it has none; tags that version with the comparison run's id.

    Returns ``(name, version)``, or None when the run logged no model.
    """
    client = MlflowClient(uri)
    model_id = run_model_id(client, run_id)
    if model_id is None:
        return None
    versions = [v for v in client.search_model_versions(f"run_id = '{run_id}'") if getattr(v, "model_id", None) in (model_id, None)]
    version = versions[0] if versions else register(client, model_id, default_name, run_id)
    client.set_registered_model_alias(version.name, alias, version.version)
    if comparison_run_id:
        client.set_model_version_tag(version.name, version.version, "arena.comparison_run", comparison_run_id)
    return version.name, str(version.version)
