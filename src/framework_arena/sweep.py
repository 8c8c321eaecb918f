"""A Hydra multirun as one MLflow parent run with every trial as its child.

The launching process starts the parent run (:meth:`Sweep.start`; the sweep callback holds the
:class:`Sweep`) and hands its id to the jobs through the environment (``ARENA_PARENT_RUN_ID``),
which every launcher passes on to the processes it starts: joblib's workers, Ray's local
workers, submitit's jobs. Each job records its outcome as a tag of the parent run
(:func:`record_job`), so the summary (:meth:`Sweep.finish`) sees trials that ran elsewhere, were
skipped, or never got a run because their config was invalid.

Each job also writes its record into the sweep dir (:func:`record_job`, ``.arena-jobs/``) before
filing the tag, and a first record when it starts (:func:`job_started`): a job whose tag the
server could not take (it was unreachable), or whose process died before any record, is still
counted in the summary, under its own status (``UNTRACKED``, ``LOST``). Nothing is left out.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import math
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from framework_arena.identity import job_records, job_tag
from framework_arena.metric_names import BEST, current, current_name
from framework_arena.secrets import redact_text

log = logging.getLogger("arena.sweep")

PARENT_ENV = "ARENA_PARENT_RUN_ID"
SWEEP_ENV = "ARENA_SWEEP_ID"
URI_ENV = "ARENA_SWEEP_TRACKING_URI"
JOBS_DIR = ".arena-jobs"  # in hydra.sweep.dir: one JSON record per job
#: Every status a job can end with; all but FINISHED and SKIPPED make the sweep fail.
JOB_STATUSES = ("FINISHED", "SKIPPED", "FAILED", "KILLED", "INVALID", "UNTRACKED", "LOST")
SUMMARY_COLUMNS = (
    "job",
    "status",
    "run_name",
    "run_id",
    "objective",
    "val/accuracy",
    "test/accuracy",
    "speed/samples_per_s",
    "speed/fit_time_s",
    "overrides",
    "message",
)


@dataclass(frozen=True)
class SweepContext:
    parent_run_id: str
    sweep_id: str
    uri: str

    @classmethod
    def from_env(cls) -> SweepContext | None:
        parent = os.environ.get(PARENT_ENV)
        return cls(parent, os.environ.get(SWEEP_ENV, ""), os.environ.get(URI_ENV, "")) if parent else None


def context_for_job(tracking: Mapping[str, Any], sweep_dir: str) -> SweepContext | None:
    """The sweep a multirun job belongs to.

    The environment carries it to every local worker. A job on a host the launching process's
    environment does not reach (a Ray cluster, a SLURM node with a clean environment) finds its
    parent through its config instead: the RUNNING sweep run tagged with its ``hydra.sweep.dir``,
    which Hydra resolves once and copies into every job's config.
    """
    ctx = SweepContext.from_env()
    if ctx is not None or tracking["name"] == "none" or not tracking.get("uri"):
        return ctx
    from framework_arena.tracking import RunHandle, configure_http

    configure_http(tracking)
    handle = RunHandle(tracking["uri"], tracking["experiment"])
    quoted = sweep_dir.replace("'", "\\'")
    with handle.guard.required("Nothing was trained."):
        runs = handle.search(f"tags.`arena.kind` = 'sweep' and tags.`arena.sweep_dir` = '{quoted}' and attributes.status = 'RUNNING'", 1)
    if not runs:
        log.warning("No running sweep run found for hydra.sweep.dir=%s: this trial is tracked on its own", sweep_dir)
        return None
    return SweepContext(runs[0].info.run_id, runs[0].data.tags.get("arena.sweep_id", ""), handle.uri)


class Sweep:
    """One multirun's parent run, from ``on_multirun_start`` (:meth:`start`) to ``on_multirun_end``
    (:meth:`finish`); the sweep callback holds it.

    Until :meth:`finish` ends the parent run, the process's exit marks it FAILED, or KILLED after
    SIGTERM or Ctrl-C (:meth:`abort`, registered with ``atexit``): never RUNNING.

    Args:
        run: the parent run's :class:`~framework_arena.tracking.RunHandle`, started.
        context: what the jobs inherit.
        sweep_dir: ``hydra.sweep.dir``, where the summary is also written.
    """

    def __init__(self, run: Any, context: SweepContext, sweep_dir: str, objective: str = "", direction: str = "maximize", plots: bool = True) -> None:
        from framework_arena.tracking import Guard

        self.run = run
        self.context = context
        self.sweep_dir = sweep_dir
        self.objective, self.direction = objective, direction  # for the summary :meth:`abort` writes
        self.plots = plots  # tracking.plots: the seed curves too (matplotlib's import and drawing, 1-2 s per sweep)
        # At exit nobody is left to raise to; the summary's requests use ``required``.
        self.guard = Guard(run.uri, run.run_id, raising=False)
        self.ended = False
        self.killed = False
        self.restore_http: Callable[[], None] = lambda: None  # MLflow's HTTP settings as they were before the sweep
        atexit.register(self.abort)
        # SIGTERM would end the process without atexit: turn it into SystemExit, as Ctrl-C is;
        # both remember that the sweep was stopped (KILLED, not FAILED).
        self._handled: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) in (signal.SIG_DFL, None, signal.default_int_handler):
                    self._handled[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._on_signal)

    @classmethod
    def start(cls, cfg: Mapping[str, Any], hydra_cfg: Mapping[str, Any]) -> Sweep | None:
        """Creates the store, the experiment and the parent run once, before any job starts.

        Args:
            cfg: the resolved multirun config (its ``tracking`` and ``arena`` sections).
            hydra_cfg: the ``hydra`` node: overrides, launcher, sweeper, sweep dir.

        Returns:
            The sweep, whose context the jobs inherit through the environment; None with
            ``tracking=none``.
        """
        tracking = cfg["tracking"]
        if tracking["name"] == "none":
            return None
        from framework_arena.tracking import RunHandle, configure_http

        restore_http = configure_http(tracking)  # inherited by every job and trial; put back at the end
        run = RunHandle(tracking["uri"], tracking["experiment"])  # creating it here: no parallel schema migrations
        sweep_id = uuid.uuid4().hex[:12]
        overrides = list(hydra_cfg["overrides"]["task"])
        tags = {
            "arena.kind": "sweep",
            "arena.sweep_id": sweep_id,
            "arena.sweep_overrides": " ".join(overrides),
            "arena.launcher": str(hydra_cfg["launcher"].get("_target_", "")),
            "arena.sweeper": str(hydra_cfg["sweeper"].get("_target_", "")),
            "arena.sweep_dir": str(hydra_cfg["sweep"]["dir"]),
            "arena.objective": cfg["arena"]["objective"],
            "arena.direction": cfg["arena"]["direction"],
        }
        run.start(f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{sweep_id[:4]}", tags)
        context = SweepContext(run.run_id, sweep_id, run.uri)
        os.environ.update({PARENT_ENV: context.parent_run_id, SWEEP_ENV: sweep_id, URI_ENV: run.uri})
        log.info("Sweep %s: parent run %s in %s", sweep_id, run.run_id, redact_text(run.uri))
        sweep = cls(run, context, str(hydra_cfg["sweep"]["dir"]), cfg["arena"]["objective"], cfg["arena"]["direction"], bool(tracking.get("plots", True)))
        sweep.restore_http = restore_http
        return sweep

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.killed = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def abort(self) -> None:
        """At exit, a parent run the summary never ended is marked KILLED (a signal stopped the
        sweep, or one of its trials) or FAILED, not RUNNING; its trials still RUNNING (a worker
        killed with its trial could not mark them) end KILLED; the summary says what finished."""
        if self.ended:
            return
        self.ended = True
        tags = self.guard.call("read the sweep's run", lambda: self.run.get().data.tags) or {}
        records = self.guard.call("read the job records", self._records, tags, False) or []
        stopped = self.killed or any(rec["status"] == "KILLED" for _, rec in records)
        status = "KILLED" if stopped else "FAILED"
        reason = "sweep interrupted" if stopped else "sweep aborted"
        self.guard.call("mark the sweep's parent run", self.run.set_tags, {"arena.failure_reason": reason})
        if stopped:
            self.guard.call("mark the sweep's running trials KILLED", self._kill_running)
        self.guard.call("summarize the stopped sweep", self._summarize, self.direction, self.objective, None, status)
        self.guard.call(f"mark the sweep's parent run {status}", self.run.end, status)
        self._release()

    def _kill_running(self) -> None:
        running = self.run.search(f"tags.`mlflow.parentRunId` = '{self.run.run_id}' and attributes.status = 'RUNNING'")
        for trial in running:
            handle = type(self.run)(self.run.uri, run_id=trial.info.run_id, experiment_id=self.run.experiment_id)
            handle.set_tags({"arena.failure_reason": "signal", "arena.error": "the sweep was stopped while this trial ran"})
            handle.end("KILLED")

    def _release(self) -> None:
        self.restore_http()
        atexit.unregister(self.abort)
        for sig, previous in self._handled.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)

    def finish(self, direction: str, objective: str, platform: Mapping[str, Any] | None = None) -> int:
        """Summarizes the sweep on its parent run and in the log, and ends it; returns how many
        jobs failed. Raises :class:`~framework_arena.errors.TrackingUnavailable` when the server
        stopped answering (the parent run is then left to :meth:`abort`)."""
        with self.guard.required(f"The sweep summary was not recorded; its run {self.run.run_id} stays RUNNING."):
            failed = self._summarize(direction, objective, platform)
        self.ended = True
        self._release()
        for var in (PARENT_ENV, SWEEP_ENV, URI_ENV):
            os.environ.pop(var, None)
        return failed

    def _records(self, tags: Mapping[str, str], file: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """The jobs' records: the parent run's tags, completed from the sweep dir's files (a job
        whose tag never arrived, or that died before any record); each such record is filed on
        the parent run now, so the run holds every job."""
        records = dict(job_records(tags))
        written = dict(_read_records(self.sweep_dir))
        missing = {num: rec for num, rec in written.items() if num not in records}
        for num, rec in missing.items():
            if rec["status"] == "RUNNING":  # started, never recorded an end: killed, or a crash of arena itself
                rec = {**rec, "status": "LOST", "message": "the job's process ended without recording an outcome (killed, or arena crashed)"}
                if self.killed:
                    rec = {**rec, "status": "KILLED", "message": "the sweep was stopped while this job ran"}
            records[num] = rec
        if missing and file:
            self.run.set_tags({job_tag(num): json.dumps(records[num]) for num in missing})
        return sorted(records.items())

    def _summarize(self, direction: str, objective: str, platform: Mapping[str, Any] | None, final: str | None = None) -> int:
        objective = current_name(objective)  # arena.objective may use a flat (pre-section) name
        run = self.run
        parent = run.get()
        records = self._records(parent.data.tags)
        runs = run.runs([r["run_id"] for _, r in records if r.get("run_id")])
        rows = []
        for num, rec in records:
            trial = runs.get(rec.get("run_id") or "")
            metrics = current(trial.data.metrics) if trial is not None else {}
            rows.append(
                {
                    "job": num,
                    "status": rec["status"],
                    "run_name": trial.info.run_name if trial is not None else "",
                    "run_id": rec.get("run_id") or "",
                    "objective": float(metrics.get(objective, math.nan)),
                    **{k: metrics.get(k, float("nan")) for k in ("val/accuracy", "test/accuracy", "speed/samples_per_s", "speed/fit_time_s")},
                    "overrides": " ".join(rec.get("overrides", [])),
                    "message": rec.get("message") or "",
                }
            )
        counts = {s: sum(r["status"] == s for r in rows) for s in JOB_STATUSES}
        failed = len(rows) - counts["FINISHED"] - counts["SKIPPED"]
        scored = [r for r in rows if r["status"] in ("FINISHED", "SKIPPED") and not math.isnan(r["objective"])]
        # max/min keep the first of equal values: a tie goes to the lowest job number (rows are in job order).
        best = (max if direction == "maximize" else min)(scored, key=lambda r: r["objective"]) if scored else None

        run.log_metrics({f"trials/{k.lower()}": v for k, v in counts.items()} | {"trials/total": len(rows)})
        summary = {"sweep_summary.csv": _csv(rows), "sweep_summary.md": _markdown(rows, counts, best, objective)}
        for name, text in summary.items():
            run.log_text(text, name)
        if self.plots:
            _seed_curves(run, rows, parent.info.run_name)
        if best is not None:
            run.log_metrics({BEST + objective: best["objective"]})
            run.set_tags({"arena.best_run_id": best["run_id"], "arena.best_overrides": best["overrides"]})
            run.log_params({f"best.{k}": v for k, _, v in (o.partition("=") for o in best["overrides"].split()) if v})
        from framework_arena.notes import NOTE_TAG, sweep_note

        overrides = parent.data.tags.get("arena.sweep_overrides", "")
        run.set_tags({NOTE_TAG: sweep_note(rows, counts, best, objective, direction, experiment_id=run.experiment_id, overrides=overrides)})
        if platform is not None:
            from framework_arena.platform import publish, write_stats

            stats = {f"trials/{k.lower()}": v for k, v in counts.items()}
            write_stats(platform, {**stats, **({BEST + objective: best["objective"]} if best else {})})
            publish(platform, _save(summary, self.sweep_dir or "."))  # Domino: into its artifacts folder
        run.end(final or ("FAILED" if failed else "FINISHED"))
        log.info("%s", redact_text(_text_summary(rows, counts, best, objective, parent.info.run_id)))
        return failed


def _seed_curves(run: Any, rows: Sequence[Mapping[str, Any]], title: str) -> None:
    """The seed-aggregated learning curves (tracking/seeds.py); a failed plot never fails the summary."""
    from framework_arena.tracking.seeds import log_seed_curves

    try:
        log_seed_curves(run, rows, title)
    except Exception as e:  # noqa: BLE001 - the guard decides: raised under test, a warning in production
        run.guard.failed("log the seed-aggregated learning curves", e)


def job_started(sweep_dir: str, job_num: int, overrides: Sequence[str]) -> None:
    """Called in the job's process as it starts: a job that dies before :func:`record_job` is
    still counted (``LOST``)."""
    _write_record(sweep_dir, job_num, {"overrides": list(overrides), "status": "RUNNING"})


def record_job(ctx: SweepContext | None, sweep_dir: str, job_num: int, record: Mapping[str, Any]) -> None:
    """Called in the job's process: writes its outcome into the sweep dir, then files it on the
    parent run as ``arena.job.<num>``.

    When the server cannot take the tag, the summary reads the file instead: the job is counted
    either way, and the warning says so.
    """
    path = _write_record(sweep_dir, job_num, record)
    if ctx is None:
        return
    from framework_arena.errors import TrackingUnavailable
    from framework_arena.tracking import Guard, RunHandle

    try:
        run = RunHandle(ctx.uri, run_id=ctx.parent_run_id)
        with run.guard.required(f"The sweep's summary counts job {job_num} ({record.get('status')}) from {path}."):
            run.set_tags({job_tag(job_num): json.dumps(record)})
    except TrackingUnavailable as e:
        log.warning("%s", e)
    except Exception as e:  # noqa: BLE001 - refused (the sweep's run deleted, ...): the policy decides; the file still counts the job
        Guard(ctx.uri, ctx.parent_run_id).failed(f"record job {job_num} on the sweep's run (the summary reads {path})", e)


def _write_record(sweep_dir: str, job_num: int, record: Mapping[str, Any]) -> Path:
    folder = Path(sweep_dir or ".") / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job_num:05d}.json"
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(dict(record)))
    partial.replace(path)  # atomic: the summary never reads half a record
    return path


def _read_records(sweep_dir: str) -> list[tuple[int, dict[str, Any]]]:
    folder = Path(sweep_dir or ".") / JOBS_DIR
    return [(int(p.stem), json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _save(files: Mapping[str, str], folder: str) -> list[Path]:
    """Writes the summary next to Hydra's job folders too; returns the paths."""
    from framework_arena.secrets import redact_text

    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = [Path(folder) / name for name in files]
    for path, text in zip(paths, files.values()):
        path.write_text(redact_text(text))
    return paths


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}")
    return str(value)


