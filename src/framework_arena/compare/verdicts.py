"""One claim of the article held against two frameworks' measurements: the rules of a verdict.

A claim is about a pair: "a is better than b" (the row's ``order`` ranks a above b) or "a and b
are equal" (the same order: a parity claim, tested like any other). Between the pair we measure
one **effect**: the ratio of their values, above 1 in favour of ``a`` (``a / b`` where higher is
better, ``(b + floor) / (a + floor)`` where lower is, with the criterion's floor as in rank.py).
Its interval combines the two value intervals (rank.py's bootstrap) at their extremes, e.g.
``[a_low / b_high, a_high / b_low]``: never narrower than the interval of the ratio itself.

The pair is **separated** when the value intervals do not overlap and the ratio is beyond the
practical margin (``ratio >= margin`` or ``<= 1 / margin``); otherwise the two are equal for the
verdict: *practically equal* (ratio within the margin) or *cannot be told apart* (the intervals
overlap). An ordered claim agrees when the claimed-better one is separated ahead; a parity claim
agrees ("agrees (parity)") when the two are equal; anything else disagrees, with the ratio.

A measured verdict is **not conclusive**, with the reasons, when a framework has fewer than
``min_runs`` runs, there are no intervals (``bootstrap.samples=0``), the intervals overlap, the
ratio's interval reaches across the margin, or (criteria in ``contention_sensitive``) runs behind
it were tagged ``arena.contended=true``. Facts the trials logged (license, code size) and static
ratings have no sampling error: the rules of runs and intervals do not apply to them.

Thresholds live in ``criteria.article.verdicts`` (conf/criteria/default.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from framework_arena.compare.criteria import CRITERIA, Cell
from framework_arena.compare.rank import Ranking
from framework_arena.compare.trust import SPEED_CRITERIA
from framework_arena.validation import expect

#: The run tag that marks a trial measured while other work took its cores.
CONTENDED_TAG = "arena.contended"


@dataclass(frozen=True)
class VerdictSettings:
    margin: float = 1.2  # values within this ratio of each other are practically equal
    min_runs: int = 3  # runs per framework below which a measured verdict is not conclusive
    margins: Mapping[str, float] = field(default_factory=dict)  # per criterion, overriding margin
    contention_sensitive: tuple[str, ...] = SPEED_CRITERIA  # the ones a contended run's timings are screened out of

    @classmethod
    def from_config(cls, article: Mapping[str, Any]) -> VerdictSettings:
        v = dict(article.get("verdicts") or {})
        if v.get("contention_sensitive") is not None:  # null: the default; [] is none
            v["contention_sensitive"] = tuple(v["contention_sensitive"])
        return cls(**{k: v[k] for k in ("margin", "min_runs", "margins", "contention_sensitive") if k in v and v[k] is not None})

    def margin_for(self, key: str) -> float:
        return float(self.margins.get(key, self.margin))


def check(problems: list[str], article: Mapping[str, Any]) -> None:
    """Adds a message to ``problems`` for every wrong value of ``criteria.article``."""
    v = article.get("verdicts") or {}
    key = "criteria.article.verdicts"
    for name in v:
        expect(
            problems, name in ("margin", "margins", "min_runs", "contention_sensitive"), key, name, "to hold margin, margins, min_runs, contention_sensitive"
        )
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    margin = v.get("margin", VerdictSettings.margin)
    expect(problems, num(margin) and margin > 1, f"{key}.margin", margin, "to be a ratio > 1 (1.2: values within 20% of each other are practically equal)")
    runs = v.get("min_runs", VerdictSettings.min_runs)
    expect(problems, isinstance(runs, int) and not isinstance(runs, bool) and runs >= 1, f"{key}.min_runs", runs, "to be an integer >= 1")
    for crit, m in (v.get("margins") or {}).items():
        expect(problems, crit in CRITERIA, f"{key}.margins.{crit}", m, f"to name a known criterion: {', '.join(CRITERIA)}")
        expect(problems, num(m) and m > 1, f"{key}.margins.{crit}", m, "to be a ratio > 1")
    for crit in v.get("contention_sensitive") or ():
        expect(problems, crit in CRITERIA, f"{key}.contention_sensitive", crit, f"to name known criteria: {', '.join(CRITERIA)}")
    for row, spec in (article.get("rows") or {}).items():
        for crit in spec.get("criteria") or []:
            expect(problems, crit in CRITERIA, f"criteria.article.rows.{row}.criteria", crit, f"to name known criteria: {', '.join(CRITERIA)}")
        for fw, rank in (spec.get("order") or {}).items():
            expect(
                problems, isinstance(rank, int) and not isinstance(rank, bool), f"criteria.article.rows.{row}.order.{fw}", rank, "to be an integer (1 = best)"
            )
        if spec.get("ours"):
            expect(problems, not spec.get("claims") and not spec.get("order"), f"criteria.article.rows.{row}", row, "(ours: true) to carry no claims or order")


def _div(x: float, y: float) -> float:
    if math.isinf(x) and math.isinf(y):
        return 1.0  # both never reached the target: equal
    if y == 0 or math.isinf(x):
        return 1.0 if x == y else math.inf
    return x / y


def effect(key: str, a: float, b: float) -> float:
    """The ratio of ``a`` to ``b``, above 1 when ``a`` is better on criterion ``key``."""
    crit = CRITERIA[key]
    return _div(a, b) if crit.direction == "higher" else _div(b + crit.floor, a + crit.floor)


def _ratio_text(r: float) -> str:
    return "∞" if math.isinf(r) else f"{r:.0f}" if r >= 100 else f"{r:#.3g}"


@dataclass
class Pair:
    """One claim between two frameworks, and what the measurements say of it."""

    first: str  # the claimed-better one for an ordered claim
    second: str
    claim: str  # better (first better than second) | equal | "" (ours: the article claims nothing)
    relation: str  # better | worse | practically equal | cannot be told apart
    ratio: float  # first over second, above 1 favours first
    low: float
    high: float
    runs: tuple[int, int]
    reasons: list[str]  # why it is not conclusive; empty: conclusive
    kind: str  # measured | fact | static

    @property
    def verdict(self) -> str:
        if not self.claim:
            return ""
        if self.claim == "equal":
            return "agrees (parity)" if self.relation in ("practically equal", "cannot be told apart") else "disagrees"
        return "agrees" if self.relation == "better" else "disagrees"

    def text(self, confidence: float) -> str:
        """E.g. ``disagrees: tensorflow vs torch, article: equal; measured: torch better by 5.23x (95%: 5.0–5.5); runs 3 v 3``."""
        flip = self.ratio < 1
        winner, loser = (self.second, self.first) if flip else (self.first, self.second)
        r, lo, hi = (_div(1, self.ratio), _div(1, self.high), _div(1, self.low)) if flip else (self.ratio, self.low, self.high)
        claim = {"better": f"article: {self.first} better", "equal": "article: equal", "": "no claim in the article"}[self.claim]
        if self.relation in ("better", "worse"):
            measured = f"{winner} better by {_ratio_text(r)}x"
        else:
            measured = f"{self.relation}, {winner} ahead by {_ratio_text(r)}x" if r != 1 else "equal values"
        if self.kind == "measured" and (lo, hi) != (r, r):
            measured += f" ({confidence:.0%}: {_ratio_text(lo)}–{_ratio_text(hi)})"
        runs = f"runs {self.runs[0]} v {self.runs[1]}" if self.kind != "static" else "static ratings"
        seen = "rated" if self.kind == "static" else "measured"
        out = (f"{self.verdict}: " if self.verdict else "") + f"{self.first} vs {self.second}, {claim}; {seen}: {measured}; {runs}"
        return out + (f"; not conclusive: {', '.join(self.reasons)}" if self.reasons else "")


def judge(
    key: str,
    first: str,
    second: str,
    claim: str,
    table: Mapping[str, Mapping[str, Cell]],
    ranking: Ranking,
    settings: VerdictSettings,
    contended: Mapping[str, int],
    runs: Mapping[str, int] | None = None,
) -> Pair | None:
    """The claim ``claim`` between ``first`` and ``second`` on criterion ``key``; None without two values.

    ``runs``: the runs behind each group's value where they are fewer than its cell's ``n``
    (large_data: the runs at the largest size only).
    """
    crit = CRITERIA[key]
    ca, cb = table[key][first], table[key][second]
    na, nb = (runs or {}).get(first, ca.n), (runs or {}).get(second, cb.n)
    if ca.value is None or cb.value is None or (math.isinf(ca.value) and math.isinf(cb.value)):
        return None  # missing, or neither ever reached the target: nothing measured between them
    ia = ranking.value_intervals[key].get(first, (ca.value, ca.value))
    ib = ranking.value_intervals[key].get(second, (cb.value, cb.value))
    r = effect(key, ca.value, cb.value)
    corners = [effect(key, x, y) for x in ia for y in ib]
    low, high = min(corners + [r]), max(corners + [r])
    m = settings.margin_for(key)
    overlap = ia[0] <= ib[1] and ib[0] <= ia[1]
    within = 1 / m < r < m
    relation = ("better" if r > 1 else "worse") if not overlap and not within else "practically equal" if within else "cannot be told apart"
    kind = "static" if crit.kind == "static" else "measured" if crit.measure is not None else "fact"
    reasons: list[str] = []
    if kind == "measured":
        if min(na, nb) < settings.min_runs:
            reasons.append(f"fewer than {settings.min_runs} runs per framework (min_runs)")
        if ranking.samples == 0:
            reasons.append("no intervals (bootstrap.samples=0)")
        if relation == "cannot be told apart":
            reasons.append(f"the {ranking.confidence:.0%} intervals overlap")
        elif relation == "practically equal" and not (1 / m < low and high < m):
            reasons.append(f"the ratio's interval reaches beyond the margin {m:g}")
        elif relation in ("better", "worse") and not (low >= m or high <= 1 / m):
            reasons.append(f"the ratio's interval reaches into the margin {m:g}")
        if ca.unstable or cb.unstable:
            reasons.append("speed unstable: its runs scatter beyond trust.py's limits")
        n_contended = contended.get(first, 0) + contended.get(second, 0)
        if key in settings.contention_sensitive and n_contended:
            reasons.append(f"{n_contended} contended run{'s' if n_contended > 1 else ''} ({CONTENDED_TAG}=true)")
    return Pair(first, second, claim, relation, r, low, high, (na, nb), reasons, kind)
