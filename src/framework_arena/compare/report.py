"""The comparison as a terminal table, report.md, a self-contained report.html and CSV files."""

from __future__ import annotations

import base64
import csv
import html
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework_arena.compare import plots
from framework_arena.compare.article import ArticleSection
from framework_arena.compare.criteria import CRITERIA, Cell, GroupData
from framework_arena.compare.query import Selection
from framework_arena.compare.rank import Ranking


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


def _score(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def _rank_label(r: Any) -> str:
    return f"{r.rank}{' (tied)' if r.tied else ''}"


def write_csv(rep: Report, folder: Path) -> list[Path]:
    ranking_csv, criteria_csv, runs_csv = folder / "ranking.csv", folder / "criteria.csv", folder / "runs.csv"
    with ranking_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "tied", "framework", "score", "score_low", "score_high", "runs", "profile"])
        for r in rep.ranking.rows:
            w.writerow([r.rank, r.tied, r.group, f"{r.total:.6f}", f"{r.low:.6f}", f"{r.high:.6f}", r.runs, rep.profile])
    with criteria_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "criterion",
                "title",
                "article_row",
                "kind",
                "unit",
                "direction",
                "weight",
                "in_total",
                "framework",
                "value",
                "display",
                "value_low",
                "value_high",
                "score",
                "best_or_tied",
                "runs",
                "note",
                "how",
            ]
        )
        for key, crit in CRITERIA.items():
            for g in rep.names:
                cell = rep.table[key][g]
                lo, hi = rep.ranking.value_intervals[key].get(g, (None, None))
                w.writerow(
                    [
                        key,
                        crit.title,
                        crit.article_row,
                        crit.kind,
                        crit.unit,
                        crit.direction,
                        rep.ranking.weights.get(key, 0),
                        key in rep.ranking.used,
                        g,
                        "" if cell.value is None else cell.value,
                        cell.display,
                        "" if lo is None else lo,
                        "" if hi is None else hi,
                        _score(rep.ranking.scores[key][g]),
                        g in rep.ranking.best.get(key, []),
                        cell.n,
                        cell.note,
                        crit.how,
                    ]
                )
    with runs_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["framework", "run_id", "run_name", "model", "data", "seed"])
        for t in rep.selection.trials:
            w.writerow([t.group, t.run_id, t.run_name, t.model, t.data, t.seed])
    return [ranking_csv, criteria_csv, runs_csv]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]


