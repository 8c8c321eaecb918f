"""The article's table beside our measurements: for each row, each claim held against its evidence.

A row (``criteria.article.rows`` in conf/criteria/default.yaml) names the criteria that speak to
what the article claims in it; every pair of frameworks it rates is tested on each (verdicts.py),
ordered and equal pairs alike. Rows marked ``ours: true`` hold our own criteria (quality,
reproducibility): the article claims nothing there, so they describe, never judge, and are never
evidence for an article row. The license row compares the article's words with each framework's
own license, not with the licenses of the components it bundles (facts.py).

Each criterion's verdict links to what it rests on in report.html: the criterion's row of the
criteria table (``#crit-<key>``) and its figure (``#plot-criteria``, ``#plot-scaling``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Mapping

import numpy as np

from framework_arena.compare.criteria import CRITERIA, OWN_NOT_SPLIT, Cell, GroupData
from framework_arena.compare.rank import Ranking
from framework_arena.compare.verdicts import CONTENDED_TAG, Pair, VerdictSettings, judge
from framework_arena.facts import normalize_license

ARTICLE_FRAMEWORKS = ("tensorflow", "torch", "keras")


@dataclass
class CriterionVerdict:
    key: str
    verdict: str  # agrees | agrees (parity) | disagrees | partly | not comparable | measured (ours) | one framework: ...
    details: list[str]  # one line per pair (or per framework for the license)
    conclusive: bool = True
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, anchor in report.html)
    note: str = ""  # what is missing: shown with the evidence

    @property
    def summary(self) -> str:
        return f"{self.key}: {self.verdict}" + ("" if self.conclusive else ", not conclusive")


@dataclass
class ArticleRow:
    row: str  # the article's row; ours end in " (ours)"
    claims: dict[str, str]  # framework -> the article's words
    evidence: list[str]  # one line per criterion: kind and values
    verdict: str  # plain text: one summary line per criterion, its pairs indented below
    criteria: list[CriterionVerdict] = field(default_factory=list)
    ours: bool = False

    @property
    def cell(self) -> str:
        """The verdict for the report's table: ``<br>`` between lines, ``[label](#anchor)`` links."""
        lines = []
        for c in self.criteria:
            links = ", ".join(f"[{label}]({anchor})" for label, anchor in c.links[1:])
            head = f"[{c.key}]({c.links[0][1]})" if c.links else c.key
            lines.append(f"{head}: {c.verdict}" + ("" if c.conclusive else ", not conclusive") + (f" ({links})" if links else ""))
            lines += [f"· {d}" for d in c.details]
        return "<br>".join(lines)


class ArticleSection(list[ArticleRow]):
    """The article's rows, with the legend that says how they were judged."""

    def __init__(self, rows: list[ArticleRow], legend: list[str]) -> None:
        super().__init__(rows)
        self.legend = legend


def _base(group: str) -> str:
    return group.split("/")[0].split("-")[0]


def _comparable(a: str, b: str) -> bool:
    """Pairs of the same workload (``torch/cnn`` with ``tensorflow/cnn``, not with ``/mlp``)."""
    return a.partition("/")[2] == b.partition("/")[2]


def _links(key: str, cells: Mapping[str, Cell]) -> list[tuple[str, str]]:
    links = [("row", f"#crit-{key}")]
    plotted = any(c.value is not None and math.isfinite(c.value) for c in cells.values())
    if key == "large_data" and plotted:
        links.append(("scaling figure", "#plot-scaling"))
    elif CRITERIA[key].measure is not None and plotted:
        links.append(("figure", "#plot-criteria"))
    return links


def runs_behind(key: str, groups: Mapping[str, GroupData]) -> dict[str, int]:
    """Per group, the runs that carry a value of measured criterion ``key``: each run measured alone.

    A run without the metric, or not at the largest size (large_data), carries none; a criterion
    that needs several runs at once (reproducibility) is left to its cell's count.
    """
    measure = CRITERIA[key].measure
    if measure is None:
        return {}
    out = {}
    for g, d in groups.items():
        alone = measure(d, np.arange(d.n)[:, None]) if d.n else np.zeros(0)
        if np.any(~np.isnan(alone)):
            out[g] = int(np.count_nonzero(~np.isnan(alone)))
    return out


