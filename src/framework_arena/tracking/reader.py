"""Read-only access to a store for ``arena-compare``: finds experiments and runs, never writes."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import mlflow

from framework_arena.metric_names import flat_name, metric_history
from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import open_client, resolve_uri

NOTHING = "Nothing was compared."
#: Read runs from a SQL store's tables (:func:`_sql_pages`) rather than through ``search_runs``;
#: False gives MLflow's own search everywhere (the test of the two paths switches it).
SQL_READS = True
_UNSUPPORTED: list[Any] = []  # the first page of a filter _sql_pages leaves to MLflow


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
        keeps only what it needs of each page never holds every run's MLflow entity at once.

        On a SQL store, in MLflow's default order, the runs are read by :func:`_sql_pages`: the
        same runs and the same entities, about 4 times faster than ``search_runs`` at 10,000 runs (3.3 s
        against 12-13 s on 2 cores)."""
        engine = getattr(self.client._tracking_client.store, "engine", None)  # SqlAlchemyStore only
        label = ", ".join(self.names.get(i, i) for i in experiment_ids)
        if engine is not None and not order_by and SQL_READS:
            sql = _sql_pages(engine, experiment_ids, filter_string, max_results, self.BULK_RUNS)
            with self.guard.required(NOTHING, label, "READ"):
                found = next(sql, None)
            if found is not _UNSUPPORTED:  # else a filter only MLflow's search evaluates: below
                while found is not None:
                    yield found
                    with self.guard.required(NOTHING, label, "READ"):
                        found = next(sql, None)
                return
        count, token = 0, None
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
        """The run, or None when the store holds no run with that id. Anything else raises as the
        other reads do: an unreachable server or a refusal is not "no such run"."""
        with self.guard.required(NOTHING):
            try:
                return self.client.get_run(run_id)
            except mlflow.exceptions.MlflowException as e:
                if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return None
                raise

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one metric, in step order; under its flat name for a run logged
        before the sections (``metric_names``)."""
        with self.guard.required(NOTHING):
            return sorted((m.step, m.value) for m in metric_history(self.client, run_id, key))

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


def _sql_pages(engine: Any, experiment_ids: Sequence[str], filter_string: str, max_results: int, chunk: int) -> Iterator[list[Any]]:
    """The active runs of ``experiment_ids`` matching ``filter_string``, in ``search_runs``' default
    order (start time descending, then run id), as MLflow ``Run`` entities, a page per ``chunk``
    runs read (the caller reduces each page before the next is built: memory stays flat).

    Why not ``search_runs``: on a SQL store it builds an ORM object per run, param, tag and metric
    and expires them all on commit: 13 s for 10,000 runs on 2 cores, 70% of ``arena-compare``'s time
    (bench/compare_scale.py). Here the ids come from the ``runs`` table in that order, the params,
    tags and latest metrics of ``chunk`` runs at a time in one query each (plain rows), and the
    filter is MLflow's own ``SearchUtils.filter`` (the file store's semantics). The first item is
    ``_UNSUPPORTED`` for a filter this cannot evaluate (datasets: MLflow then searches).
    """
    import sqlalchemy as sa
    from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag
    from mlflow.utils.search_utils import SearchUtils

    parsed = SearchUtils.parse_search_filter(filter_string)  # a wrong filter raises as search_runs would
    if max_results <= 0:
        return
    if any(clause.get("type") == "dataset" for clause in parsed):
        yield _UNSUPPORTED
        return
    ids_in = sa.bindparam("ids", expanding=True)
    # A connection per query, none held between pages: on SQLite an open read would keep a sweep
    # writing to the same store waiting while the caller works on a page.
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_uuid, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, name FROM runs"
                " WHERE experiment_id IN :ids AND lifecycle_stage = 'active' ORDER BY start_time DESC, run_uuid"
            ).bindparams(ids_in),
            {"ids": [int(i) for i in experiment_ids]},
        ).all()
    found = 0
    for start in range(0, len(rows), chunk):
        infos = rows[start : start + chunk]
        ids = [r[0] for r in infos]
        params: dict[str, list[Param]] = {i: [] for i in ids}
        tags: dict[str, list[RunTag]] = {i: [] for i in ids}
        metrics: dict[str, list[Metric]] = {i: [] for i in ids}
        with engine.connect() as conn:
            for run_id, key, value in conn.execute(sa.text("SELECT run_uuid, key, value FROM params WHERE run_uuid IN :ids").bindparams(ids_in), {"ids": ids}):
                params[run_id].append(Param(key, value))
            for run_id, key, value in conn.execute(sa.text("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN :ids").bindparams(ids_in), {"ids": ids}):
                tags[run_id].append(RunTag(key, value))
            query = "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid IN :ids"
            for run_id, key, value, timestamp, step, is_nan in conn.execute(sa.text(query).bindparams(ids_in), {"ids": ids}):
                metrics[run_id].append(Metric(key, float("nan") if is_nan else value, timestamp, step))
        runs = [Run(RunInfo(r[0], str(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8]), RunData(metrics[r[0]], params[r[0]], tags[r[0]])) for r in infos]
        matched = SearchUtils.filter(runs, filter_string)[: max_results - found]
        found += len(matched)
        if matched:
            yield matched
        if found >= max_results:
            return