def _markdown(rows: Sequence[Mapping[str, Any]], counts: Mapping[str, int], best: Mapping[str, Any] | None, objective: str) -> str:
    cols = ("job", "status", "run_name", "objective", "val/accuracy", "test/accuracy", "speed/samples_per_s", "overrides")
    lines = [
        "# Sweep summary",
        "",
        ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v) or "no jobs",
        "",
        f"Best by `{objective}`: " + (f"`{best['run_name']}` ({_fmt(best['objective'])}), `{best['overrides']}`" if best else "none"),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _text_summary(rows: Sequence[Mapping[str, Any]], counts: Mapping[str, int], best: Mapping[str, Any] | None, objective: str, parent_id: str) -> str:
    width = max((len(r["overrides"]) for r in rows), default=10)
    lines = [f"Sweep summary (parent run {parent_id}): " + (", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v) or "no jobs")]
    for r in rows:
        lines.append(
            f"  #{r['job']:<3} {r['status']:<8} {r['overrides']:<{width}}  {objective}={_fmt(r['objective'])}"
            + (f"  {' '.join(r['message'].split())}" if r["message"] else "")
        )
    if best is not None:
        lines.append(f"  best {objective}: {_fmt(best['objective'])} ({best['overrides']}, run {best['run_id']})")
    return "\n".join(lines)
