"""What the trial's child logs to its run, handed to the launcher instead of sent to MLflow.

The child never opens the tracking store: importing MLflow's SQL store and connecting took 1.3
to 1.8 s of a 1-epoch trial's serial path, on top of the ~2 s ``import mlflow`` that the
launcher had already paid for the same run (``bench/trial_cost.py``, 2026-11). Everything the
child used to log itself (start tags, framework facts, final figures, texts, the model
summaries and event files, the model) goes to the launcher as JSON lines on the channel the
epoch metrics already take, and the launcher's :class:`~framework_arena.tracking.relay.RunRelay`
logs it, keeps the offline copy when the server is lost, and owns the LoggedModel.

Files (the visuals' folder, the model) are moved into ``folder``, a scratch folder the launcher
made for this trial and removes after it: a message names them, and the child, which may exit
before the launcher reads the message, no longer owns them. This process never imports MLflow:
the model's folder holds the framework's files in the flavor's layout (``model_files.py``), and
the launcher completes it (``tracking.flavors.complete_model``).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import numpy as np

    from framework_arena.contracts import ModelExport

log = logging.getLogger(__name__)


class Outbox:
    """The child's side of the run: the methods the trial calls, each one message to the launcher.

    Args:
        send: the child's channel (``child._Channel.send``): one JSON list per message.
        folder: the launcher's scratch folder for this trial's files.
    """

    def __init__(self, send: Callable[[list[Any]], None], folder: str) -> None:
        self.send = send
        self.folder = folder
        self._names = itertools.count()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.send(["metrics", step, {k: float(v) for k, v in metrics.items()}])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.send(["tags", {k: str(v) for k, v in tags.items()}])

    def log_text(self, text: str, path: str) -> None:
        self.send(["text", path, text])

    def log_artifacts(self, local_dir: str) -> None:
        """Hands ``local_dir``'s files to the launcher, which logs them at the run's artifact root."""
        target = os.path.join(self.folder, f"artifacts-{next(self._names)}")
        shutil.move(local_dir, target)
        self.send(["artifacts", target])

    def failed(self, what: str, error: Exception) -> None:
        """A part of tracking that runs here failed (a TensorBoard write): raised under test, a
        warning otherwise, as the launcher's guard does with MLflow's errors."""
        from framework_arena.tracking.policy import strict

        if strict():
            raise error
        log.warning("Could not %s: %s", what, error)

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        self.set_tags({f"arena.{k}": v for k, v in info.items() if k != "num_params"})
        self.log_metrics({"model/num_params": info["num_params"]}, step=0)

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        self.log_metrics(logs, step=0)

    def log_model(self, export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, step: int, name: str, params: Mapping[str, Any]) -> None:
        """Saves the model's files and hands them over; the launcher completes the folder and logs
        it as the run's LoggedModel named ``name`` with ``params`` (None values left out: never
        set), its metrics at ``step``."""
        from framework_arena import model_files

        path = model_files.save(export, x_example, logits_example, os.path.join(self.folder, "model"))
        self.send(["model", {"path": str(path), "name": name, "step": step, "params": {k: v for k, v in params.items() if v is not None}}])
