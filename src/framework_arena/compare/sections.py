"""The report's content as tables (header, rows), shared by the terminal, Markdown and HTML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from framework_arena.compare.aggregate import PER_WORKLOAD, WorkloadScores
from framework_arena.compare.article import ArticleSection
from framework_arena.compare.criteria import CRITERIA, Cell, GroupData
from framework_arena.compare.query import Selection
from framework_arena.compare.rank import TOTAL, Ranking
from framework_arena.compare.table import workload_table

Table = tuple[list[str], list[list[str]]]


@dataclass
class Report:
    selection: Selection
    groups: dict[str, GroupData]
    table: dict[str, dict[str, Cell]]
    ranking: Ranking
    article: ArticleSection
    profile: str
    profile_description: str
    target_accuracy: float
    history_runs: int
    trust: list[str] = field(default_factory=list)  # contended runs left out, unstable groups, machines (trust.py)
    run_id: str | None = None  # the comparison run, once logged

    @property
    def names(self) -> list[str]:
        return [r.group for r in self.ranking.rows]

    @property
    def scored(self) -> list[WorkloadScores]:
        return [w for w in self.ranking.workloads if w.runs.scored]


def score_text(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def _rank_label(r: Any) -> str:
    return f"{r.rank}{' (tied)' if r.tied else ''}"


def sections(rep: Report) -> dict[str, Table]:
    """The ranking, the aggregate criteria, the workloads' coverage, the profile and the article."""
    rk = rep.ranking
    pct = f"{rk.confidence:.0%}"
    ranking = (
        ["rank", "framework", "score", f"{pct} interval", "runs"],
        [[_rank_label(r), r.group, f"{r.total:.3f}", f"[{r.low:.3f}, {r.high:.3f}]" if rk.samples else "n/a", str(r.runs)] for r in rk.rows],
    )
    crit_rows = []
    for key, crit in CRITERIA.items():
        cells = rep.table[key]
        vals = [cells[g].display + (" ★" if g in rk.best.get(key, []) and len(rep.names) > 1 else "") for g in rep.names]
        weight = rk.weights.get(key, 0)
        crit_rows.append(
            [
                crit.title,
                crit.article_row.replace("_", " ") or "(ours)",
                crit.kind,
                f"{crit.unit}, {crit.direction} is better",
                f"{weight:g}" + ("" if key in rk.used or not weight else " (out)"),
            ]
            + vals
        )
    criteria = (["criterion", "article row", "kind", "unit", "weight"] + rep.names, crit_rows)
    coverage = (
        ["workload", "in the aggregate", "ran it (runs)", "did not run it"],
        [
            [
                w.label,
                "yes" if w.runs.scored else "no: not covered",
                ", ".join(f"{g} ({d.n})" for g, d in w.runs.groups.items()),
                ", ".join(w.runs.missing) or "-",
            ]
            for w in rk.workloads
        ],
    )
    measured = [k for k in rk.used if k in PER_WORKLOAD]
    profile = (
        ["framework", "total"] + [CRITERIA[k].title for k in measured],
        [[g] + [_share(rk.within_tau.get(k, {}).get(g)) for k in [TOTAL] + measured] for g in rep.names],
    )
    article = (
        ["article row", "TensorFlow", "PyTorch", "Keras", "our evidence", "verdict"],
        [
            [a.row.replace("_", " "), a.claims.get("tensorflow", ""), a.claims.get("torch", ""), a.claims.get("keras", ""), "<br>".join(a.evidence), a.cell]
            for a in rep.article
        ],
    )
    return {"ranking": ranking, "criteria": criteria, "coverage": coverage, "profile": profile, "article": article}


def _share(counts: tuple[int, int] | None) -> str:
    return f"{counts[0]} of {counts[1]}" if counts and counts[1] else "-"


def workload_title(w: WorkloadScores) -> str:
    if w.runs.scored:
        return w.label
    return f"{w.label} (not covered: run by {', '.join(w.runs.groups)} only; left out of the aggregate)"


