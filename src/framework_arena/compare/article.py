"""The article's table beside our measurements: for each row, where they agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from framework_arena.compare.criteria import CRITERIA, Cell
from framework_arena.compare.rank import Ranking

ARTICLE_FRAMEWORKS = ("tensorflow", "torch", "keras")


@dataclass
class ArticleRow:
    row: str
    claims: dict[str, str]  # framework -> the article's words
    evidence: list[str]  # one line per criterion: kind and values
    verdict: str  # agrees | disagrees | partly | no difference measured | not comparable | static


def _base(group: str) -> str:
    return group.split("/")[0].split("-")[0]


def _better(ranking: Ranking, key: str, a: str, b: str) -> bool | None:
    """True if ``a`` beats ``b`` beyond the intervals, False if ``b`` beats ``a``, None if tied/missing."""
    sa, sb = ranking.scores[key].get(a), ranking.scores[key].get(b)
    ia, ib = ranking.value_intervals[key].get(a), ranking.value_intervals[key].get(b)
    if sa is None or sb is None or ia is None or ib is None or sa == sb:
        return None
    if ia[0] <= ib[1] and ib[0] <= ia[1]:
        return None  # overlapping intervals: the data cannot tell them apart
    return sa > sb


def _order_verdict(order: Mapping[str, int], ranking: Ranking, key: str, groups: list[str]) -> tuple[str, list[str]]:
    confirmed, contradicted = [], []
    for a in groups:
        for b in groups:
            oa, ob = order.get(_base(a)), order.get(_base(b))
            if oa is None or ob is None or oa >= ob:
                continue  # only pairs the article orders, claimed-better first
            result = _better(ranking, key, a, b)
            if result is True:
                confirmed.append(f"{a} > {b}")
            elif result is False:
                contradicted.append(f"{b} > {a}")
    if confirmed and not contradicted:
        return "agrees", confirmed
    if contradicted and not confirmed:
        return "disagrees", contradicted
    if confirmed and contradicted:
        return "partly", confirmed + [f"but {c}" for c in contradicted]
    return "no difference measured", []


def _license_verdict(claims: Mapping[str, str], cells: Mapping[str, Cell]) -> tuple[str, list[str]]:
    agree, differ = [], []
    for g, cell in cells.items():
        claim = claims.get(_base(g), "")
        token = re.sub(r"\s+", "-", claim.strip()).split("-")[0]  # "Apache 2.0" -> Apache, "BSD", "MIT"
        if not claim or cell.value is None:
            continue
        (agree if token and token in cell.display else differ).append(f"{g}: article {claim}, installed {cell.display}")
    if not agree and not differ:  # nothing to hold against the article, e.g. runs from before trials logged the license
        missing = [g for g, cell in cells.items() if cell.value is None]
        return "not comparable", [f"missing for {', '.join(missing)}"] if missing else []
    if agree and not differ:
        return "agrees", agree
    return ("disagrees" if not agree else "partly"), differ + agree


def compare_article(article: Mapping[str, Any], table: Mapping[str, Mapping[str, Cell]], ranking: Ranking) -> list[ArticleRow]:
    groups = [r.group for r in ranking.rows]
    out = []
    for row, spec in (article.get("rows") or {}).items():
        claims = {f: str(v) for f, v in (spec.get("claims") or {}).items()}
        evidence, verdicts = [], []
        for key in spec.get("criteria") or []:
            crit = CRITERIA[key]
            cells = table[key]
            values = ", ".join(f"{g} {cells[g].display}" for g in groups)
            if len(groups) < 2 and key != "license":
                verdict, why = "one framework: nothing to hold the article's order against", []
            elif key == "license":
                verdict, why = _license_verdict(claims, cells)
            elif spec.get("order") and all(cells[g].value is not None for g in groups):
                verdict, why = _order_verdict(spec["order"], ranking, key, groups)
                if crit.kind == "static" and verdict != "no difference measured":
                    verdict += " (static)"
            else:
                verdict, why = (
                    "not comparable",
                    [f"missing for {', '.join(g for g in groups if cells[g].value is None)}"] if any(cells[g].value is None for g in groups) else [],
                )
            evidence.append(f"{crit.title} [{crit.kind}]: {values}" + (f" ({'; '.join(why)})" if why else ""))
            verdicts.append(f"{key}: {verdict}")
        out.append(ArticleRow(row, claims, evidence, "; ".join(verdicts)))
    return out