def _combine(pairs: list[Pair], static: bool, ours: bool) -> tuple[str, bool]:
    if ours:
        return "measured (ours: no claim in the article)", all(not p.reasons for p in pairs)
    verdicts = {p.verdict for p in pairs}
    if verdicts <= {"agrees", "agrees (parity)"}:
        verdict = "agrees (parity)" if verdicts == {"agrees (parity)"} else "agrees"
    else:
        verdict = "disagrees" if verdicts == {"disagrees"} else "partly"
    return verdict + (" (static)" if static else ""), all(not p.reasons for p in pairs)


def license_agrees(claim: str, own: str) -> bool:
    """Whether the article's words (``BSD``, ``Apache 2.0``) name the framework's own license.

    A family without a version or clause count (``BSD``) names every member (``BSD-3-Clause``);
    an exception (``WITH LLVM-exception``) does not change the license; of ``A OR B``, either.
    """
    wanted = normalize_license(claim)
    for alternative in re.split(r"\s+OR\s+", own):
        name = alternative.strip("() ").split(" WITH ")[0]
        if name == wanted or name.startswith(wanted + "-"):
            return True
    return False


def _license(claims: Mapping[str, str], cells: Mapping[str, Cell]) -> CriterionVerdict:
    agree, differ, missing, whole = [], [], [], []
    for g, cell in cells.items():
        claim = claims.get(_base(g), "")
        if not claim:
            continue
        if cell.value is None and cell.display in ("missing", "unknown"):
            missing.append(g)
        elif OWN_NOT_SPLIT in cell.note or cell.display == "unknown":
            whole.append(g)
        else:
            (agree if license_agrees(claim, cell.display) else differ).append(f"{g}: article {claim}, own license {cell.display}")
    lines = [f"{line}: agrees" for line in agree] + [f"{line}: disagrees" for line in differ]
    unknown = ([f"own license missing for {', '.join(missing)}"] if missing else []) + (
        [f"own license not recorded for {', '.join(whole)}: its runs logged only the whole distribution's declaration"] if whole else []
    )
    links = [("row", "#crit-license")]
    if not agree and not differ:  # nothing to hold against the article, e.g. runs from before trials logged the license
        return CriterionVerdict("license", "not comparable", [], links=links, note="; ".join(unknown))
    verdict = "agrees" if agree and not differ else "disagrees" if differ and not agree else "partly"
    return CriterionVerdict("license", verdict, lines, not unknown, links, "; ".join(unknown))


def _criterion(
    key: str,
    spec: Mapping[str, Any],
    ours: bool,
    table: Mapping[str, Mapping[str, Cell]],
    ranking: Ranking,
    s: VerdictSettings,
    groups_data: Mapping[str, GroupData],
    contended: Mapping[str, int],
) -> CriterionVerdict:
    # The article's order of frameworks, not the ranking's: a pair reads the same in every report.
    groups = sorted((r.group for r in ranking.rows), key=lambda g: (ARTICLE_FRAMEWORKS.index(_base(g)) if _base(g) in ARTICLE_FRAMEWORKS else 99, g))
    cells = table[key]
    if key == "license":
        return _license(spec.get("claims") or {}, cells)
    missing = [g for g in groups if cells[g].value is None]
    order = spec.get("order") or {}
    runs = runs_behind(key, groups_data)
    pairs: list[Pair] = []
    for a, b in combinations(groups, 2):
        if not _comparable(a, b) or (not ours and (_base(a) == _base(b) or _base(a) not in order or _base(b) not in order)):
            continue  # the article compares frameworks, not Keras' back ends with each other
        oa, ob = (order.get(_base(a)), order.get(_base(b))) if not ours else (0, 0)
        first, second = (b, a) if not ours and ob < oa else (a, b)
        claim = "" if ours else "equal" if oa == ob else "better"
        pair = judge(key, first, second, claim, table, ranking, s, contended, runs)
        if pair is not None:
            pairs.append(pair)
    never = [g for g in groups if cells[g].value is not None and math.isinf(cells[g].value)]
    note = "; ".join(([f"missing for {', '.join(missing)}"] if missing else []) + ([f"never reached by {', '.join(never)}"] if len(never) > 1 else []))
    if len(groups) < 2:
        return CriterionVerdict(key, "one framework: nothing to hold the article's order against", [], links=_links(key, cells))
    if not pairs:
        return CriterionVerdict(key, "not comparable", [], links=_links(key, cells), note=note)
    verdict, conclusive = _combine(pairs, CRITERIA[key].kind == "static", ours)
    return CriterionVerdict(key, verdict, [p.text(ranking.confidence) for p in pairs], conclusive and not missing, _links(key, cells), note)


