"""A trial's LoggedModel after the child logged it: its final metrics linked, the Model Registry.

MLflow links to a LoggedModel only the metrics already logged at the step the model was logged
at. A trial's figures arrive from two processes (the launcher sends the epoch metrics, the child
logs the rest), so the last epoch's figures, ``speed/fit_time_s`` (step 0) and the probe's score
(logged after the model) would be missing. :func:`link_final_metrics` is the one owner of the
link: the launcher calls it once every metric has arrived (``runner._link_model``).
"""

from __future__ import annotations

from typing import Any, Mapping

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

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
