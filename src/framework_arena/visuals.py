"""What a trial shows of its model beyond metrics: its summaries and its TensorBoard event files.

Run in the child. After the model is built, :class:`TrialVisuals` writes ``model_summary.txt``
(the framework's own words, :meth:`Trainer.summary`) and ``model_layers.txt`` (the arena's
framework-neutral table, :mod:`~framework_arena.layertable`) to a temporary folder and, with
``tracking.tensorboard``, opens the framework's :class:`~framework_arena.trainers.events.EventLog`
in its ``tensorboard/`` subfolder. :meth:`TrialVisuals.wrap` feeds that log from the trainer's
callback; :meth:`TrialVisuals.finish` writes the graph, logs the whole folder as the run's
artifacts in one call and records what the framework's tool produced
(:data:`TAGS`, ``tensorboard/bytes``) and what it cost (``tensorboard/write_s``: importing and opening the
writer, every write and the graph, counted; ``tensorboard/fit_write_s``: the part at epoch and step ends,
inside ``fit_time_s``): the visualization criterion's measured part.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from framework_arena.contracts import Callback
from framework_arena.layertable import layer_table
from framework_arena.models import ModelSpec

#: The tags a trial with ``tracking.tensorboard`` sets: which tool wrote its events, and whether they hold each kind.
TAGS = ("arena.tensorboard_tool", "arena.tensorboard_scalars", "arena.tensorboard_histograms", "arena.tensorboard_graph")

#: The artifact folder of the event files (``tensorboard --logdir`` on it, or on a sweep's downloads).
EVENTS_DIR = "tensorboard"


class TrialVisuals:
    """Args:
    trainer: the built :class:`~framework_arena.trainers.base.Trainer`.
    spec: its model spec.
    tensorboard: write event files (``tracking.tensorboard``).
    parent: where to make the folder: the launcher's outbox, which it removes whatever becomes of
        this process (a folder of its own in the system's temp was left behind by every trial that
        failed or was killed before :meth:`finish`).
    """

    def __init__(self, trainer: Any, spec: ModelSpec, tensorboard: bool, parent: str | None = None) -> None:
        self.folder = tempfile.mkdtemp(prefix="arena-visuals-", dir=parent)
        with open(os.path.join(self.folder, "model_summary.txt"), "w", encoding="utf-8") as f:
            f.write(f"{trainer.label}: {spec.name}\n\n{trainer.summary()}")
        with open(os.path.join(self.folder, "model_layers.txt"), "w", encoding="utf-8") as f:
            f.write(layer_table(spec))
        self.events = None
        self.recorder: Any = None  # the callback wrap() made, once it has
        if tensorboard:
            start = time.perf_counter()
            self.events = trainer.event_log(os.path.join(self.folder, EVENTS_DIR))
            self.events.seconds += time.perf_counter() - start  # importing and opening the writer

    def wrap(self, callback: Callback, logger: Any) -> Callback:
        """``callback``, also writing the epoch (and step) logs to the event files when there are any;
        a failed write goes to ``logger``'s guard (raised under test, a warning otherwise)."""
        if self.events is None:
            return callback
        from framework_arena.trainers.events import Recorder

        self.recorder = Recorder(callback, self.events, logger.failed)
        return self.recorder

    def finish(self, logger: Any, example: np.ndarray, step: int) -> dict[str, Any]:
        """Closes the event files (the graph of the model on ``example`` first), logs the folder
        and the tags and metric of what was written; removes the folder.

        Returns:
            The event log's facts (``EventLog.close``), empty without event files.
        """
        facts: dict[str, Any] = {}
        try:
            if self.events is not None:
                try:
                    facts = self.events.close(example)
                except Exception as e:  # noqa: BLE001 - the guard's policy: raised under test, a warning otherwise
                    logger.failed("close the TensorBoard event files", e)
            if self.recorder is not None and self.recorder.log is None:
                facts = {}  # a write failed and stopped them: the files are partial, nothing to report
            if facts:
                logger.set_tags(
                    {
                        "arena.tensorboard_tool": facts["tool"],
                        "arena.tensorboard_scalars": str(facts["scalars"] > 0).lower(),
                        "arena.tensorboard_histograms": str(facts["histograms"] > 0).lower(),
                        "arena.tensorboard_graph": str(facts["graph"]).lower(),
                    }
                )
                logger.log_metrics(
                    {"tensorboard/bytes": float(facts["bytes"]), "tensorboard/write_s": facts["seconds"], "tensorboard/fit_write_s": facts["fit_seconds"]},
                    step=step,
                )
            logger.log_artifacts(self.folder)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return facts
