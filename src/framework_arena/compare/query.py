"""Which trial runs a comparison covers, grouped by framework (Keras per back end), each with its workload."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Sequence

from framework_arena.compare.workload import Workload, workload_of
from framework_arena.identity import job_records
from framework_arena.metric_names import current
from framework_arena.names import label
from framework_arena.tracking import Reader

log = logging.getLogger("arena.compare")

TRIAL_FILTER = "tags.`arena.kind` = 'trial' and attributes.status = 'FINISHED'"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class NothingToCompare(RuntimeError):
    """The selection holds no run to compare; the message says what was searched and what exists."""


@dataclass
class Trial:
    """One FINISHED trial run, reduced to what the criteria read."""

    run_id: str
    run_name: str
    group: str  # torch | tensorflow | keras-<backend> [/ <model> with group_by=framework_model]
    framework: str  # torch | tensorflow | keras
    model: str
    data: str
    seed: str
    params: dict[str, str]
    metrics: dict[str, float]
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # the run's arena.* tags (facts the trial logged: arena.license ...)

    @cached_property
    def workload(self) -> Workload:
        """What this run's figures are comparable with (workload.py)."""
        return workload_of(self.params, self.tags)


@dataclass
class Selection:
    trials: list[Trial]
    experiment_ids: list[str]
    experiment_names: list[str]
    sweep_run_id: str | None
    sweep_name: str | None
    filter_string: str

    @property
    def groups(self) -> dict[str, list[Trial]]:
        out: dict[str, list[Trial]] = {}
        for t in self.trials:
            out.setdefault(t.group, []).append(t)
        return dict(sorted(out.items()))

    def describe(self) -> str:
        where = f"sweep {self.sweep_name} ({self.sweep_run_id})" if self.sweep_run_id else "experiment " + ", ".join(repr(n) for n in self.experiment_names)
        return where + (f", filter: {self.filter_string}" if self.filter_string else "")


def group_of(tags: Mapping[str, str], params: Mapping[str, str], group_by: str) -> tuple[str, str]:
    """(group key, framework name) of a run from its ``arena.*`` tags."""
    framework = tags.get("arena.framework") or params.get("framework.name", "?")
    group = label(framework, tags.get("arena.backend") or params.get("framework.backend") or "?")
    if group_by == "framework_model":
        group += "/" + (tags.get("arena.model") or params.get("model.name", "?"))
    return group, framework


def _sweep(reader: Reader, experiment_ids: Sequence[str], sweep: str) -> Any:
    if sweep == "latest":
        runs = reader.search(experiment_ids, "tags.`arena.kind` = 'sweep'", 1, ["attributes.start_time DESC"])
    elif _RUN_ID.match(sweep):
        run = reader.get(sweep)
        runs = [run] if run is not None and run.data.tags.get("arena.kind") == "sweep" else []
    else:
        runs = reader.search(experiment_ids, f"tags.`arena.kind` = 'sweep' and tags.`arena.sweep_id` = '{_quote(sweep)}'", 1)
    if not runs:
        raise NothingToCompare(
            f"No sweep run matches select.sweep={sweep!r} in this experiment. Expected a sweep's parent run id, its arena.sweep_id, or 'latest' (run a sweep with `arena -m ...` first)."
        )
    return runs[0]


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def _trial(run: Any, group_by: str) -> Trial:
    tags, params = run.data.tags, run.data.params
    group, framework = group_of(tags, params, group_by)
    return Trial(
        run.info.run_id,
        run.info.run_name or "",
        group,
        framework,
        tags.get("arena.model") or params.get("model.name", "?"),
        tags.get("arena.data") or params.get("data.name", "?"),
        params.get("trainer.seed", "?"),
        dict(params),
        current(run.data.metrics),  # runs logged before the sections read as new ones
        tags={k: v for k, v in tags.items() if k.startswith("arena.")},
    )


