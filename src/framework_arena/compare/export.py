"""The comparison as CSV files: ranking, criteria (the aggregate), workloads (per workload), runs, and
scaling (the curve behind large_data, when the runs vary a size)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from framework_arena.compare import scaling
from framework_arena.compare.criteria import CRITERIA
from framework_arena.compare.sections import Report, score_text


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def write_csv(rep: Report, folder: Path) -> list[Path]:
    paths = {name: folder / f"{name}.csv" for name in ("ranking", "criteria", "workloads", "runs")}
    rk = rep.ranking
    with paths["ranking"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "tied", "framework", "score", "score_low", "score_high", "runs", "profile"])
        for r in rk.rows:
            w.writerow([r.rank, r.tied, r.group, f"{r.total:.6f}", f"{r.low:.6f}", f"{r.high:.6f}", r.runs, rep.profile])
    with paths["criteria"].open("w", newline="") as f:
        w = csv.writer(f)
        header = ["criterion", "title", "article_row", "kind", "unit", "direction", "weight", "in_total", "framework", "value", "display"]
        w.writerow(header + ["value_low", "value_high", "score", "score_low", "score_high", "best_or_tied", "runs", "workloads", "note", "how"])
        for key, crit in CRITERIA.items():
            for g in rep.names:
                cell = rep.table[key][g]
                lo, hi = rk.value_intervals[key].get(g, (None, None))
                slo, shi = rk.score_intervals.get(key, {}).get(g, (None, None))
                w.writerow(
                    [key, crit.title, crit.article_row, crit.kind, crit.unit, crit.direction, rk.weights.get(key, 0), key in rk.used, g]
                    + [_blank(cell.value), cell.display, _blank(lo), _blank(hi), score_text(rk.scores[key][g]), _blank(slo), _blank(shi)]
                    + [g in rk.best.get(key, []), cell.n, len(rk.counted.get(key, {}).get(g, [])) if key in rk.counted else "", cell.note, crit.how]
                )
    with paths["workloads"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["workload", "in_aggregate", "framework", "criterion", "value", "value_low", "value_high", "ratio", "ratio_low", "ratio_high", "runs", "seeds"]
        )
        for ws in rk.workloads:
            for key, row in ws.values.items():
                for g, value in row.items():
                    lo, hi = ws.value_intervals[key].get(g, (None, None))
                    ratio = ws.ratios.get(key, {}).get(g)
                    rlo, rhi = ws.ratio_intervals.get(key, {}).get(g, (None, None))
                    w.writerow(
                        [ws.label, ws.runs.scored, g, key, _blank(value), _blank(lo), _blank(hi), _blank(ratio), _blank(rlo), _blank(rhi)]
                        + [ws.runs.groups[g].n, " ".join(ws.runs.seeds(g))]
                    )
    with paths["runs"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["framework", "run_id", "run_name", "model", "data", "seed", "workload"])
        label = {t.run_id: ws.label for ws in rk.workloads for d in ws.runs.groups.values() for t in d.trials}
        for t in rep.selection.trials:
            w.writerow([t.group, t.run_id, t.run_name, t.model, t.data, t.seed, label.get(t.run_id, "")])
    curves = scaling.curves(rk.workloads)
    if curves:  # the scaling curve behind large_data and the scaling figure
        paths["scaling"] = folder / "scaling.csv"
        with paths["scaling"].open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["family", "framework", "size_key", "size", "speed/samples_per_s", "memory/peak_rss_mb", "runs", "every_framework_ran"])
            key = scaling.size_key(rk.workloads)
            for c in curves:
                for p in c.points:
                    w.writerow(
                        [
                            c.family,
                            c.group,
                            key,
                            int(p.size) if p.size.is_integer() else p.size,
                            _nan_blank(p.throughput),
                            _nan_blank(p.memory),
                            p.runs,
                            p.common,
                        ]
                    )
    return list(paths.values())


def _nan_blank(value: float) -> float | str:
    return "" if math.isnan(value) else value
