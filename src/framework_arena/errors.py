"""Errors shared by the launching process and the trial's child, importable without MLflow."""

from __future__ import annotations


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server did not answer within ``tracking.timeout_s`` and ``tracking.retries``.

    The message names the tracking URI and, when something was trained, the folder its model and
    metrics were saved in instead.
    """

    arena_reason = "tracking"  # the run's arena.failure_reason
