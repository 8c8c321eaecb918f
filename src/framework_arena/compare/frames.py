"""A comparison as data for programs: DataFrames for the Python API, JSON for scripts and CI gates.

Both read what the report wrote (``ranking.csv``, ``criteria.csv``, ``runs.csv``) and the article
rows, so the terminal, the files, the API and the JSON never disagree.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from framework_arena.compare.sections import Report


def _verdict_rows(rep: Report) -> list[dict[str, Any]]:
    return [
        {
            "article row": a.row.replace("_", " "),
            "tensorflow": a.claims.get("tensorflow", ""),
            "torch": a.claims.get("torch", ""),
            "keras": a.claims.get("keras", ""),
            "evidence": " / ".join(a.evidence),
            "verdict": a.verdict,
        }
        for a in rep.article
    ]


def frames(rep: Report, folder: Path) -> dict[str, pd.DataFrame]:
    """``ranking``, ``criteria`` (the aggregate), ``workloads`` (per workload), ``verdicts`` and ``runs`` as pandas DataFrames."""
    import pandas as pd

    out = {name: pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""]) for name in ("ranking", "criteria", "workloads", "runs")}
    out["verdicts"] = pd.DataFrame(_verdict_rows(rep), columns=["article row", "tensorflow", "torch", "keras", "evidence", "verdict"])
    return out


def _number(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else str(value)  # JSON has no inf/NaN: "inf" says "not reached"


def as_json(rep: Report, folder: Path) -> str:
    """One JSON document: the ranking (rank, score, interval per framework), every criterion's
    value and score per framework, the verdicts and the comparison run."""
    with (folder / "ranking.csv").open(newline="") as f:
        ranking = [
            {"framework": r["framework"], "rank": int(r["rank"]), "tied": r["tied"] == "True", "score": _number(r["score"]),
             "score_low": _number(r["score_low"]), "score_high": _number(r["score_high"]), "runs": int(r["runs"])}
            for r in csv.DictReader(f)
        ]  # fmt: skip
    criteria: dict[str, dict[str, Any]] = {}
    with (folder / "criteria.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            entry = criteria.setdefault(
                r["criterion"],
                {"title": r["title"], "kind": r["kind"], "unit": r["unit"], "direction": r["direction"], "weight": _number(r["weight"]), "values": {}},
            )
            entry["values"][r["framework"]] = {"value": _number(r["value"]), "display": r["display"], "score": _number(r["score"])}
    doc = {
        "selection": rep.selection.describe(),
        "profile": rep.profile,
        "runs": len(rep.selection.trials),
        "comparison_run_id": rep.run_id,
        "ranking": ranking,
        "criteria": criteria,
        "verdicts": _verdict_rows(rep),
    }
    return json.dumps(doc, indent=None, sort_keys=False)