def _sections(rep: Report) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables, shared by the Markdown and HTML renderings."""
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
    article = (
        ["article row", "TensorFlow", "PyTorch", "Keras", "our evidence", "verdict"],
        [
            [a.row.replace("_", " "), a.claims.get("tensorflow", ""), a.claims.get("torch", ""), a.claims.get("keras", ""), "<br>".join(a.evidence), a.cell]
            for a in rep.article
        ],
    )
    return {"ranking": ranking, "criteria": criteria, "article": article}


def _notes(rep: Report) -> list[str]:
    rk = rep.ranking
    notes = [
        f"Profile `{rep.profile}`: {rep.profile_description}",
        "Scores: 1.0 is the best framework on a criterion; the others get their fraction of it. The total is the weighted mean over the profile's criteria that every framework has.",
        f"Intervals: {rk.samples} bootstrap resamples of each framework's runs, {rk.confidence:.0%} central interval. Frameworks whose intervals overlap share a rank (tied)."
        if rk.samples
        else "No bootstrap (bootstrap.samples=0): no intervals, ties only on equal scores.",
        f"Time to target: validation accuracy {rep.target_accuracy:g}, from the epoch history of up to {rep.history_runs} runs.",
        "★ marks the best value and the values whose interval overlaps it.",
    ]
    if any(g.n < 2 for g in rep.groups.values()):
        notes.append("Some frameworks have a single run: run several seeds (`trainer.seed=0,1,2`) for intervals and reproducibility.")
    notes += [f"Left out of the totals: `{k}`, {why}." for k, why in rk.excluded.items()]
    return notes + rep.trust + rep.article.legend


def _figures(rep: Report, folder: Path) -> list[tuple[str, Path]]:
    pdir = folder / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    figs = [
        ("Measured criteria, with bootstrap intervals", plots.criteria_bars(pdir / "criteria.png", rep.table, rep.ranking)),
        ("Learning curves", plots.learning_curves(pdir / "learning_curves.png", rep.groups)),
        ("Throughput and memory as the data grows", plots.scaling(pdir / "scaling.png", rep.groups)),
        ("The profile's criteria", plots.radar(pdir / "radar.png", rep.ranking)),
    ]
    return [(title, p) for title, p in figs if p is not None]


def write_markdown(rep: Report, folder: Path, figures: list[tuple[str, Path]]) -> Path:
    s = _sections(rep)
    lines = [f"# Framework comparison: {rep.selection.describe()}", "", f"{len(rep.selection.trials)} runs, profile `{rep.profile}`.", "", "## Ranking", ""]
    lines += _md_table(*s["ranking"]) + ["", "## Criteria", ""] + _md_table(*s["criteria"])
    lines += [
        "",
        "## The article beside our measurements",
        "",
        "The article: Domino Data Lab, “TensorFlow, PyTorch or Keras for Deep Learning” (2022).",
        "",
    ] + _md_table(*s["article"])
    lines += ["", "## How to read it", ""] + [f"- {n}" for n in _notes(rep)] + [""]
    lines += [f"![{title}]({p.relative_to(folder).as_posix()})" for title, p in figures] + [""]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


_LINK = re.compile(r"\[([^\[\]]+)\]\((#[\w-]+)\)")  # [label](#anchor): a verdict's link to its figure or row


def _html_table(header: list[str], rows: list[list[str]], ids: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    cell = lambda c: _LINK.sub(r"<a href='\2'>\1</a>", html.escape(c).replace("&lt;br&gt;", "<br>"))  # noqa: E731
    body = "".join((f"<tr id='{ids[i]}'>" if ids else "<tr>") + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}h1{font-size:22px}h2{font-size:17px;margin-top:28px}img{max-width:100%;border:1px solid #eee}li{margin:3px 0}"""


def write_html(rep: Report, folder: Path, figures: list[tuple[str, Path]]) -> Path:
    """One file, images embedded as data URIs, so MLflow's artifact viewer renders it whole."""
    s = _sections(rep)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>framework-arena comparison</title><style>{CSS}</style></head><body>",
        f"<h1>Framework comparison: {html.escape(rep.selection.describe())}</h1>",
        f"<p>{len(rep.selection.trials)} runs, profile <code>{html.escape(rep.profile)}</code>.</p>",
        "<h2>Ranking</h2>",
        _html_table(*s["ranking"]),
        "<h2>Criteria</h2>",
        _html_table(*s["criteria"], ids=[f"crit-{key}" for key in CRITERIA]),  # the article's verdicts link here
        "<h2>The article beside our measurements</h2>",
        _html_table(*s["article"]),
        "<h2>How to read it</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _notes(rep)) + "</ul>",
    ]
    for title, p in figures:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(f"<h2 id='plot-{p.stem}'>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_all(rep: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    figures = _figures(rep, folder)
    return write_csv(rep, folder) + [write_markdown(rep, folder, figures), write_html(rep, folder, figures)] + [p for _, p in figures]


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 3] + "…" + (" ★" if text.endswith("★") else "")


def print_terminal(rep: Report) -> None:
    """The ranking and the criteria as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    s = _sections(rep)
    header, rows = s["criteria"]
    # The terminal gets the short form: no article-row and unit columns (values carry their unit).
    s["criteria"] = (["criterion", "kind", "weight"] + header[5:], [[r[0], r[2], r[4]] + [_short(c) for c in r[5:]] for r in rows])
    for key, title in (("ranking", f"Ranking, profile {rep.profile}"), ("criteria", "Criteria (★ best or tied with it)")):
        header, rows = s[key]
        table = Table(title=title, title_justify="left")
        for h in header:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for a in rep.article:
        console.print(f"[bold]{a.row.replace('_', ' ')}[/bold]: {a.verdict}", highlight=False)
    for key, why in rep.ranking.excluded.items():
        console.print(f"left out of the totals: {key}, {why}", highlight=False)
    for note in rep.trust:
        console.print(note, highlight=False, markup=False)
