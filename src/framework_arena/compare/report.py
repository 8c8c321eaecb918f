"""The comparison as a terminal table, report.md and a self-contained report.html (CSV: export.py)."""

from __future__ import annotations

import base64
import html
import re
import sys
from pathlib import Path
from typing import Any

from framework_arena.compare import plots
from framework_arena.compare.criteria import CRITERIA
from framework_arena.compare.draw import Painter
from framework_arena.compare.export import write_csv
from framework_arena.compare.sections import Report, notes, sections, workload_line, workload_section, workload_title

__all__ = ["Report", "write_all", "print_terminal"]

PROFILE_FIGURE = "Performance profile: share of workloads within a factor τ of the best"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]


def _figures(rep: Report, folder: Path, painter: Painter) -> list[tuple[str, Path]]:
    """The figures' titles and files; ``painter`` draws them (they exist once it has waited)."""
    pdir = folder / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    figs = [
        ("Measured criteria, with bootstrap intervals", plots.criteria_bars(pdir / "criteria.png", rep.table, rep.ranking)),
        ("Learning curves, per workload", plots.learning_curves(pdir / "learning_curves.png", rep.ranking.workloads)),
        ("Throughput and memory as the data grows", plots.scaling(pdir / "scaling.png", rep.ranking.workloads)),
        ("The profile's criteria", plots.radar(pdir / "radar.png", rep.ranking)),
        (PROFILE_FIGURE, plots.performance_profile(pdir / "performance_profile.png", rep.ranking)),
    ]
    sketches = [(title, s) for title, s in figs if s is not None]
    painter.draw([s for _, s in sketches])
    return [(title, s.path) for title, s in sketches]


def _blocks(rep: Report, figures: list[tuple[str, Path]]) -> list[tuple[Any, ...]]:
    """The document, in order, for both renderings: (h1|h2|h3|p, text), (table, header, rows),
    (list, items), (img, title, path)."""
    s, rk = sections(rep), rep.ranking
    scored = rep.scored
    out: list[tuple[Any, ...]] = [
        ("h1", f"Framework comparison: {rep.selection.describe()}"),
        ("p", f"{len(rep.selection.trials)} runs, profile `{rep.profile}`, {len(scored)} of {len(rk.workloads)} workloads in the aggregate."),
        ("h2", "Ranking (aggregate across workloads)"),
        ("table", *s["ranking"]),
        ("h2", "Criteria (aggregate: geometric mean over the workloads)"),
        ("table", *s["criteria"], [f"crit-{key}" for key in CRITERIA]),  # the article's verdicts link here
        ("h2", "Workloads"),
        ("table", *s["coverage"]),
        ("h2", f"Performance profile (within τ={rk.tau:g} of the best)"),
        ("table", *s["profile"]),
    ]
    out += [("img", title, path) for title, path in figures if title == PROFILE_FIGURE]
    out.append(("h2", "Per workload"))
    out.append(
        (
            "p",
            "Each value is the median over the framework's seeds on that workload; after it, the ratio to the best framework there and, with several seeds, its interval.",
        )
    )
    for w in rk.workloads:
        out += [("h3", workload_title(w)), ("p", w.runs.workload.describe()), ("table", *workload_section(rep, w))]
    out += [
        ("h2", "The article beside our measurements"),
        ("p", "The article: Domino Data Lab, “TensorFlow, PyTorch or Keras for Deep Learning” (2022)."),
        ("table", *s["article"]),
        ("h2", "How to read it"),
        ("list", notes(rep)),
    ]
    out += [("img", title, path) for title, path in figures if title != PROFILE_FIGURE]
    return out


def write_markdown(rep: Report, folder: Path, figures: list[tuple[str, Path]]) -> Path:
    lines: list[str] = []
    for kind, *rest in _blocks(rep, figures):
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + rest[0], ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "table":
            lines += _md_table(rest[0], rest[1]) + [""]
        elif kind == "list":
            lines += [f"- {n}" for n in rest[0]] + [""]
        else:
            lines += [f"![{rest[0]}]({rest[1].relative_to(folder).as_posix()})", ""]
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
th{background:#f4f4f4}h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin-top:18px}img{max-width:100%;border:1px solid #eee}li{margin:3px 0}"""


def write_html(rep: Report, folder: Path, figures: list[tuple[str, Path]]) -> Path:
    """One file, images embedded as data URIs, so MLflow's artifact viewer renders it whole."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>framework-arena comparison</title><style>{CSS}</style></head><body>"]
    for kind, *rest in _blocks(rep, figures):
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(rest[0])}</{kind}>")
        elif kind == "table":
            parts.append(_html_table(*rest))
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in rest[0]) + "</ul>")
        else:
            data = base64.b64encode(rest[1].read_bytes()).decode("ascii")
            parts.append(f"<h3 id='plot-{rest[1].stem}'>{html.escape(rest[0])}</h3><img alt='{html.escape(rest[0])}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_all(rep: Report, folder: Path, painter: Painter | None = None) -> list[Path]:
    """Every report file; the figures drawn by ``painter`` (default: in this process) while the
    tables are written."""
    folder.mkdir(parents=True, exist_ok=True)
    painter = painter or Painter(0)
    figures = _figures(rep, folder, painter)
    files = write_csv(rep, folder) + [write_markdown(rep, folder, figures)]
    painter.wait()  # report.html embeds the pictures
    return files + [write_html(rep, folder, figures)] + [p for _, p in figures]


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 3] + "…" + (" ★" if text.endswith("★") else "")


def print_terminal(rep: Report) -> None:
    """The ranking and the criteria as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    s = sections(rep)
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
    rk = rep.ranking
    console.print(
        f"[bold]Workloads[/bold]: {len(rep.scored)} of {len(rk.workloads)} in the aggregate; per workload, the profile's score there (1.0: best on every criterion)",
        highlight=False,
    )
    for w in rk.workloads:
        console.print("  " + workload_line(rep, w), highlight=False)
    for a in rep.article:
        console.print(f"[bold]{a.row.replace('_', ' ')}[/bold]: {a.verdict}", highlight=False)
    for key, why in rep.ranking.excluded.items():
        console.print(f"left out of the totals: {key}, {why}", highlight=False)
    for note in rep.trust:
        console.print(note, highlight=False, markup=False)
