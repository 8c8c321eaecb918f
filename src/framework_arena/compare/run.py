"""One comparison, end to end: select, measure, rank, report, log the comparison run."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

from framework_arena.compare import draw, query, report, trust
from framework_arena.compare.aggregate import aggregate
from framework_arena.compare.article import compare_article
from framework_arena.compare.coverage import build_coverage, build_groups
from framework_arena.compare.rank import rank
from framework_arena.compare.table import measure_all
from framework_arena.errors import AccessDenied
from framework_arena.notes import NOTE_TAG, comparison_note
from framework_arena.platform import publish
from framework_arena.secrets import redact_text
from framework_arena.tracking import Reader, http_settings, log_comparison

log = logging.getLogger("arena.compare")

HISTORY_KEYS = ("val/accuracy", "speed/epoch_time_s", "train/loss")


def compare(cfg: Mapping[str, Any], out_dir: Path, profile: str, quiet: bool = False) -> report.Report:
    """Runs the comparison ``cfg`` describes; writes the report to ``out_dir`` and, unless
    ``report.log_run=false``, logs it as a comparison run. Raises ``query.NothingToCompare`` or
    ``rank.NoRanking`` before anything is written when there is nothing to rank. ``quiet`` (and
    ``report.format=json``) leaves the terminal tables out."""
    # tracking.timeout_s and .retries, as for a trial: with MLflow's defaults a server that
    # refuses connections kept arena-compare waiting 4 minutes before it said so.
    with http_settings(cfg["tracking"]):
        return _compare_and_log(cfg, out_dir, profile, quiet)


def _compare_and_log(cfg: Mapping[str, Any], out_dir: Path, profile: str, quiet: bool) -> report.Report:
    start = time.perf_counter()
    reader = Reader(cfg["tracking"]["uri"])
    sel = query.select(reader, cfg["select"], cfg["group_by"])
    found = time.perf_counter()
    # Workers start now, importing matplotlib while the histories are read and the runs ranked.
    painter = draw.Painter(int(cfg["report"].get("plot_workers", 0)) if len(sel.trials) >= draw.PARALLEL_FROM else 0)
    try:
        rep = _compare(cfg, reader, sel, out_dir, profile, painter)
    finally:
        painter.close()
    log.info(
        "Compared %d runs in %d groups in %.1f s (%.1f s of it searching MLflow); report in %s",
        len(sel.trials),
        len(rep.groups),
        time.perf_counter() - start,
        found - start,
        out_dir,
    )
    if not quiet and cfg["report"].get("format", "text") == "text":
        report.print_terminal(rep)
    if cfg["report"]["log_run"]:
        try:
            rep.run_id = _log_run(reader, cfg, rep, out_dir, profile)
        except AccessDenied as e:  # a reader may rank; the report is the product, so this is not a failure
            log.warning("Could not log the comparison run: %s", e)
        else:
            log.info("Comparison run %s in %s (report.html among its artifacts)", rep.run_id, redact_text(reader.uri))
    if cfg["report"].get("promote"):
        _promote(reader, cfg, rep, rep.run_id)
    return rep


def _compare(cfg: Mapping[str, Any], reader: Reader, sel: query.Selection, out_dir: Path, profile: str, painter: draw.Painter) -> report.Report:
    """Measures, ranks and writes the report of ``sel``."""
    history_runs = query.load_histories(reader, sel, HISTORY_KEYS, int(cfg["report"]["max_history_runs"]))
    if cfg.get("deploy"):  # before measuring: the serve_* figures feed the deployment criterion
        from framework_arena.deploy import serve_best

        serve_best(reader.uri, sel.groups, cfg["serve"], out_dir)
    trust_notes = trust.screen(sel.trials, bool(cfg["select"].get("include_contended", False)))  # issue 13
    groups = build_groups(sel.groups, float(cfg["target_accuracy"]))
    if len(groups) < 2:
        log.warning(
            "Only %s in %s: the report describes it, but a ranking needs two frameworks or more (e.g. arena -m framework=torch,tensorflow,keras)",
            next(iter(groups)),
            sel.describe(),
        )
    b, a = cfg["bootstrap"], cfg["aggregate"]
    coverage = build_coverage(sel.groups, float(cfg["target_accuracy"]), bool(a["include_partial"]))
    for w in coverage.left_out:
        log.warning(
            "Workload %s left out of the aggregate: run by %s only, not by %s", w.label, ", ".join(w.groups), ", ".join(w.missing) or "another framework"
        )
    agg = aggregate(coverage, int(b["samples"]), float(b["confidence"]), int(b["seed"]))
    table = measure_all(groups, cfg["criteria"].get("static") or {}, agg)
    trust_notes += trust.mark(sel.groups, table)
    ranking = rank(groups, table, cfg["ranking"]["weights"], agg, float(b["confidence"]), float(a["tau"]))
    rep = report.Report(
        sel,
        groups,
        table,
        ranking,
        compare_article(cfg["criteria"].get("article") or {}, table, ranking, groups, bool(cfg["select"].get("include_contended", False))),
        profile,
        str(cfg["ranking"].get("description", "")),
        float(cfg["target_accuracy"]),
        history_runs,
        trust=trust_notes,
    )
    report.write_all(rep, out_dir, painter)
    copies = publish(cfg.get("platform") or {}, sorted(out_dir.iterdir()), folder="comparison")  # Domino: the job's artifacts folder
    if copies:
        log.info("Report copied to %s", copies[0].parent)
    return rep


def _promote(reader: Reader, cfg: Mapping[str, Any], rep: report.Report, comparison_run_id: str | None) -> None:
    """Alias ``champion`` on the winner's best model (highest val/accuracy), tagged with the comparison run."""
    from framework_arena.deploy import best_trial
    from framework_arena.tracking import Guard
    from framework_arena.tracking.models import default_registered_name, promote

    winners = [r.group for r in rep.ranking.rows if r.rank == 1]
    if not winners:
        log.warning("report.promote=true but nothing was ranked: no model promoted")
        return
    best = best_trial(rep.groups[winners[0]].trials)
    name = cfg["report"].get("registered_model") or default_registered_name(cfg["select"]["experiment"].split(",")[0], winners[0].split("/")[0], best.model)
    guard = Guard(reader.uri, best.run_id)  # the report is written: a refused registry write is a warning
    promoted = guard.call(f"promote the model of run {best.run_id} as models:/{name}@champion", promote, reader.uri, best.run_id, name, comparison_run_id)
    if guard.lost is not None:
        return
    if promoted is None:
        log.warning("report.promote=true but run %s (%s's best) logged no model", best.run_id, winners[0])
    else:
        log.info("Promoted %s's best model (run %s): models:/%s@champion is version %s", winners[0], best.run_id, promoted[0], promoted[1])


