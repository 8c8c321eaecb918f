"""Read-only access to a store for ``arena-compare``: finds experiments and runs, never writes."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import mlflow

from framework_arena.metric_names import flat_name
from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import open_client, resolve_uri

NOTHING = "Nothing was compared."


class Reader:
    """Read access to a store for ``arena-compare``: finds experiments and runs, never creates them.

    The server unreachable, or refusing the credentials or the READ permission, raises
    :class:`~framework_arena.errors.TrackingUnavailable` (``AccessDenied``), one line.

    Args:
        uri: tracking URI (a relative SQLite path is made absolute).
    """

    PAGE = 50000  # MLflow's largest search page
    BULK_RUNS = 500  # run ids per bulk history query: under SQLite's oldest limit of 999 bound variables

    def __init__(self, uri: str) -> None:
        self.uri = resolve_uri(uri)
        self.guard = Guard(self.uri)
        with self.guard.required(NOTHING):  # a SQLite store is opened (and checked) here: locked, or not a database
            self.client = open_client(self.uri)
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
        return [run for page in self.pages(experiment_ids, filter_string, max_results, order_by) for run in page]

    def pages(self, experiment_ids: Sequence[str], filter_string: str, max_results: int, order_by: Sequence[str] = ()) -> Iterator[list[Any]]:
        """The runs of :meth:`search`, one page (up to :attr:`PAGE` runs) at a time: a caller that
        keeps only what it needs of each page never holds every run's MLflow entity at once."""
        count, token = 0, None
        label = ", ".join(self.names.get(i, i) for i in experiment_ids)
        while count < max_results:
            with self.guard.required(NOTHING, label, "READ"):
                page = self.client.search_runs(
                    list(experiment_ids),
                    filter_string=filter_string,
                    max_results=min(self.PAGE, max_results - count),
                    order_by=list(order_by) or None,
                    page_token=token,
                )
            count += len(page)
            token = page.token
            yield list(page)
            if not token:
                break

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

    def histories(self, run_ids: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        """Run id -> metric key -> ``(step, value)`` in step order, for every run and key asked
        (an empty list where the run logged none).

        A SQL store answers one query per key for up to :attr:`BULK_RUNS` runs (MLflow's
        ``get_metric_history_bulk``); other stores (a server, a folder of files) one request per
        run and key, eight at a time."""
        out: dict[str, dict[str, list[tuple[int, float]]]] = {r: {k: [] for k in keys} for r in run_ids}
        bulk = getattr(self.client._tracking_client.store, "get_metric_history_bulk", None)  # SqlAlchemyStore only
        if bulk is None:
            jobs = [(r, k) for r in run_ids for k in keys]
            with ThreadPoolExecutor(max_workers=8) as pool:  # a tracking server answers these in parallel
                for (r, k), hist in zip(jobs, pool.map(lambda job: self.history(*job), jobs)):
                    out[r][k] = hist
            return out
        for k in keys:
            self._bulk(bulk, list(run_ids), k, k, out)
            old = flat_name(k)
            unfound = [r for r in run_ids if not out[r][k]]
            if old and unfound:  # runs logged before the sections hold it under its flat name
                self._bulk(bulk, unfound, old, k, out)
        for per_key in out.values():
            for k in keys:
                per_key[k].sort()  # as history(): step order, then value
        return out

    def _bulk(self, bulk: Any, ids: list[str], logged: str, key: str, out: dict[str, dict[str, list[tuple[int, float]]]]) -> None:
        """Reads the history logged as ``logged`` of ``ids`` into ``out[run][key]``, BULK_RUNS runs a query."""
        for i in range(0, len(ids), self.BULK_RUNS):
            with self.guard.required(NOTHING):
                rows = bulk(ids[i : i + self.BULK_RUNS], logged, sys.maxsize)  # no cap: a history is never cut short
            for row in rows:
                out[row.run_id][key].append((row.step, row.value))
