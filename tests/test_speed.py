"""Honest timers, compile modes, precision and per-step metrics, asserted on what MLflow stored.

Speed itself is measured by ``bench/`` (side by side, medians), never by a timed test: these
tests check that the figures exist, are consistent and are recorded with the mode that made them.
"""

from __future__ import annotations

import time

import pytest
from conftest import compose
from mlflow.tracking import MlflowClient

from framework_arena.runner import run_trial
from framework_arena.trainers.base import Stopwatch

DIGITS_STEPS = 20  # ceil(1257 training samples / 64)


def _epochs(sw: Stopwatch, steps: list[float], epochs: int, samples: int = 32) -> list[dict[str, float]]:
    logs = []
    for _ in range(epochs):
        sw.epoch_start()
        for seconds in steps:
            time.sleep(seconds)
            sw.step_end(samples)
        logs.append(sw.epoch_end())
    return logs


def test_stopwatch_leaves_the_warm_up_out_of_throughput() -> None:
    syncs = []
    sw = Stopwatch(warmup_steps=2, sync=lambda: syncs.append(1))
    sw.start()
    logs = _epochs(sw, [0.1, 0.01, 0.01, 0.01, 0.01], epochs=2)
    end = sw.end_logs()
    # epoch 1: 3 steps after the warm-up; a sleep is never shorter than asked, so at most 32*3/0.03
    assert 0 < logs[0]["speed/epoch_samples_per_s"] <= 32 * 3 / 0.03 and logs[0]["speed/epoch_time_s"] >= 0.14
    assert 0 < logs[1]["speed/epoch_samples_per_s"] <= 32 * 5 / 0.05
    assert 0.05 < end["speed/compile_time_s"] < end["speed/time_to_first_step_s"] <= end["speed/fit_time_s"]
    assert len(syncs) == 2 * 2 + 2  # epoch starts and ends, first step, end of warm-up: never per step


def test_stopwatch_whole_first_epoch_as_warm_up() -> None:
    sw = Stopwatch(warmup_steps=3)
    sw.start()
    logs = _epochs(sw, [0.0, 0.0, 0.0], epochs=2)
    assert "speed/epoch_samples_per_s" not in logs[0] and logs[1]["speed/epoch_samples_per_s"] > 0


def test_stopwatch_median_of_windows_ignores_one_stall() -> None:
    """One stalled step in five windows moves the median by nothing and the p90/p10 spread only."""
    sw = Stopwatch(warmup_steps=2, window_steps=4)
    sw.start()
    _epochs(sw, [0.0, 0.0], epochs=1)  # the warm-up
    sw.epoch_start()
    for i in range(20):
        time.sleep(0.3 if i == 5 else 0.005)
        sw.step_end(32)
    sw.epoch_end()
    end = sw.end_logs()
    assert end["speed/windows"] == 5 and len(sw.windows) == 5
    assert end["speed/samples_per_s"] > 2 * 32 * 20 / 0.4  # far above the epoch's mean, which the stall decides
    assert end["speed/samples_per_s_p10"] < end["speed/samples_per_s"] <= end["speed/samples_per_s_p90"]


slow = pytest.mark.slow


@slow
def test_torch_compile_warm_up_steps_step_metrics_and_system_metrics(store: str) -> None:
    overrides = [
        "framework=torch",
        "framework.compile=true",
        "trainer.epochs=2",
        "trainer.threads=1",
        "trainer.warmup_steps=3",
        "trainer.inference_runs=5",
        "tracking.log_every_n_steps=4",
        "tracking.system_metrics=true",
        "tracking.log_model=false",
        f"tracking.uri={store}",
    ]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FINISHED", result.message
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.data.tags["arena.compile"] == "torch.compile" and run.data.params["framework.compile"] == "True"
    m = run.data.metrics
    assert 0 < m["speed/compile_time_s"] <= m["speed/time_to_first_step_s"]
    assert m["infer/latency_ms_p95"] >= m["infer/latency_ms_p50"] > 0 and m["infer/samples_per_s"] > 0
    assert m["val/accuracy"] > 0.5
    # warm-up of 3 steps: the first epoch already has a steady part
    assert [x.step for x in client.get_metric_history(run.info.run_id, "speed/epoch_samples_per_s")] == [1, 2]
    steps = [x.step for x in client.get_metric_history(run.info.run_id, "train/loss_running")]
    assert steps == list(range(4, 2 * DIGITS_STEPS + 1, 4))
    assert any(k.startswith("system/cpu") for k in m), sorted(m)


@slow
def test_tensorflow_xla_in_bf16(store: str) -> None:
    overrides = [
        "framework=tensorflow",
        "framework.compile=true",
        "trainer.precision=bf16",
        "trainer.epochs=2",
        "trainer.inference_runs=5",
        "tracking.log_model=false",
        f"tracking.uri={store}",
    ]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FINISHED", result.message
    run = MlflowClient(store).get_run(result.run_id)
    assert run.data.tags["arena.compile"] == "xla" and run.data.tags["arena.precision"] == "bf16"
    m = run.data.metrics
    assert 0 < m["speed/compile_time_s"] <= m["speed/time_to_first_step_s"] and m["infer/latency_ms_p50"] > 0
    assert m["val/accuracy"] > 0.5  # bf16 compute still learns


@slow
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_running_loss_sent_by_the_launcher_adds_up_to_the_epoch_loss(store: str, framework: str) -> None:
    # Reports every 5 of the 20 steps of an epoch: the running loss is summed a few steps at a
    # time, and its last report of an epoch covers all of it, so it must equal train/loss.
    overrides = [
        f"framework={framework}",
        "trainer.epochs=2",
        "trainer.threads=1",
        "tracking.log_every_n_steps=5",
        "tracking.log_model=false",
        f"tracking.uri={store}",
    ]
    result = run_trial(compose(overrides), overrides)
    assert result.status == "FINISHED", result.message
    client = MlflowClient(store)
    running = {m.step: m.value for m in client.get_metric_history(result.run_id, "train/loss_running")}
    assert sorted(running) == list(range(5, 2 * DIGITS_STEPS + 1, 5))
    epoch_loss = {m.step: m.value for m in client.get_metric_history(result.run_id, "train/loss")}
    for epoch in (1, 2):
        assert running[epoch * DIGITS_STEPS] == pytest.approx(epoch_loss[epoch], rel=1e-5)
    assert running[5] != pytest.approx(running[DIGITS_STEPS])  # an early report is not the whole epoch's
