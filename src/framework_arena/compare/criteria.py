"""The article's nine criteria and ours: what each measures, in what unit, and which way is better.

A measured criterion reduces a group's runs on one workload (a framework's seeds there) to one
value with ``measure(group, idx)`` (measures.py), which the bootstrap in aggregate.py resamples. License and
code size are measured too, from the facts each trial logged (facts.py): tags ``arena.license``
and ``arena.framework_dist``, metrics ``facts/trainer_api_names`` and ``facts/trainer_lines``; they do not vary
between a framework's runs, so they are not resampled. A static criterion reads a value from config
(``criteria.static.<key>``) with its source and date. Nothing here reads the machine compare runs
on: a store compares the same anywhere.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from framework_arena.compare.measures import GroupData, large_data, median_of, reproducibility, time_to_target


@dataclass(frozen=True)
class Criterion:
    key: str
    title: str
    article_row: str  # the article's row it answers; "" for ours
    unit: str
    direction: str  # higher | lower: which values are better
    kind: str  # measured | static
    how: str
    measure: Callable[[GroupData, np.ndarray], np.ndarray] | None = None
    floor: float = 0.0  # lower-is-better scores are (best + floor) / (value + floor): differences below it are noise


CRITERIA: dict[str, Criterion] = {
    c.key: c
    for c in (
        Criterion(
            "train_throughput",
            "Training throughput",
            "speed",
            "samples/s",
            "higher",
            "measured",
            "median over runs of speed/samples_per_s: each run's median over timed windows past the warm-up (first epoch excluded: warm-up and tracing)",
            median_of("speed/samples_per_s"),
        ),
        Criterion(
            "time_to_target",
            "Time to target accuracy",
            "speed",
            "s",
            "lower",
            "measured",
            "training seconds (speed/epoch_time_s summed) until val/accuracy first reaches target_accuracy; median over runs, inf if never",
            time_to_target,
        ),
        Criterion(
            "inference_latency",
            "Inference latency p50",
            "speed",
            "ms",
            "lower",
            "measured",
            "median over runs of infer/latency_ms_p50 (batch 1, after warm-up)",
            median_of("infer/latency_ms_p50"),
        ),
        Criterion(
            "deployment",
            "Serving latency (MLflow scoring server)",
            "deployment",
            "ms",
            "lower",
            "measured",
            "p50 of sequential 1-row requests to mlflow models serve (--env-manager local, loopback) on the group's best model, median over the runs arena-compare deploy=true served (serve/latency_ms_p50_1row); the note names the flavor that served it",
            median_of("serve/latency_ms_p50_1row"),
        ),
        Criterion(
            "large_data",
            "Throughput on the largest data",
            "performance",
            "samples/s",
            "higher",
            "measured",
            "median speed/samples_per_s at the largest dataset (data.num_samples; data=shards: the training rows used) or batch size (trainer.batch_size) every framework ran, in each family of workloads differing only by that size; needs runs at two sizes or more. The note gives the curve: from the smallest to the largest common size, throughput and peak memory at the largest / at the smallest (scaling.csv, the scaling figure)",
            large_data,
        ),
        Criterion(
            "peak_memory",
            "Peak memory",
            "performance",
            "MB",
            "lower",
            "measured",
            "median over runs of the trial process's peak resident memory (memory/peak_rss_mb)",
            median_of("memory/peak_rss_mb"),
        ),
        Criterion(
            "quality",
            "Model quality",
            "",  # ours: the article claims nothing about accuracy at a fixed budget (docs/article.md)
            "accuracy",
            "higher",
            "measured",
            "median over runs of test/accuracy at the configured budget",
            median_of("test/accuracy"),
        ),
        Criterion(
            "reproducibility",
            "Reproducibility",
            "",
            "accuracy std",
            "lower",
            "measured",
            "standard deviation of test/accuracy across runs differing only by seed (mean over configurations); needs 2 seeds or more",
            reproducibility,
            floor=0.005,
        ),
        Criterion(
            "startup",
            "Start-up cost",
            "debugging",
            "s",
            "lower",
            "measured",
            "median over runs of speed/import_time_s + speed/time_to_first_step_s (tracing and compilation included)",
            median_of("speed/import_time_s", "speed/time_to_first_step_s"),
        ),
        Criterion(
            "error_clarity",
            "Error clarity",
            "debugging",
            "points 0-2",
            "higher",
            "measured",
            "median over runs of debug/error_clarity: a shape bug planted at the end of each trial; 1 point if the error names the received and expected shapes, 1 if it names the layer (probe.py)",
            median_of("debug/error_clarity"),
        ),
        Criterion(
            "license",
            "License",
            "license",
            "permissive (1) / weak copyleft (0.5) / copyleft (0)",
            "higher",
            "measured",
            "the framework's own license, as each trial logged it (arena.license: its distribution's License-Expression, License field, classifier or own LICENSE file, facts.py); the licenses of bundled components it declares besides (arena.license_bundled) are in the note",
        ),
        Criterion(
            "code_size",
            "Framework API surface",
            "architecture",
            "API names",
            "lower",
            "measured",
            "distinct framework API names (torch.*, nn.*, tf.*, keras.*) the trainer that ran the trial uses to do the same work as the others, median over runs of facts/trainer_api_names as each trial logged it; its logical lines (facts/trainer_lines) are noted",
        ),
        Criterion(
            "tensorboard",
            "TensorBoard output (the framework's own tool)",
            "visualization",
            "kinds 0-3",
            "higher",
            "measured",
            "what the framework's own tool wrote into the trial's TensorBoard event files, as each trial logged it (tracking.tensorboard; tags arena.tensorboard_scalars, _histograms, _graph): 1 point each for scalars, weight histograms and the model's graph; the tool and the files' size (tensorboard_bytes) in the note",
        ),
        Criterion("ease_of_use", "Ease of use (architecture)", "architecture", "rating 1-5", "higher", "static", "criteria.static.ease_of_use"),
        Criterion("learning_curve", "Learning curve", "learning_curve", "rating 1-5", "higher", "static", "criteria.static.learning_curve"),
        Criterion("debugging", "Debugging", "debugging", "rating 1-5", "higher", "static", "criteria.static.debugging"),
        Criterion("visualization", "Visualization", "visualization", "rating 1-5", "higher", "static", "criteria.static.visualization"),
        Criterion("community", "Community and popularity", "community", "download rank", "lower", "static", "criteria.static.community"),
        Criterion("interfaces", "Interfaces", "interfaces", "languages", "higher", "static", "criteria.static.interfaces"),
    )
}


@dataclass
class Cell:
    """One criterion's value for one group, as the tables show it."""

    value: float | None  # None: missing, reported as such, never zero
    display: str
    n: int = 0  # runs behind a measured value
    note: str = ""
    unstable: bool = False  # a speed figure whose runs scatter beyond trust.py's limits: verdicts on it are not conclusive