def compare_article(
    article: Mapping[str, Any],
    table: Mapping[str, Mapping[str, Cell]],
    ranking: Ranking,
    groups: Mapping[str, GroupData] | None = None,
    include_contended: bool = True,
) -> ArticleSection:
    """Every row of ``criteria.article.rows``, each criterion's verdict with its strength.

    ``groups`` (the runs behind each group) tells which runs were tagged contended; without it
    none is assumed. With ``include_contended=False`` their speed figures were screened out
    (trust.py) before measuring, so they weaken no verdict.
    """
    settings = VerdictSettings.from_config(article)
    names = [r.group for r in ranking.rows]
    counted = (groups or {}) if include_contended else {}
    contended = {g: sum(t.tags.get(CONTENDED_TAG, "").lower() == "true" for t in d.trials) for g, d in counted.items()}
    out = []
    for row, spec in (article.get("rows") or {}).items():
        ours = bool(spec.get("ours"))
        claims = {f: str(v) for f, v in (spec.get("claims") or {}).items()}
        evidence, verdicts = [], []
        for key in spec.get("criteria") or []:
            crit, cells = CRITERIA[key], table[key]
            # The license's note holds its source and the bundled components' licenses: shown beside it.
            values = ", ".join(f"{g} {cells[g].display}" + (f" ({cells[g].note})" if key == "license" and cells[g].value is not None else "") for g in names)
            verdict = _criterion(key, spec, ours, table, ranking, settings, groups or {}, contended)
            evidence.append(f"{crit.title} [{crit.kind}]: {values}" + (f" ({verdict.note})" if verdict.note else ""))
            verdicts.append(verdict)
        text = "\n".join(v.summary + "".join(f"\n  {d}" for d in v.details) for v in verdicts)
        out.append(ArticleRow(f"{row} (ours)" if ours else row, claims, evidence, text, verdicts, ours))
    return ArticleSection(out, legend(article, settings, ranking.confidence))


def legend(article: Mapping[str, Any], s: VerdictSettings, confidence: float) -> list[str]:
    """How the article section was read: the row -> criteria mapping and the verdict rules."""
    rows = article.get("rows") or {}
    mapping = "; ".join(f"{r.replace('_', ' ')}: {', '.join(spec.get('criteria') or [])}" for r, spec in rows.items() if not spec.get("ours"))
    ours = ", ".join(r for r, spec in rows.items() if spec.get("ours"))
    margins = "".join(f", {k} {m:g}" for k, m in s.margins.items())
    return [
        f"Article rows and the criteria held against them: {mapping}."
        + (f" Rows marked (ours), {ours}: our own criteria, on which the article makes no claim; never evidence for an article row." if ours else ""),
        "Verdicts test every pair of frameworks a row rates, ordered (“better”) and equal (“parity”) alike. "
        f"Two values within a ratio of {s.margin:g} are practically equal (criteria.article.verdicts.margin{margins}); "
        f"a pair is separated when its {confidence:.0%} intervals do not overlap and the ratio is beyond the margin. "
        "The effect is the ratio of the two values, better over worse; its interval combines the two values' intervals at their extremes.",
        f"Not conclusive: fewer than {s.min_runs} runs per framework (verdicts.min_runs), intervals that overlap or reach across the margin, "
        f"no bootstrap, or runs tagged {CONTENDED_TAG}=true behind {', '.join(s.contention_sensitive)}. "
        "Static verdicts restate ratings from config; license and code size are facts the trials logged, with no sampling error.",
        "License: the article's words against each framework's own license (tag arena.license), not the licenses of the components it bundles (listed apart).",
    ]
