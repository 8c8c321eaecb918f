"""The article's nine criteria and ours: what each measures, in what unit, and which way is better.

A measured criterion reduces a group's runs (a framework's seeds) to one value with
``measure(group, idx)``: each row of ``idx`` picks runs, so the bootstrap in rank.py evaluates all
its resamples in one call. A
static criterion reads a value from config (``criteria.static.<key>``) with its source and date.
License is measured, but from the installed distributions' metadata rather than from runs.
"""

from __future__ import annotations

import importlib.metadata as md
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from framework_arena.compare.query import Trial


class GroupData:
    """A group's runs as arrays, so a bootstrap resample is an index array, not a copy of dicts."""

    def __init__(self, trials: Sequence[Trial], target_accuracy: float, size_key: str | None) -> None:
        self.trials = list(trials)
        self.n = len(self.trials)
        self.target_accuracy = target_accuracy
        self._metrics: dict[str, np.ndarray] = {}
        self.time_to_target = np.array([_time_to_target(t, target_accuracy) for t in self.trials], dtype=float)
        self.cells = _cells(self.trials)
        self.size_key = size_key
        self.sizes = np.array([_float(t.params.get(size_key)) if size_key else math.nan for t in self.trials], dtype=float)
        self.largest_common_size: float | None = None  # set by measure_all once every group is known

    def metric(self, key: str) -> np.ndarray:
        if key not in self._metrics:
            self._metrics[key] = np.array([t.metrics.get(key, math.nan) for t in self.trials], dtype=float)
        return self._metrics[key]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _time_to_target(trial: Trial, target: float) -> float:
    """Training seconds (epoch_time_s summed) until val_accuracy first reaches ``target``.

    NaN when the run's history was not loaded; inf when it never got there.
    """
    acc, times = trial.history.get("val_accuracy"), trial.history.get("epoch_time_s")
    if not acc or not times:
        return math.nan
    elapsed = dict(times)
    total = 0.0
    for step, value in acc:
        total += elapsed.get(step, 0.0)
        if value >= target:
            return total
    return math.inf


def _cells(trials: Sequence[Trial]) -> np.ndarray:
    """Runs that differ only by seed share a cell: reproducibility is the spread inside a cell."""
    keys: dict[tuple, int] = {}
    out = []
    for t in trials:
        key = tuple(sorted((k, v) for k, v in t.params.items() if "seed" not in k and not k.startswith(("tracking.", "arena.", "platform."))))
        out.append(keys.setdefault(key, len(keys)))
    return np.array(out, dtype=int)


# A measure takes ``idx``, the runs to use: one row of run indices (the point estimate) or one row
# per bootstrap resample; it returns one value per row, NaN where the value does not exist.


def _row_median(values: np.ndarray) -> np.ndarray:
    """Median of each row, ignoring NaN; NaN for a row with no value (without numpy's warning)."""
    nan = np.isnan(values)
    if not nan.any():
        return np.median(values, axis=-1)  # nanmedian loops over rows in Python: 10x slower on 1000 resamples
    has = ~nan.all(axis=-1)
    out = np.full(values.shape[:-1], np.nan)
    if has.any():
        out[has] = np.nanmedian(values[has], axis=-1)
    return out


def _median_of(*keys: str) -> Callable[[GroupData, np.ndarray], np.ndarray]:
    def measure(g: GroupData, idx: np.ndarray) -> np.ndarray:
        return _row_median(sum(g.metric(k) for k in keys)[idx])

    return measure


def _time_to_target_measure(g: GroupData, idx: np.ndarray) -> np.ndarray:
    return _row_median(g.time_to_target[idx])


def _reproducibility(g: GroupData, idx: np.ndarray) -> np.ndarray:
    acc_all = g.metric("test_accuracy")
    out = np.full(idx.shape[0], np.nan)
    for row, sel in enumerate(idx):
        acc, cells = acc_all[sel], g.cells[sel]
        ok = ~np.isnan(acc)
        acc, cells = acc[ok], cells[ok]
        n = np.bincount(cells)
        s1, s2 = np.bincount(cells, acc), np.bincount(cells, acc * acc)
        many = n >= 2
        if many.any():
            var = (s2[many] - s1[many] ** 2 / n[many]) / (n[many] - 1)
            out[row] = float(np.mean(np.sqrt(np.maximum(var, 0.0))))
    return out


