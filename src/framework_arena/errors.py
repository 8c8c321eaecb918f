"""Errors shared by the launching process and the trial's child, importable without MLflow."""

from __future__ import annotations


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server did not answer within ``tracking.timeout_s`` and ``tracking.retries``.

    The message names the tracking URI and, when something was trained, the folder its model and
    metrics were saved in instead.
    """

    arena_reason = "tracking"  # the run's arena.failure_reason


class ConfigError(ValueError):
    """One or more config values are wrong; the message names each key, value and expectation."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