# --- license and code size, from what each trial logged (facts.py) ------------------------------

PERMISSIVE = ("Apache", "BSD", "MIT", "BSL-1.0", "ISC", "PSF", "Python", "Zlib", "LLVM-exception", "Unlicense", "CC0")
WEAK_COPYLEFT = ("LGPL", "MPL", "EPL")
# Runs logged before the trials recorded these facts compare as "missing", with this reason.
NOT_LOGGED = 'not logged by these runs: trials before framework-arena logged framework facts (facts.py, issue "One house") did not record it'
# The note of a license logged before the trials split the framework's own license from its bundled ones.
OWN_NOT_SPLIT = "the whole distribution's declaration (runs logged before trials recorded the framework's own license apart from its bundled components)"


def license_score(text: str) -> float | None:
    """1 for a permissive license, 0.5 for a weak copyleft, 0 for GPL; None when unknown."""
    if not text or text == "unknown":
        return None
    if re.search(r"\bA?GPL", text):
        return 0.0
    if any(w in text for w in WEAK_COPYLEFT):
        return 0.5
    return 1.0 if any(p in text for p in PERMISSIVE) else None


def _logged_by(found: int, n: int) -> str:
    return f"; logged by {found} of {n} runs" if found < n else ""


def _license_fact(tags: Mapping[str, str]) -> tuple[str, str, str]:
    """(license, distribution, detail) a run logged.

    Since facts.py split them (tag ``arena.license_source`` present), ``arena.license`` is the
    framework's own license and ``arena.license_bundled`` lists the bundled components' licenses.
    Before, ``arena.license`` held the distribution's whole declaration: one license is still the
    framework's own, an AND of several is not (torch: ``Apache-2.0 AND ... AND MIT``).
    """
    text, dist = tags["arena.license"], tags.get("arena.framework_dist", "")
    source = tags.get("arena.license_source")
    if source:
        bundled = tags.get("arena.license_bundled")
        detail = f"own license from its {source}" + (f"; bundled components also under: {bundled}" if bundled else "; no bundled licenses declared")
        if text == "unknown" and tags.get("arena.license_declared"):
            detail += f"; the distribution declares {tags['arena.license_declared']}"
        return text, dist, detail
    if re.search(r"\sAND\s", text):
        return text, dist, OWN_NOT_SPLIT
    return text, dist, ""


