"""One conformance suite for every framework: same parameters, same initial function."""

from __future__ import annotations

import pytest
from conftest import FRAMEWORKS, framework_id
from trainer_models import MODELS


@pytest.fixture(params=FRAMEWORKS, ids=framework_id)
def probed(request: pytest.FixtureRequest, variant_probes: dict) -> dict[str, dict[str, float]]:
    """Every model of MODELS built by one framework, in one fresh process (conftest.variant_probes)."""
    return variant_probes(framework_id(request.param))["trainer"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_matches_the_numpy_reference(probed: dict[str, dict[str, float]], model: str) -> None:
    out = probed[model]
    assert out["num_params"] == out["spec_params"]
    assert out["max_abs_diff"] < 1e-4, out


# --- the shared harness every trainer reports through (trainers/base.py), without a framework ---


class _Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.epochs: list[tuple[int, dict[str, float]]] = []

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        self.steps.append((step, dict(logs)))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append((epoch, dict(logs)))


def test_end_epoch_sends_the_epoch_keys_and_refuses_a_non_finite_loss_before_validating() -> None:
    from framework_arena.contracts import EPOCH_KEYS, NonFiniteLossError
    from framework_arena.trainers.base import end_epoch

    recorder, validated = _Recorder(), []
    end_epoch(recorder, 1, 0.5, 0.75, {"speed/epoch_time_s": 2.0}, lambda: validated.append(1) or (0.6, 0.7))
    assert recorder.epochs == [(1, {"train/loss": 0.5, "train/accuracy": 0.75, "val/loss": 0.6, "val/accuracy": 0.7, "speed/epoch_time_s": 2.0})]
    assert set(EPOCH_KEYS) <= set(recorder.epochs[0][1])
    with pytest.raises(NonFiniteLossError):
        end_epoch(recorder, 2, float("nan"), 0.1, {"speed/epoch_time_s": 1.0}, lambda: validated.append(2) or (0.0, 0.0))
    assert validated == [1] and len(recorder.epochs) == 1


def test_running_loss_reduces_only_the_steps_since_the_last_report() -> None:
    from framework_arena.trainers.base import RunningLoss

    reduced: list[int] = []

    def loss_sum(losses: list[float], sizes: list[int]) -> float:
        reduced.append(len(losses))
        return sum(loss * size for loss, size in zip(losses, sizes))

    recorder = _Recorder()
    running = RunningLoss(recorder, loss_sum)
    losses, sizes = [1.0, 2.0, 3.0, 4.0], [10, 10, 10, 5]
    running.report(2, losses[:2], sizes)
    running.report(4, losses, sizes)
    assert reduced == [2, 2]
    assert [step for step, _ in recorder.steps] == [2, 4]
    assert recorder.steps[0][1]["train/loss_running"] == pytest.approx(1.5)
    assert recorder.steps[1][1]["train/loss_running"] == pytest.approx((10 + 20 + 30 + 20) / 35)


def test_a_name_map_holds_exactly_the_vocabulary() -> None:
    from framework_arena.names import OPTIMIZERS
    from framework_arena.trainers.base import NameMap

    table = NameMap("optim.name", OPTIMIZERS, {name: name.upper() for name in OPTIMIZERS})
    assert table["adam"] == "ADAM"
    with pytest.raises(ValueError, match="Expected optim.name in .* Received: optim.name='lamb'"):
        table["lamb"]
    with pytest.raises(TypeError, match="Expected the names"):
        NameMap("optim.name", OPTIMIZERS, {"adam": 1})