def _log_run(reader: Reader, cfg: Mapping[str, Any], rep: report.Report, out_dir: Path, profile: str) -> str:
    sel = rep.selection
    ids = [t.run_id for t in sel.trials]
    winners = [r.group for r in rep.ranking.rows if r.rank == 1]
    tags = {
        "arena.kind": "comparison",
        "arena.ranking_profile": profile,
        "arena.compared_experiments": ",".join(sel.experiment_names),
        "arena.compared_run_count": str(len(ids)),
        "arena.compared_runs": ",".join(ids) if len(ids) <= 100 else ",".join(ids[:100]) + f",... ({len(ids)} in runs.csv)",
        "arena.winner": ",".join(winners),
        "arena.selection": redact_text(sel.describe()),
    }
    scored = [w for w in rep.ranking.workloads if w.runs.scored]
    names = ", ".join(w.label for w in scored)
    tags["arena.workloads"] = f"{len(scored)} of {len(rep.ranking.workloads)} in the aggregate: " + (
        names if len(names) <= 1000 else names[:1000] + "... (workloads.csv)"
    )
    if sel.sweep_run_id:
        tags["arena.compared_sweep"] = sel.sweep_run_id
    rows = [(r.group, r.total, r.rank, r.tied) for r in rep.ranking.rows]
    tags[NOTE_TAG] = comparison_note(rows, profile, ", ".join(sel.experiment_names), run_ids=ids, sweep_id=sel.sweep_name, experiment_id=sel.experiment_ids[0])
    params = {
        "profile": profile,
        "group_by": cfg["group_by"],
        "target_accuracy": cfg["target_accuracy"],
        "bootstrap.samples": cfg["bootstrap"]["samples"],
        "bootstrap.confidence": cfg["bootstrap"]["confidence"],
        "aggregate.tau": cfg["aggregate"]["tau"],
        "aggregate.include_partial": cfg["aggregate"]["include_partial"],
        "select.filter": cfg["select"]["filter"] or "",
        "select.sweep": cfg["select"]["sweep"] or "",
    }
    params.update({f"weight.{k}": v for k, v in rep.ranking.weights.items()})
    metrics = {f"score.{r.group.replace('/', '.')}": r.total for r in rep.ranking.rows}
    metrics.update({f"rank.{r.group.replace('/', '.')}": float(r.rank) for r in rep.ranking.rows})
    name = cfg["report"]["run_name"] or f"compare-{sel.sweep_name or '+'.join(sel.experiment_names)}-{profile}"
    return log_comparison(reader.uri, sel.experiment_ids[0], name, tags, params, metrics, str(out_dir), sel.experiment_names[0])
