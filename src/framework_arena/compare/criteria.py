"""The article's nine criteria and ours: what each measures, in what unit, and which way is better.

A measured criterion reduces a group's runs on one workload (a framework's seeds there) to one
value with ``measure(group, idx)`` (measures.py), which the bootstrap in aggregate.py resamples. License and
code size are measured too, from the facts each trial logged (facts.py): tags ``arena.license``
and ``arena.framework_dist``, metrics ``trainer_api_names`` and ``trainer_lines``; they do not vary
between a framework's runs, so they are not resampled. A static criterion reads a value from config
(``criteria.static.<key>``) with its source and date. Nothing here reads the machine compare runs
on: a store compares the same anywhere.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

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
            "median over runs of the last epoch's train_samples_per_s (first epoch excluded: warm-up and tracing)",
            median_of("train_samples_per_s"),
        ),
        Criterion(
            "time_to_target",
            "Time to target accuracy",
            "speed",
            "s",
            "lower",
            "measured",
            "training seconds (epoch_time_s summed) until val_accuracy first reaches target_accuracy; median over runs, inf if never",
            time_to_target,
        ),
        Criterion(
            "inference_latency",
            "Inference latency p50",
            "speed",
            "ms",
            "lower",
            "measured",
            "median over runs of infer_latency_ms_p50 (batch 1, after warm-up)",
            median_of("infer_latency_ms_p50"),
        ),
        Criterion(
            "large_data",
            "Throughput on the largest data",
            "performance",
            "samples/s",
            "higher",
            "measured",
            "median train_samples_per_s at the largest dataset (data.num_samples) or batch size (trainer.batch_size) every framework ran, in each family of workloads differing only by that size; needs runs at two sizes or more",
            large_data,
        ),
        Criterion(
            "peak_memory",
            "Peak memory",
            "performance",
            "MB",
            "lower",
            "measured",
            "median over runs of the trial process's peak resident memory (peak_rss_mb)",
            median_of("peak_rss_mb"),
        ),
        Criterion(
            "quality",
            "Model quality",
            "performance",
            "accuracy",
            "higher",
            "measured",
            "median over runs of test_accuracy at the configured budget",
            median_of("test_accuracy"),
        ),
        Criterion(
            "reproducibility",
            "Reproducibility",
            "",
            "accuracy std",
            "lower",
            "measured",
            "standard deviation of test_accuracy across runs differing only by seed (mean over configurations); needs 2 seeds or more",
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
            "median over runs of import_time_s + time_to_first_step_s (tracing and compilation included)",
            median_of("import_time_s", "time_to_first_step_s"),
        ),
        Criterion(
            "error_clarity",
            "Error clarity",
            "debugging",
            "points 0-2",
            "higher",
            "measured",
            "median over runs of debug_error_clarity: a shape bug planted at the end of each trial; 1 point if the error names the received and expected shapes, 1 if it names the layer (probe.py)",
            median_of("debug_error_clarity"),
        ),
        Criterion(
            "license",
            "License",
            "license",
            "permissive (1) / weak copyleft (0.5) / copyleft (0)",
            "higher",
            "measured",
            "the License-Expression, License or classifiers of the framework's distribution, as each trial logged it (arena.license)",
        ),
        Criterion(
            "code_size",
            "Framework API surface",
            "architecture",
            "API names",
            "lower",
            "measured",
            "distinct framework API names (torch.*, nn.*, tf.*, keras.*) the trainer that ran the trial uses to do the same work as the others, median over runs of trainer_api_names as each trial logged it; its logical lines (trainer_lines) are noted",
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


# --- license and code size, from what each trial logged (facts.py) ------------------------------

PERMISSIVE = ("Apache", "BSD", "MIT", "BSL-1.0", "ISC", "PSF", "Python", "Zlib", "LLVM-exception", "Unlicense", "CC0")
WEAK_COPYLEFT = ("LGPL", "MPL", "EPL")
# Runs logged before the trials recorded these facts compare as "missing", with this reason.
NOT_LOGGED = 'not logged by these runs: trials before framework-arena logged framework facts (facts.py, issue "One house") did not record it'


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


def license_cell(g: GroupData) -> Cell:
    """The license the group's runs logged (``arena.license``), the most frequent if they differ."""
    logged = [(t.tags["arena.license"], t.tags.get("arena.framework_dist", "")) for t in g.trials if t.tags.get("arena.license")]
    if not logged:
        return Cell(None, "missing", note=NOT_LOGGED)
    (text, dist), _ = Counter(logged).most_common(1)[0]
    note = (dist or "no distribution of the framework found by the trial") + _logged_by(len(logged), g.n)
    others = sorted({t for t, _ in logged} - {text})
    if others:
        note += "; other runs logged " + ", ".join(others)
    return Cell(license_score(text), text, len(logged), note)


def code_size_cell(g: GroupData) -> Cell:
    """Median over the group's runs of the ``trainer_api_names`` (and ``trainer_lines``) they logged."""
    api, lines = g.metric("trainer_api_names"), g.metric("trainer_lines")
    found = int(np.count_nonzero(~np.isnan(api)))
    if not found:
        return Cell(None, "missing", note=NOT_LOGGED)
    value = float(np.nanmedian(api))
    line_text = f", {float(np.nanmedian(lines)):g} lines" if not np.isnan(lines).all() else ""
    return Cell(value, f"{value:g} API names{line_text}", found, "the trainer that ran these runs" + _logged_by(found, g.n))


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
