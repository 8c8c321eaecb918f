"""What crosses a boundary between the arena's parts, written once and importable from anywhere.

- trainer -> child: the :class:`Callback` protocol (``logs`` dicts, in the manner of Keras) and the
  :class:`ModelExport` a trainer hands over for logging; :class:`NonFiniteLossError` as a reason.
- child -> launcher: the JSON-line messages on the child's stdout (:data:`MESSAGES`).

No MLflow, Hydra or framework import here: trainers, the child, tracking and the runner all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

#: Keys every ``on_epoch_end`` ``logs`` dict carries.
EPOCH_KEYS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "speed/epoch_time_s")


class Callback(Protocol):
    """What a trainer reports, in the manner of Keras callbacks: ``logs`` is the whole contract."""

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        """Called once the model is built, before the first step.

        Args:
            info: ``num_params``, ``framework_version``, ``device`` and ``backend`` (Keras).
        """

    def on_step_end(self, step: int, logs: Mapping[str, float]) -> None:
        """Called every ``TrainSettings.log_every_n_steps`` optimizer steps (never when it is 0).

        Args:
            step: 1-based optimizer step, counted over the whole training.
            logs: ``train/loss_running``, the mean training loss of the epoch so far.
        """

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Called after each epoch's training and validation.

        Args:
            epoch: 1-based epoch number.
            logs: the :data:`EPOCH_KEYS`; ``speed/epoch_time_s`` covers the training steps only,
                from the first batch to the end of the last one, validation excluded; and
                ``speed/epoch_samples_per_s`` when the epoch has steps after the warm-up.
        """

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        """Called once after the last epoch.

        Args:
            logs: the :meth:`Stopwatch.end_logs`: ``speed/time_to_first_step_s``, ``speed/compile_time_s``,
                ``speed/fit_time_s``, and, when windows past the warm-up were timed,
                ``speed/samples_per_s`` (their median), ``speed/samples_per_s_p10``/``_p90`` and
                ``speed/windows``.
        """


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the trial fails with this reason."""

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"train/loss became {value} at epoch {epoch}: lower optim.lr or check the data")
        self.epoch = epoch
        self.value = value


@dataclass
class ModelExport:
    """A trained model for its MLflow flavor: ``model_files.save`` writes its files in the child,
    ``tracking/flavors.complete_model`` the rest in the launcher.

    The folder must be what ``mlflow.<flavor>.save_model(path, **{model_kwarg: model},
    pip_requirements=..., signature=..., input_example=..., **extra)`` writes (MLflow's own call,
    the reference ``tests/test_model_files.py`` compares with): a model that
    ``mlflow.pyfunc.load_model`` loads back and that predicts the trainer's logits for an array of
    any batch size.
    """

    flavor: str  # "pytorch" | "tensorflow" | "keras"
    model_kwarg: str  # the keyword mlflow.<flavor>.save_model takes the model by
    model: Any
    pip_requirements: list[str]  # pinned framework packages; tracking adds mlflow itself
    extra: dict[str, Any] = field(default_factory=dict)


#: The child's messages to the launcher (the launcher's to the child: child.py's docstring): one JSON list per line on the child's original stdout,
#: the kind first. Anything a framework prints goes to stderr, so it cannot corrupt the channel.
MESSAGES = {
    "ready": '["ready", {}]: built, waiting for the run to exist before training (tracked trials only)',
    "begin": '["begin", info]: the model is built (on_train_begin info); a tracked child then waits for the launcher\'s "logged" line',
    "step": '["step", step, logs]: train/loss_running every tracking.log_every_n_steps steps',
    "epoch": '["epoch", epoch, logs]: the EPOCH_KEYS, and speed/epoch_samples_per_s past the warm-up',
    "timed": '["timed", {}]: nothing is timed after this (training, evaluation and inference are done)',
    # What the child logs to its run, logged by the launcher (outbox.Outbox -> tracking.relay.RunRelay):
    "metrics": '["metrics", step, {name: value}]: figures for the run (start-up, final, probe)',
    "tags": '["tags", {name: value}]: tags for the run',
    "text": '["text", artifact_path, text]: a text artifact',
    "artifacts": "[\"artifacts\", folder]: a folder of the launcher's outbox, logged at the run's artifact root",
    "model": '["model", {"path", "name", "step", "params"}]: the model saved in its MLflow flavor in the outbox',
    "result": '["result", summary]: {"metrics": ..., "info": ..., "phases": its wall time by phase}; the child then exits 0',
    "error": '["error", {"reason", "type", "message", "traceback", "phases"}]; the child then exits 1',
}
