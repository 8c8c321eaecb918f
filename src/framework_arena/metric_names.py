"""The metric names the arena logs, in sections, and the flat names older runs were logged with.

MLflow's UI groups a run's charts into sections by the part of a metric's name before ``/``
(``train``, ``val``, ``speed`` ... beside its own ``system``), so every name here carries one.
Writers use these names; readers see only these names too: a run logged before the sections
(``val_accuracy``, ``train_samples_per_s`` ...) is translated by :func:`current` where its
metrics are read from MLflow, so existing stores keep comparing. Imports nothing.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

#: Every metric a trial run logs, by section, with the flat name it had before the sections.
RENAMED: dict[str, str] = {
    # learning, per epoch (train/loss_running per optimizer step)
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "train_loss_running": "train/loss_running",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
    # training speed: throughput (median of windows past the warm-up), epoch and fit times, start-up
    "train_samples_per_s": "speed/samples_per_s",
    "train_samples_per_s_p10": "speed/samples_per_s_p10",
    "train_samples_per_s_p90": "speed/samples_per_s_p90",
    "train_windows": "speed/windows",
    "epoch_samples_per_s": "speed/epoch_samples_per_s",
    "epoch_time_s": "speed/epoch_time_s",
    "fit_time_s": "speed/fit_time_s",
    "time_to_first_step_s": "speed/time_to_first_step_s",
    "compile_time_s": "speed/compile_time_s",
    "import_time_s": "speed/import_time_s",
    # inference in the trial's process (batch 1 latency, large-batch throughput)
    "infer_latency_ms_p50": "infer/latency_ms_p50",
    "infer_latency_ms_p95": "infer/latency_ms_p95",
    "infer_samples_per_s": "infer/samples_per_s",
    # memory
    "peak_rss_mb": "memory/peak_rss_mb",
    "gpu_peak_mem_mb": "memory/gpu_peak_mb",
    # what other work took of the trial's cores while it trained (contention.py)
    "contention_other_share": "contention/other_share",
    "cpu_own_share": "contention/own_share",
    "cpu_steal_share": "contention/steal_share",
    "cgroup_throttled_s": "contention/cgroup_throttled_s",
    "loadavg_start": "contention/loadavg_start",
    "loadavg_end": "contention/loadavg_end",
    # streamed input (data=shards): the input pipeline alone, and the batches' order check
    "input_samples_per_s": "input/samples_per_s",
    "input_share": "input/share",
    "train_order_crc": "input/order_crc",
    # the model, the facts and the debugging probe
    "num_params": "model/num_params",
    "trainer_api_names": "facts/trainer_api_names",
    "trainer_lines": "facts/trainer_lines",
    "debug_error_clarity": "debug/error_clarity",
    # serving (arena-compare deploy=true, logged on the group's best trial run)
    "serve_startup_s": "serve/startup_s",
    "serve_latency_ms_p50_1row": "serve/latency_ms_p50_1row",
    "serve_latency_ms_p95_1row": "serve/latency_ms_p95_1row",
    "serve_latency_ms_p50_64row": "serve/latency_ms_p50_64row",
    "serve_latency_ms_p95_64row": "serve/latency_ms_p95_64row",
    "serve_rows_per_s_1024row": "serve/rows_per_s_1024row",
    "serve_model_size_mb": "serve/model_size_mb",
    "serve_pinned_requirements": "serve/pinned_requirements",
    # a sweep's parent run
    "trials_total": "trials/total",
    "trials_finished": "trials/finished",
    "trials_failed": "trials/failed",
    "trials_killed": "trials/killed",
    "trials_invalid": "trials/invalid",
    "trials_skipped": "trials/skipped",
    "trials_lost": "trials/lost",
    "trials_untracked": "trials/untracked",
}

#: Metrics that came after the sections, so they never had a flat name.
SECTIONED_ONLY: tuple[str, ...] = (
    # the trial's TensorBoard event files (visuals.py): their size, and what writing them cost
    # in all (opening, writes, graph) and inside training (the writes at epoch and step ends)
    "tensorboard/bytes",
    "tensorboard/write_s",
    "tensorboard/fit_write_s",
    # what the contention shares may be off by: /proc/stat counts clock ticks (contention.py)
    "contention/resolution",
)

#: Every sectioned name: the renamed ones in the order above, then the new ones.
METRICS: tuple[str, ...] = (*RENAMED.values(), *SECTIONED_ONLY)

#: Sections whose names another owner writes: ``phase/<name>_s`` (phases.py, one per phase it
#: times) and MLflow's own ``system/`` (tracking.system_metrics).
SECTIONS_ELSEWHERE = ("phase/", "system/")

#: The section of a sweep parent's best value of its objective: ``best/val/accuracy``.
BEST = "best/"

V = TypeVar("V")


def known(name: str) -> bool:
    """Whether ``name`` is a sectioned name the arena writes (here, or in a section owned elsewhere)."""
    return name in METRICS or name.startswith(SECTIONS_ELSEWHERE) or name.startswith(BEST)


def current_name(name: str) -> str:
    """``name`` as the arena logs it now: a flat (pre-section) name translated, any other unchanged.

    ``best_val_accuracy`` (a sweep parent's best objective, logged flat) becomes ``best/val/accuracy``.
    """
    if name in RENAMED:
        return RENAMED[name]
    if name.startswith("best_") and name[5:] in RENAMED:
        return BEST + RENAMED[name[5:]]
    return name


def current(metrics: Mapping[str, V]) -> dict[str, V]:
    """A run's metrics under the current names, whatever names it was logged with.

    The one translation of old runs: called where metrics are read from MLflow. A run that holds
    both spellings of a metric keeps the sectioned one.
    """
    out: dict[str, V] = {}
    for key, value in metrics.items():
        name = current_name(key)
        if name == key or name not in metrics:
            out[name] = value
    return out


def flat_name(name: str) -> str | None:
    """The flat name an older run logged ``name`` under, or None (for metric histories)."""
    for old, new in RENAMED.items():
        if new == name:
            return old
    if name.startswith(BEST):
        old = flat_name(name[len(BEST) :])
        return f"best_{old}" if old else None
    return None


def metric_history(client: Any, run_id: str, key: str) -> list[Any]:
    """MLflow's history of ``key`` for the run (an ``MlflowClient``'s ``Metric`` list), under its
    flat name for a run logged before the sections."""
    found = client.get_metric_history(run_id, key)
    old = flat_name(key)
    if not found and old:
        found = client.get_metric_history(run_id, old)
    return list(found)
