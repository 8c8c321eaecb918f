"""Read-only access to a store for ``arena-compare``: finds experiments and runs, never writes."""

from __future__ import annotations

from typing import Any, Sequence

import mlflow
from mlflow.tracking import MlflowClient

from framework_arena.metric_names import flat_name
from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import resolve_uri

NOTHING = "Nothing was compared."


class Reader:
    """Read access to a store for ``arena-compare``: finds experiments and runs, never creates them.

    The server unreachable, or refusing the credentials or the READ permission, raises
    :class:`~framework_arena.errors.TrackingUnavailable` (``AccessDenied``), one line.

    Args:
        uri: tracking URI (a relative SQLite path is made absolute).
    """

    PAGE = 50000  # MLflow's largest search page

    def __init__(self, uri: str) -> None:
        self.uri = resolve_uri(uri)
        self.guard = Guard(self.uri)
        with self.guard.required(NOTHING):  # a SQLite store is opened (and checked) here: locked, or not a database
            self.client = MlflowClient(self.uri)
        self.names: dict[str, str] = {}  # experiment id -> name, for the messages

    def experiment_ids(self, names: Sequence[str]) -> dict[str, str | None]:
        """Name -> id, None for a name this store does not hold (or holds as deleted)."""
        found: dict[str, str | None] = {}
        for name in names:
            with self.guard.required(NOTHING, name, "READ"):
                exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                self.names[exp.experiment_id] = name
            found[name] = exp.experiment_id if exp is not None and exp.lifecycle_stage == "active" else None
        return found

    def search(self, experiment_ids: Sequence[str], filter_string: str, max_results: int, order_by: Sequence[str] = ()) -> list[Any]:
        """Every run matching ``filter_string``, page by page, up to ``max_results``."""
        runs: list[Any] = []
        token = None
        label = ", ".join(self.names.get(i, i) for i in experiment_ids)
        while len(runs) < max_results:
            with self.guard.required(NOTHING, label, "READ"):
                page = self.client.search_runs(
                    list(experiment_ids),
                    filter_string=filter_string,
                    max_results=min(self.PAGE, max_results - len(runs)),
                    order_by=list(order_by) or None,
                    page_token=token,
                )
            runs.extend(page)
            token = page.token
            if not token:
                break
        return runs

    def get(self, run_id: str) -> Any | None:
        try:
            return self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            return None

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one metric, in step order; under its flat name for a run logged
        before the sections (``metric_names``)."""
        with self.guard.required(NOTHING):
            found = self.client.get_metric_history(run_id, key)
            old = flat_name(key)
            if not found and old:
                found = self.client.get_metric_history(run_id, old)
            return sorted((m.step, m.value) for m in found)
