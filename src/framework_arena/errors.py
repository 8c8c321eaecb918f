"""Errors shared by the launching process and the trial's child, importable without MLflow."""

from __future__ import annotations


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server did not answer within ``tracking.timeout_s`` and ``tracking.retries``.

    The message names the tracking URI and, when something was trained, the folder its model and
    metrics were saved in instead.
    """

    arena_reason = "tracking"  # the run's arena.failure_reason


class AccessDenied(TrackingUnavailable):
    """The tracking server refused the request: the credentials (HTTP 401) or the permission on
    an experiment (HTTP 403).

    A kind of :class:`TrackingUnavailable` (the server cannot record the work, nothing was
    trained), so every place that reports that error in one line and exits 1 reports this one
    too. The message names the server, and the variables that carry credentials (401) or the
    experiment and the permission missing (403); never the secret.
    """

    arena_reason = "auth"


class ConfigError(ValueError):
    """One or more config values are wrong; the message names each key, value and expectation."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