def workload_section(rep: Report, w: WorkloadScores) -> Table:
    """One workload: each measured criterion's median over the seeds there, the ratio to the best
    framework there with its interval, and the seeds behind them."""
    names = [g for g in rep.names if g in w.runs.groups]
    cells = workload_table(w)
    resampled = rep.ranking.samples and len(names) > 1 and any(w.runs.groups[g].n > 1 for g in names)  # one run each: no spread to show
    rows = []
    for key, row in cells.items():
        if all(c.value is None for c in row.values()):
            continue  # nothing measured here: the aggregate table says why
        out = [CRITERIA[key].title]
        for g in names:
            text = row[g].display
            ratio = w.ratios.get(key, {}).get(g)
            if ratio is not None:
                lo, hi = w.ratio_intervals[key][g]
                text += f" · {ratio:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if resampled else "")
            out.append(text)
        rows.append(out)
    rows.append(["seeds"] + [", ".join(w.runs.seeds(g)) for g in names])
    totals = rep.ranking.workload_totals.get(w.label, {})
    if totals:
        rows.append([f"profile score ({rep.profile})"] + [score_text(totals.get(g)) for g in names])
    return ["criterion"] + names, rows


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def workload_line(rep: Report, w: WorkloadScores) -> str:
    """One line per workload for the terminal: who ran it, with how many seeds, and its score there."""
    if not w.runs.scored:
        return f"{w.label}: not covered (run by {', '.join(w.runs.groups)} only; missing {', '.join(w.runs.missing) or '-'}), left out of the aggregate"
    totals = rep.ranking.workload_totals.get(w.label, {})
    parts = [f"{g} {score_text(totals.get(g)) or '-'} ({_runs(w.runs.groups[g].n)})" for g in rep.names if g in w.runs.groups]
    return f"{w.label}: " + ", ".join(parts)


def notes(rep: Report) -> list[str]:
    rk = rep.ranking
    scored = rep.scored
    out = [
        f"Profile `{rep.profile}`: {rep.profile_description}",
        "Workloads: runs are compared only with runs of the same workload (model spec, data, optimizer, trainer settings, precision, compile mode, device, "
        "machine where logged). On each workload a framework's score on a criterion is its ratio to the best framework there (1.0 = best).",
        f"Aggregate: a framework's score on a criterion is the geometric mean of its ratios over the {len(scored)} workload(s) "
        + ("two frameworks or more ran, among those who ran each" if rk.include_partial else "every framework ran")
        + "; the value shown is the geometric mean of its values there. The total is the weighted mean over the profile's criteria that every framework has.",
        f"Intervals: {rk.samples} bootstrap resamples of each framework's seeds within each workload, independently; {rk.confidence:.0%} central interval. "
        "Frameworks whose intervals overlap share a rank (tied)."
        if rk.samples
        else "No bootstrap (bootstrap.samples=0): no intervals, ties only on equal scores.",
        f"Performance profile: on how many workloads each framework is within τ={rk.tau:g} of the best (ratio ≥ 1/τ), for the profile's score and each measured criterion.",
        f"Time to target: validation accuracy {rep.target_accuracy:g}, from the epoch history of up to {rep.history_runs} runs.",
        "★ marks the best score and the scores whose interval overlaps it.",
    ]
    left = [w for w in rk.workloads if not w.runs.scored]
    if left:
        out.append(
            f"Not covered, left out of the aggregate ({'aggregate.include_partial=true scores workloads two frameworks or more ran' if not rk.include_partial else 'run by one framework'}): "
            + "; ".join(f"{w.label} (run by {', '.join(w.runs.groups)})" for w in left)
            + "."
        )
    if any(d.n < 2 for w in rk.workloads for d in w.runs.groups.values()):
        out.append("Some frameworks have a single run of a workload: run several seeds (`trainer.seed=0,1,2`) for intervals and reproducibility.")
    out += [f"Left out of the totals: `{k}`, {why}." for k, why in rk.excluded.items()]
    return out + rep.trust + rep.article.legend
