"""One comparison, end to end: select, measure, rank, report, log the comparison run."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

from framework_arena.compare import query, report
from framework_arena.compare.aggregate import aggregate
from framework_arena.compare.article import compare_article
from framework_arena.compare.coverage import build_coverage, build_groups
from framework_arena.compare.rank import rank
from framework_arena.compare.table import measure_all
from framework_arena.notes import NOTE_TAG, comparison_note
from framework_arena.platform import publish
from framework_arena.secrets import redact_text
from framework_arena.tracking import Reader

log = logging.getLogger("arena.compare")

HISTORY_KEYS = ("val_accuracy", "epoch_time_s", "train_loss")


def compare(cfg: Mapping[str, Any], out_dir: Path, profile: str) -> report.Report:
    """Runs the comparison ``cfg`` describes; writes the report to ``out_dir`` and, unless
    ``report.log_run=false``, logs it as a comparison run. Raises ``query.NothingToCompare`` or
    ``rank.NoRanking`` before anything is written when there is nothing to rank."""
    start = time.perf_counter()
    reader = Reader(cfg["tracking"]["uri"])
    sel = query.select(reader, cfg["select"], cfg["group_by"])
    found = time.perf_counter()
    history_runs = query.load_histories(reader, sel, HISTORY_KEYS, int(cfg["report"]["max_history_runs"]))
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
    ranking = rank(groups, table, cfg["ranking"]["weights"], agg, float(b["confidence"]), float(a["tau"]))
    rep = report.Report(
        sel,
        groups,
        table,
        ranking,
        compare_article(cfg["criteria"].get("article") or {}, table, ranking),
        profile,
        str(cfg["ranking"].get("description", "")),
        float(cfg["target_accuracy"]),
        history_runs,
    )
    report.write_all(rep, out_dir)
    copies = publish(cfg.get("platform") or {}, sorted(out_dir.iterdir()), folder="comparison")  # Domino: the job's artifacts folder
    if copies:
        log.info("Report copied to %s", copies[0].parent)
    log.info(
        "Compared %d runs in %d groups in %.1f s (%.1f s of it searching MLflow); report in %s",
        len(sel.trials),
        len(groups),
        time.perf_counter() - start,
        found - start,
        out_dir,
    )
    report.print_terminal(rep)
    if cfg["report"]["log_run"]:
        run_id = _log_run(reader, cfg, rep, out_dir, profile)
        log.info("Comparison run %s in %s (report.html among its artifacts)", run_id, reader.uri)
    return rep


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
    return reader.log_comparison(sel.experiment_ids[0], name, tags, params, metrics, str(out_dir))
