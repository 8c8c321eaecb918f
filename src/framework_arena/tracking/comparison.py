"""A comparison logged back to the store: one run holding the report, its scores and ranks."""

from __future__ import annotations

from typing import Any, Mapping

from framework_arena.tracking.handle import RunHandle


def log_comparison(
    uri: str,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    folder: str,
    experiment_name: str = "",
) -> str:
    """Logs a FINISHED comparison run holding ``folder``'s files as artifacts; returns its id.

    Args:
        uri: tracking URI.
        experiment_id: the experiment the run goes to (the first one compared).
        run_name, tags, params, metrics: the run's name and what it records.
        folder: the written report, logged as the run's artifacts.
        experiment_name: the experiment's name, for the messages (a 403 names it).

    Raises:
        TrackingUnavailable: the server stopped answering (the report stays in ``folder``);
            AccessDenied, a kind of it: the user may not write to the experiment.
        Any other error MLflow raises, after ending the run FAILED.
    """
    handle = RunHandle(uri, experiment_name or None, experiment_id=experiment_id)
    kept = f"The report is kept in {folder} only."
    handle.start(run_name, tags, kept=kept)
    with handle.filling(kept):
        handle.log_params(params)
        handle.log_metrics(metrics)
        handle.log_artifacts(folder)
        handle.end("FINISHED")  # inside: an interrupt before the status is set marks the run KILLED
    return handle.run_id
