"""Run and experiment descriptions: the short Markdown the MLflow UI shows as a run's note.

MLflow shows the ``mlflow.note.content`` tag as the "Description" of a run or an experiment,
rendered as Markdown. Pure functions: plain data in, text out; :mod:`framework_arena.tracking`
writes them. Links between runs are the UI's own hash routes (``#/experiments/<id>/runs/<id>``),
relative to the page, so they work under any host and static prefix.

Every note stays under :data:`MAX_NOTE` characters: MLflow stores a tag value of at most 5,000
characters in its smallest store, and the tables are cut to fit, saying how many rows were left out.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

NOTE_TAG = "mlflow.note.content"
MAX_NOTE = 4800

EXPERIMENT_NOTE = """\
**framework-arena**: the same model trained in PyTorch, TensorFlow and Keras 3, one run per trial.

- A **sweep** (`arena -m ...`) is one parent run named `sweep-<date>-<id>`; expand it to see its
  trials, and read its description for the best trial and a table of all of them.
- A **trial** is named `<framework>[-<backend>]-<model>-<data>-s<seed>`; its description sums up
  the config and the result, *Model metrics* shows the learning curves (`train_*`, `val_*`).
- A **comparison** (`arena-compare`) is a run tagged `arena.kind=comparison`; its artifact
  `report.html` is the ranking with its plots.
"""


def run_link(label: str, run_id: str, experiment_id: str | None) -> str:
    """A Markdown link to a run in the MLflow UI, or the bare id in backticks without an experiment."""
    if not run_id:
        return label
    if experiment_id is None:
        return label if run_id in label else f"{label} (`{run_id}`)"
    return f"[{label}](#/experiments/{experiment_id}/runs/{run_id})"


def fmt(value: Any) -> str:
    """A metric as a person reads it: 4 decimals below 100, thousands separators above."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.4f}" if value == 0 or abs(value) >= 0.001 else f"{value:.3g}"


def _fields(section: Mapping[str, Any], skip: Sequence[str] = ("name",)) -> str:
    return ", ".join(f"{k} {_short(v)}" for k, v in section.items() if k not in skip and v not in (None, ""))


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)  # config values as written: 0.001, 1e-07


def trial_title(cfg: Mapping[str, Any]) -> str:
    fw = cfg["framework"]
    backend = f" on {fw['backend']}" if fw["name"] == "keras" and fw.get("backend") else ""
    return f"**{fw['name']}{backend}** · {cfg['model']['name']} · {cfg['data']['name']}"