def select(reader: Reader, select_cfg: Mapping[str, Any], group_by: str) -> Selection:
    """The FINISHED trial runs named by ``select.*``; raises :class:`NothingToCompare` if none."""
    names = [n.strip() for n in str(select_cfg["experiment"]).split(",") if n.strip()]
    ids = reader.experiment_ids(names)
    missing = [n for n, i in ids.items() if i is None]
    if missing:
        raise NothingToCompare(
            f"Experiment {', '.join(map(repr, missing))} does not exist in {reader.uri}. Expected select.experiment (or tracking.experiment) to name an experiment holding trial runs."
        )
    exp_ids = [i for i in ids.values() if i]
    user_filter = str(select_cfg.get("filter") or "").strip()
    filters = [TRIAL_FILTER] + ([user_filter] if user_filter else [])
    sweep_run = _sweep(reader, exp_ids, str(select_cfg["sweep"])) if select_cfg.get("sweep") else None
    limit = int(select_cfg["max_runs"])
    ask = limit + 1  # one more than wanted: found only when runs were left out (warned below)
    if sweep_run is None:
        # Page by page: each page's MLflow entities are dropped once reduced to Trials.
        trials = [_trial(run, group_by) for page in reader.pages(exp_ids, " and ".join(filters), ask) for run in page]
    else:
        sid = sweep_run.info.run_id
        runs = reader.search(exp_ids, " and ".join(filters + [f"tags.`mlflow.parentRunId` = '{sid}'"]), ask)
        # Trials a resumed sweep skipped belong to an earlier sweep: its job records name them.
        seen = {r.info.run_id for r in runs}
        recorded = [record.get("run_id") for _, record in job_records(sweep_run.data.tags)]
        extra = [r for r in recorded if r and r not in seen]
        for i in range(0, len(extra), 100):
            chunk = ", ".join(f"'{r}'" for r in extra[i : i + 100])
            runs += reader.search(exp_ids, " and ".join(filters + [f"attributes.run_id IN ({chunk})"]), ask)
        trials = [_trial(run, group_by) for run in runs]
    found = len(trials)
    trials = trials[:limit]
    sel = Selection(trials, exp_ids, names, sweep_run.info.run_id if sweep_run else None, sweep_run.info.run_name if sweep_run else None, user_filter)
    if not trials:
        raise NothingToCompare(
            f"No FINISHED trial runs in {sel.describe()}. Train some first, e.g. `arena -m experiment=shootout`, or widen select.filter / select.sweep."
        )
    wanted = [str(f) for f in select_cfg.get("frameworks") or []]
    if wanted:
        present = {t.group.split("/")[0] for t in trials}
        absent = [f for f in wanted if f not in present]
        if absent:
            raise NothingToCompare(
                f"No FINISHED trial runs for {', '.join(absent)} in {sel.describe()}. Expected select.frameworks to name frameworks with runs: {', '.join(sorted(present))}."
            )
        sel.trials = [t for t in trials if t.group.split("/")[0] in wanted]
    if found > limit:
        log.warning("Stopped at select.max_runs=%d runs: the comparison covers the newest %d only", limit, limit)
    return sel


def _spread(trials: Sequence[Trial], count: int) -> list[Trial]:
    """Up to ``count`` runs taken in turn from each workload, so every workload gets histories."""
    by_workload: dict[Workload, list[Trial]] = {}
    for t in trials:
        by_workload.setdefault(t.workload, []).append(t)
    queues = [by_workload[w] for w in sorted(by_workload)]
    out: list[Trial] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        out += [q[depth] for q in queues if depth < len(q)]
    return out[:count]


def load_histories(reader: Reader, sel: Selection, keys: Sequence[str], per_group: int) -> int:
    """Fills ``Trial.history`` for up to ``per_group`` runs of each group, spread over its
    workloads; returns how many runs."""
    chosen = [t for ts in sel.groups.values() for t in _spread(ts, per_group)]
    if not chosen or not keys:
        return 0
    found = reader.histories([t.run_id for t in chosen], keys)  # in bulk where the store can
    for t in chosen:
        t.history.update(found[t.run_id])
    return len(chosen)