def license_cell(g: GroupData) -> Cell:
    """The framework's own license its runs logged (:func:`_license_fact`), the most frequent if they differ."""
    logged = [(_license_fact(t.tags), t.tags.get("arena.license_declared", "")) for t in g.trials if t.tags.get("arena.license")]
    if not logged:
        return Cell(None, "missing", note=NOT_LOGGED)
    ((text, dist, detail), declared), _ = Counter(logged).most_common(1)[0]
    note = (dist or "no distribution of the framework found by the trial") + (f"; {detail}" if detail else "") + _logged_by(len(logged), g.n)
    others = sorted({fact[0] for fact, _ in logged} - {text})
    if others:
        note += "; other runs logged " + ", ".join(others)
    # Unknown own license: score what the distribution declares, so the ranking keeps the criterion.
    return Cell(license_score(text if text != "unknown" else declared), text, len(logged), note)


def code_size_cell(g: GroupData) -> Cell:
    """Median over the group's runs of the ``facts/trainer_api_names`` (and ``facts/trainer_lines``) they logged."""
    api, lines = g.metric("facts/trainer_api_names"), g.metric("facts/trainer_lines")
    found = int(np.count_nonzero(~np.isnan(api)))
    if not found:
        return Cell(None, "missing", note=NOT_LOGGED)
    value = float(np.nanmedian(api))
    line_text = f", {float(np.nanmedian(lines)):g} lines" if not np.isnan(lines).all() else ""
    return Cell(value, f"{value:g} API names{line_text}", found, "the trainer that ran these runs" + _logged_by(found, g.n))


#: The kinds of TensorBoard output a trial reports (visuals.py), each a point of the ``tensorboard`` criterion.
TENSORBOARD_KINDS = ("scalars", "histograms", "graph")


def tensorboard_cell(g: GroupData) -> Cell:
    """Points for the kinds of TensorBoard output the group's runs logged (the most frequent set), with the tool and size."""
    logged = [t for t in g.trials if t.tags.get("arena.tensorboard_tool")]
    if not logged:
        return Cell(None, "missing", note="no TensorBoard event files logged by these runs (tracking.tensorboard=false, or runs from before trials wrote them)")
    kinds = Counter(tuple(k for k in TENSORBOARD_KINDS if t.tags.get(f"arena.tensorboard_{k}") == "true") for t in logged)
    (got, _), tools = kinds.most_common(1)[0], sorted({t.tags["arena.tensorboard_tool"] for t in logged})
    size = float(np.nanmedian(g.metric("tensorboard/bytes"))) if not np.isnan(g.metric("tensorboard/bytes")).all() else math.nan
    missing = [k for k in TENSORBOARD_KINDS if k not in got]
    note = f"written by {', '.join(tools)}; {size / 1024:.0f} KiB of event files per run (median)" + (f"; no {', '.join(missing)}" if missing else "")
    return Cell(float(len(got)), f"{len(got)} ({', '.join(got) or 'nothing'})", len(logged), note + _logged_by(len(logged), g.n))


def serve_note(g: GroupData) -> str:
    """The served run's flavor, Keras back end and other serving figures, as it logged them (deploy.py)."""
    served = [t for t in g.trials if "serve/latency_ms_p50_1row" in t.metrics]
    if not served:
        return ""
    t, m = served[0], served[0].metrics
    backend = f", KERAS_BACKEND={t.tags['arena.serve_keras_backend']}" if t.tags.get("arena.serve_keras_backend") else ""
    return (
        f"{t.tags.get('arena.serve_flavor', 'flavor not logged')}{backend}; ready in {m.get('serve/startup_s', math.nan):.1f} s, "
        f"p95 {m.get('serve/latency_ms_p95_1row', math.nan):.1f} ms, 64 rows p50 {m.get('serve/latency_ms_p50_64row', math.nan):.1f} ms, "
        f"{m.get('serve/rows_per_s_1024row', math.nan):,.0f} rows/s at 1,024, {m.get('serve/model_size_mb', math.nan):.2f} MB, "
        f"{m.get('serve/pinned_requirements', math.nan):.0f} pinned requirements (run {t.run_id})"
    )


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "missing"
    if math.isinf(value):
        return "not reached"
    if unit in ("samples/s", "MB"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.3g} s"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit.startswith("accuracy"):
        return f"{value:.4f}"
    return f"{value:g}"