def trial_note(
    cfg: Mapping[str, Any],
    metrics: Mapping[str, float],
    status: str,
    parent_run_id: str | None = None,
    *,
    experiment_id: str | None = None,
    framework_version: str | None = None,
    message: str | None = None,
) -> str:
    """A trial's description: what was trained, how it ended, and the sweep it belongs to.

    Args:
        cfg: the resolved trial config (``framework``, ``model``, ``data``, ``optim``, ``trainer``).
        metrics: the last epoch's and the final metrics (``val/accuracy``, ``test/accuracy``...).
        status: ``FINISHED``, ``FAILED`` or ``KILLED``.
        parent_run_id: the sweep's parent run, linked when given.
        experiment_id: the experiment of the runs, to make links the UI opens.
        framework_version: shown next to the framework's name.
        message: why the trial did not finish.

    Returns:
        Markdown, a few lines.
    """
    fw = cfg["framework"]
    tr = cfg["trainer"]
    version = f" {framework_version}" if framework_version else ""
    lines = [f"{trial_title(cfg)} — **{status}**", ""]
    rows = [
        ("framework", f"{fw['name']}{version}" + (f", back end {fw['backend']}" if fw["name"] == "keras" and fw.get("backend") else "")),
        ("model", f"{cfg['model']['name']}: {_fields(cfg['model'])}"),
        ("data", f"{cfg['data']['name']}: {_fields(cfg['data'])}"),
        ("optimizer", f"{cfg['optim']['name']}: {_fields(cfg['optim'])}"),
        ("trainer", f"{tr['epochs']} epochs, batch {tr['batch_size']}, seed {tr['seed']}, {tr['threads']} threads, device {tr['device']}"),
    ]
    if status == "FINISHED":
        shown = [
            (k, metrics[k])
            for k in ("val/accuracy", "test/accuracy", "val/loss", "speed/samples_per_s", "speed/fit_time_s", "model/num_params")
            if k in metrics
        ]
        lines.append("**Result:** " + " · ".join(f"{k} **{fmt(v)}**" for k, v in shown))
    else:
        why = " ".join((message or "").split())[:300]
        lines.append(f"**Result:** {status.lower()}" + (f": {why}" if why else "") + ("; see `error.txt`" if status == "FAILED" else ""))
    if parent_run_id:
        lines += ["", "**Sweep:** a trial of parent run " + run_link(f"`{parent_run_id}`", parent_run_id, experiment_id)]
    lines += ["", "| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return _cap("\n".join(lines) + "\n")


def sweep_note(
    rows: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    best: Mapping[str, Any] | None,
    objective: str,
    direction: str,
    *,
    experiment_id: str | None = None,
    overrides: str = "",
) -> str:
    """A sweep's description: its objective, best trial, counts by status and a table of trials.

    Args:
        rows: one mapping per job with ``job``, ``status``, ``run_name``, ``run_id``, ``objective``,
            ``overrides`` (the rows of ``sweep_summary.csv``).
        counts: jobs by status (``FINISHED``, ``SKIPPED``, ``FAILED``, ``KILLED``, ``INVALID``).
        best: the best row by the objective, or None.
        objective: the metric the sweep optimizes; ``direction``: ``maximize`` or ``minimize``.
        experiment_id: to link the trials' runs.
        overrides: the sweep's command-line overrides.
    """
    lines = [f"**Sweep** of {len(rows)} trial(s)" + (f": `{overrides}`" if overrides else ""), ""]
    lines.append(f"Objective: {direction} `{objective}`. " + (", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v) or "no jobs") + ".")
    lines.append("")
    if best is not None:
        lines.append(
            f"**Best:** {run_link(best['run_name'] or 'run', best['run_id'], experiment_id)} with {objective} **{fmt(best['objective'])}**"
            + (f" (`{best['overrides']}`)" if best.get("overrides") else "")
            + f", run `{best['run_id']}`"
        )
    else:
        lines.append("**Best:** none (no trial finished)")
    lines += ["", f"| # | status | trial | {objective} | overrides |", "|---|---|---|---|---|"]
    table = [
        f"| {r['job']} | {r['status']} | {run_link(r['run_name'] or '-', r['run_id'], experiment_id)} | {fmt(r['objective'])} | `{r['overrides']}` |"
        for r in rows
    ]
    tail = "\nAll trials: `sweep_summary.md` and `sweep_summary.csv` in this run's artifacts.\n"
    return _fit_table("\n".join(lines), table, tail)


def comparison_note(
    ranking: Sequence[Sequence[Any]],
    profile: str,
    experiment: str,
    *,
    run_ids: Sequence[str] = (),
    sweep_id: str | None = None,
    experiment_id: str | None = None,
    report: str = "report.html",
) -> str:
    """A comparison run's description: the ranking, what was compared, where the report is.

    Args:
        ranking: rows ``(framework, score, rank)`` or ``(framework, score, rank, tied)``, best first.
        profile: the ranking profile (criteria weights) used.
        experiment: the name of the experiment whose runs were compared.
        run_ids: the trial runs compared, linked when ``experiment_id`` is given.
        sweep_id: the sweep (``arena.sweep_id``) the runs came from, if one.
        experiment_id: the experiment holding ``run_ids``.
        report: the artifact holding the full report.
    """
    rows = [(str(r[0]), r[1], r[2], bool(r[3]) if len(r) > 3 else False) for r in ranking]
    lines = [f"**Framework comparison** · profile `{profile}` · experiment `{experiment}`" + (f" · sweep `{sweep_id}`" if sweep_id else ""), ""]
    leaders = [r for r in rows if r[2] == rows[0][2]] if rows else []
    if len(leaders) > 1:
        lines.append("**Tie for first:** " + ", ".join(f"**{r[0]}**" for r in leaders) + f" (score {fmt(leaders[0][1])})")
    elif leaders:
        lines.append(f"**Winner:** **{leaders[0][0]}** (score {fmt(leaders[0][1])})")
    else:
        lines.append("**Winner:** none (no run to rank)")
    lines += ["", "| rank | framework | score |", "|---|---|---|"]
    lines += [f"| {rank}{'=' if tied else ''} | {fw} | {fmt(score)} |" for fw, score, rank, tied in rows]
    lines += ["", f"Full report: `{report}` in this run's artifacts (open it under *Artifacts*).", "", ""]
    head = "\n".join(lines) + f"Compared {len(run_ids)} run(s):"
    links = [" " + run_link(rid[:8], rid, experiment_id) for rid in run_ids]
    return _fit_items(head, links, "\n")


def _fit_table(head: str, table: Sequence[str], tail: str) -> str:
    """``head``, as many ``table`` lines as fit under :data:`MAX_NOTE`, then ``tail``."""
    out = head
    for i, line in enumerate(table):
        more = f"\n| … | | {len(table) - i} more | | |"
        if len(out) + len(line) + 1 + len(more) + len(tail) > MAX_NOTE:
            return out + more + "\n" + tail
        out += "\n" + line
    return out + "\n" + tail


def _fit_items(head: str, items: Sequence[str], tail: str) -> str:
    out = head
    for i, item in enumerate(items):
        more = f" and {len(items) - i} more"
        if len(out) + len(item) + len(more) + len(tail) > MAX_NOTE:
            return out + more + "." + tail
        out += item
    return out + ("." if items else " none.") + tail


def _cap(text: str) -> str:
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "…"
