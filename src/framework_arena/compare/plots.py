"""The report's figures, as PNG files (embedded in report.html, logged as artifacts).

Each function decides what its figure shows and returns it as a :class:`~framework_arena.compare.draw.Sketch`
(None when there is nothing to show), drawn by draw.py here or in a worker process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from framework_arena.compare import scaling as scaling_curves
from framework_arena.compare.aggregate import WorkloadScores
from framework_arena.compare.criteria import CRITERIA, Cell
from framework_arena.compare.draw import Sketch
from framework_arena.compare.rank import Ranking


def _colors(groups: Sequence[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    return {g: palette[i % len(palette)] for i, g in enumerate(sorted(groups))}  # one colour per framework in every figure


def criteria_bars(path: Path, table: Mapping[str, Mapping[str, Cell]], ranking: Ranking) -> Sketch:
    plt = Sketch(path)
    groups = [r.group for r in ranking.rows]
    # Measured criteria only: static values are ratings from config, read in the tables.
    keys = [k for k, c in CRITERIA.items() if c.measure is not None and any(table[k][g].value is not None and math.isfinite(table[k][g].value) for g in groups)]  # type: ignore[arg-type]
    cols = 3
    rows = max(1, math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    colors = _colors(groups)
    for ax, key in zip(axes.flat, keys):
        crit = CRITERIA[key]
        vals = [table[key][g].value for g in groups]
        heights = [v if v is not None and math.isfinite(v) else 0.0 for v in vals]
        iv = ranking.value_intervals[key]
        err = np.array(
            [
                [h - iv[g][0], iv[g][1] - h] if g in iv and vals[i] is not None and math.isfinite(vals[i]) else [0.0, 0.0]
                for i, (g, h) in enumerate(zip(groups, heights))
            ]
        ).T  # type: ignore[arg-type]
        ax.bar(range(len(groups)), heights, yerr=np.clip(err, 0, None) if np.any(err > 0) else None, capsize=3, color=[colors[g] for g in groups])
        for i, v in enumerate(vals):
            if v is None or not math.isfinite(v):
                ax.text(i, 0, "missing" if v is None else "not reached", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(groups)), groups, rotation=20, fontsize=7)
        arrow = "higher is better" if crit.direction == "higher" else "lower is better"
        ax.set_title(f"{crit.title} [{crit.kind}]\n{crit.unit}, {arrow}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return plt


def _line_styles(workloads: Sequence[WorkloadScores]) -> dict[str, str]:
    styles = ["-", "--", ":", "-."]
    return {w.label: styles[i % len(styles)] for i, w in enumerate(workloads)}  # colour: framework; line: workload


def learning_curves(path: Path, workloads: Sequence[WorkloadScores]) -> Sketch | None:
    """Median curves per framework and workload: an MLP's and a CNN's curves are not averaged."""
    curves = {(g, w.label): [t.history for t in d.trials if t.history.get("val/accuracy")] for w in workloads for g, d in w.runs.groups.items()}
    if not any(curves.values()):
        return None
    plt = Sketch(path)
    colors = _colors(sorted({g for g, _ in curves}))
    styles = _line_styles(workloads)
    several = len(workloads) > 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in ((axes[0], "val/accuracy"), (axes[1], "train/loss")):
        for (g, label), hists in curves.items():
            series = [dict(h.get(key, [])) for h in hists if h.get(key)]
            if not series:
                continue
            steps = sorted(set().union(*series))
            table = np.array([[s.get(step, np.nan) for step in steps] for s in series])
            name = f"{g} · {label}" if several else g
            ax.plot(steps, np.nanmedian(table, axis=0), styles[label], color=colors[g], label=f"{name} (median of {len(series)})")
            if len(series) > 1:
                ax.fill_between(steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=colors[g], alpha=0.15)
    return _finish_pair(plt, fig, axes, ("epoch", "epoch"), ("validation accuracy", "training loss"))


def scaling(path: Path, workloads: Sequence[WorkloadScores]) -> Sketch | None:
    """Throughput and peak memory against the size the runs vary, one line per framework and family
    (the workload but its size: compare/scaling.py); hollow markers where not every framework ran."""
    lines = scaling_curves.curves(workloads)
    if not lines:
        return None
    plt = Sketch(path)
    colors = _colors(sorted({c.group for c in lines}))
    families = sorted({c.family for c in lines})
    styles = {f: (["o", "s", "^", "d"][i % 4], ["-", "--", ":", "-."][i % 4]) for i, f in enumerate(families)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for c in lines:
        marker, line = styles[c.family]
        sizes = [p.size for p in c.points]
        for ax, values in ((axes[0], [p.throughput for p in c.points]), (axes[1], [p.memory for p in c.points])):
            ax.plot(sizes, values, line, color=colors[c.group], label=f"{c.group} · {c.family}" if len(families) > 1 else c.group)
            for p, v in zip(c.points, values):
                ax.plot([p.size], [v], marker, color=colors[c.group], markerfacecolor=colors[c.group] if p.common else "none")
    for ax in axes:
        ax.set_xscale("log")
    key = scaling_curves.size_key(workloads) or "size"
    return _finish_pair(plt, fig, axes, (key, key), ("training throughput, samples/s", "peak resident memory, MB"))


def _profile_curves(ranking: Ranking) -> dict[str, dict[str, list[float]]]:
    """Panel -> group -> its ratio to the best on each workload: the profile's score, then each
    measured criterion of the profile."""
    by_label = {w.label: w for w in ranking.workloads}
    best = {lab: max(t.values()) for lab, t in ranking.workload_totals.items()}
    panels = {"the profile's score": {g: [] for g in [r.group for r in ranking.rows]}}
    for lab, totals in ranking.workload_totals.items():
        for g, t in totals.items():
            panels["the profile's score"][g].append(t / best[lab] if best[lab] > 0 else 1.0)
    for k in ranking.used:
        if k in ranking.counted:
            panels[CRITERIA[k].title] = {g: [by_label[lab].ratios[k][g] for lab in labs] for g, labs in ranking.counted[k].items() if labs}  # type: ignore[misc]
    return {name: curves for name, curves in panels.items() if any(curves.values())}


def performance_profile(path: Path, ranking: Ranking) -> Sketch | None:
    """For each framework, the share of workloads on which it is within a factor τ of the best."""
    panels = _profile_curves(ranking)
    if not panels:
        return None
    plt = Sketch(path)
    panels = dict(list(panels.items())[:6])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    colors = _colors([r.group for r in ranking.rows])
    top = max(2.0, ranking.tau * 1.2)
    taus = np.linspace(1.0, top, 200)
    for ax, (title, curves) in zip(axes.flat, panels.items()):
        for g, ratios in curves.items():
            if ratios:
                r = np.array(ratios, dtype=float)
                ax.step(taus, [(r >= 1.0 / t - 1e-12).mean() for t in taus], where="post", color=colors[g], label=g)
        ax.axvline(ranking.tau, color="#999", linestyle=":", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("τ (factor of the best)", fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("share of workloads within τ", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return plt


def _finish_pair(plt: Sketch, fig, axes, xlabels: tuple[str, str], titles: tuple[str, str]) -> Sketch:  # type: ignore[no-untyped-def]
    """Labels a two-panel figure, puts the legend on the left panel and saves it."""
    for ax, xlabel, title in zip(axes, xlabels, titles):
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plt.path, dpi=90)
    return plt


def radar(path: Path, ranking: Ranking) -> Sketch | None:
    keys = ranking.used
    if len(keys) < 3:
        return None
    plt = Sketch(path)
    angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False).tolist()
    fig = plt.figure(figsize=(5.2, 5.2))
    ax = fig.add_subplot(111, polar=True)
    colors = _colors([r.group for r in ranking.rows])
    for r in ranking.rows:
        vals = [ranking.scores[k][r.group] or 0.0 for k in keys]
        ax.plot(angles + angles[:1], vals + vals[:1], color=colors[r.group], label=r.group)
        ax.fill(angles + angles[:1], vals + vals[:1], color=colors[r.group], alpha=0.08)
    ax.set_xticks(angles, [CRITERIA[k].title for k in keys], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_title("scores of the profile's criteria (1 = best)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.25, 1.1))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return plt