def _large_data(g: GroupData, idx: np.ndarray) -> np.ndarray:
    if g.largest_common_size is None:
        return np.full(idx.shape[0], np.nan)
    at_largest = np.where(g.sizes == g.largest_common_size, g.metric("train_samples_per_s"), np.nan)
    return _row_median(at_largest[idx])


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
            _median_of("train_samples_per_s"),
        ),
        Criterion(
            "time_to_target",
            "Time to target accuracy",
            "speed",
            "s",
            "lower",
            "measured",
            "training seconds (epoch_time_s summed) until val_accuracy first reaches target_accuracy; median over runs, inf if never",
            _time_to_target_measure,
        ),
        Criterion(
            "inference_latency",
            "Inference latency p50",
            "speed",
            "ms",
            "lower",
            "measured",
            "median over runs of infer_latency_ms_p50 (batch 1, after warm-up)",
            _median_of("infer_latency_ms_p50"),
        ),
        Criterion(
            "large_data",
            "Throughput on the largest data",
            "performance",
            "samples/s",
            "higher",
            "measured",
            "median train_samples_per_s at the largest dataset (data.num_samples) or batch size (trainer.batch_size) every framework ran; needs runs at two sizes or more",
            _large_data,
        ),
        Criterion(
            "peak_memory",
            "Peak memory",
            "performance",
            "MB",
            "lower",
            "measured",
            "median over runs of the trial process's peak resident memory (peak_rss_mb)",
            _median_of("peak_rss_mb"),
        ),
        Criterion(
            "quality",
            "Model quality",
            "performance",
            "accuracy",
            "higher",
            "measured",
            "median over runs of test_accuracy at the configured budget",
            _median_of("test_accuracy"),
        ),
        Criterion(
            "reproducibility",
            "Reproducibility",
            "",
            "accuracy std",
            "lower",
            "measured",
            "standard deviation of test_accuracy across runs differing only by seed (mean over configurations); needs 2 seeds or more",
            _reproducibility,
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
            _median_of("import_time_s", "time_to_first_step_s"),
        ),
        Criterion(
            "error_clarity",
            "Error clarity",
            "debugging",
            "points 0-2",
            "higher",
            "measured",
            "median over runs of debug_error_clarity: a shape bug planted at the end of each trial; 1 point if the error names the received and expected shapes, 1 if it names the layer (probe.py)",
            _median_of("debug_error_clarity"),
        ),
        Criterion(
            "license",
            "License",
            "license",
            "permissive (1) / weak copyleft (0.5) / copyleft (0)",
            "higher",
            "measured",
            "the installed distribution's License-Expression, License or classifiers",
        ),
        Criterion(
            "code_size",
            "Framework API surface",
            "architecture",
            "API names",
            "lower",
            "measured",
            "distinct framework API names (torch.*, nn.*, tf.*, keras.*) this project's trainer for the framework uses to do the same work as the others; its logical lines are noted",
        ),
        Criterion("ease_of_use", "Ease of use (architecture)", "architecture", "rating 1-5", "higher", "static", "criteria.static.ease_of_use"),
        Criterion("learning_curve", "Learning curve", "learning_curve", "rating 1-5", "higher", "static", "criteria.static.learning_curve"),
        Criterion("debugging", "Debugging", "debugging", "rating 1-5", "higher", "static", "criteria.static.debugging"),
        Criterion("visualization", "Visualization", "visualization", "rating 1-5", "higher", "static", "criteria.static.visualization"),
        Criterion("community", "Community and popularity", "community", "download rank", "lower", "static", "criteria.static.community"),
        Criterion("interfaces", "Interfaces", "interfaces", "languages", "higher", "static", "criteria.static.interfaces"),
    )
}


# --- license, from the installed distributions ---------------------------------------------------

DISTRIBUTIONS = {"torch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "keras": ("keras",)}
PERMISSIVE = ("Apache", "BSD", "MIT", "BSL-1.0", "ISC", "PSF", "Python", "Zlib", "LLVM-exception", "Unlicense", "CC0")
WEAK_COPYLEFT = ("LGPL", "MPL", "EPL")
_ALIASES = (
    (r"Apache( Software)?( License)?,?( Version)? ?2(\.0)?|Apache Software License", "Apache-2.0"),
    (r"\bBSD License\b", "BSD"),
    (r"\bMIT License\b", "MIT"),
)


def license_of(framework: str) -> tuple[str, str] | None:
    """(distribution, license text) of the first installed distribution of ``framework``."""
    for dist in DISTRIBUTIONS.get(framework, ()):
        try:
            meta = md.metadata(dist)
        except md.PackageNotFoundError:
            continue
        text = meta.get("License-Expression") or ""
        if not text:
            short = (meta.get("License") or "").strip()
            text = short if short and "\n" not in short and len(short) < 80 else ""
        if not text:
            text = " AND ".join(c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::"))
        for pattern, alias in _ALIASES:
            text = re.sub(pattern, alias, text)
        return dist, text or "unknown"
    return None


def license_score(text: str) -> float | None:
    if not text or text == "unknown":
        return None
    if re.search(r"\bA?GPL", text):
        return 0.0
    if any(w in text for w in WEAK_COPYLEFT):
        return 0.5
    return 1.0 if any(p in text for p in PERMISSIVE) else None


# --- code size, from this project's own trainers --------------------------------------------------

TRAINER_FILES = {"torch": ("torch.py",), "tensorflow": ("tensorflow.py", "_tf_optim.py"), "keras": ("keras.py",)}
FRAMEWORK_ROOTS = {"torch": ("torch", "nn", "F"), "tensorflow": ("tf",), "keras": ("keras",)}


def code_size(framework: str) -> tuple[int, int] | None:
    """(logical lines, distinct framework API names) of the trainer implementing ``framework``."""
    import ast
    from pathlib import Path

    import framework_arena.trainers as trainers

    folder = Path(trainers.__file__).parent
    lines: set[tuple[str, int]] = set()
    apis: set[str] = set()
    for name in TRAINER_FILES.get(framework, ()):
        path = folder / name
        if not path.exists():
            return None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
            and isinstance(n.body[0].value.value, str)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and not (isinstance(node, ast.Expr) and id(node.value) in docstrings):
                lines.update(
                    (name, ln)
                    for ln in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                    if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try)) or ln == node.lineno
                )
            if isinstance(node, ast.Attribute):
                dotted = ast.unparse(node)
                if dotted.split(".")[0] in FRAMEWORK_ROOTS[framework] and "(" not in dotted and "[" not in dotted:
                    apis.add(dotted)
    return len(lines), len({a for a in apis if not any(b.startswith(a + ".") for b in apis)})


# --- the table -------------------------------------------------------------------------------------


@dataclass
class Cell:
    value: float | None  # None: missing, reported as such, never zero
    display: str
    n: int = 0  # runs behind a measured value
    note: str = ""


def static_value(entry: Mapping[str, Any], group: str) -> float | None:
    """A static value for a group: ``keras-jax`` falls back to ``keras``; ``torch/cnn`` to ``torch``."""
    values = entry.get("values") or {}
    base = group.split("/")[0]
    for key in (group, base, base.split("-")[0]):
        if key in values and values[key] is not None:
            return float(values[key])
    return None


def size_dimension(trials: Sequence[Trial]) -> str | None:
    """The parameter whose growth the runs cover: dataset size first, then batch size."""
    for key in ("data.num_samples", "trainer.batch_size"):
        if len({t.params.get(key) for t in trials if t.params.get(key) is not None}) >= 2:
            return key
    return None


def build_groups(groups: Mapping[str, Sequence[Trial]], target_accuracy: float) -> dict[str, GroupData]:
    size_key = size_dimension([t for ts in groups.values() for t in ts])
    data = {g: GroupData(ts, target_accuracy, size_key) for g, ts in groups.items()}
    if size_key and data:
        covered = [{s for s in d.sizes if not math.isnan(s)} for d in data.values()]
        common = set.intersection(*covered)
        for d in data.values():
            d.largest_common_size = max(common) if common else None
    return data


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


def measure_all(groups: Mapping[str, GroupData], static: Mapping[str, Any]) -> dict[str, dict[str, Cell]]:
    """criterion key -> group -> Cell, for every criterion (missing ones included)."""
    table: dict[str, dict[str, Cell]] = {}
    for key, crit in CRITERIA.items():
        row: dict[str, Cell] = {}
        for name, g in groups.items():
            if crit.measure is not None:
                point = float(crit.measure(g, np.arange(g.n)[None, :])[0])
                value = None if math.isnan(point) else point
                note = ""
                if value is None and key == "reproducibility":
                    note = "needs 2 seeds or more of one configuration"
                elif value is None and key == "large_data":
                    note = "needs runs at 2 dataset or batch sizes or more"
                elif value is None and key == "time_to_target":
                    note = "no epoch history loaded"
                elif value is None:
                    note = "metric not logged by these runs"
                elif key == "large_data":
                    note = f"{g.size_key}={g.largest_common_size:g}"
                row[name] = Cell(value, fmt(value, crit.unit), g.n, note)
            elif key == "code_size":
                size = code_size(g.trials[0].framework)
                row[name] = (
                    Cell(None, "missing", note="no trainer for this framework")
                    if size is None
                    else Cell(float(size[1]), f"{size[1]} API names, {size[0]} lines", note="this project's trainer")
                )
            elif key == "license":
                found = license_of(g.trials[0].framework)
                if found is None:
                    row[name] = Cell(None, "missing", note="framework not installed where arena-compare runs")
                else:
                    score = license_score(found[1])
                    row[name] = Cell(score, found[1], note=found[0])
            else:
                entry = static.get(key) or {}
                value = static_value(entry, name)
                row[name] = Cell(value, fmt(value, crit.unit) if value is not None else "missing", note=f"{entry.get('source', '')} ({entry.get('date', '')})")
        table[key] = row
    return table
