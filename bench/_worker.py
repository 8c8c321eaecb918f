"""One framework's in-process overhead measurements (run by ``overhead.py`` in a fresh process).

Usage: python bench/_worker.py JSON  -> prints one JSON line with the raw per-round figures.

The process has the trial's environment (threads, ``KERAS_BACKEND``) from ``child.environment``.
One arena trainer and one bare loop (``_bare.py``) of the same model, weights, data, batch size
and threads live side by side; each round runs, in an order that rotates from round to round:

- ``arena``: the arena trainer's ``fit`` with the child's real reporter, no tracking;
- ``bare``: the hand-written loop, the same number of epochs;
- ``tracked``: the arena trainer's ``fit`` logging to a SQLite MLflow store through the real
  ``RunLogger``, per-step metrics on (``log_every_n_steps``);
- ``autolog`` (Keras only): the same ``fit`` with ``mlflow.keras.autolog()`` logging instead.

With ``"clock": "cpu"`` every timer (the arena ``Stopwatch`` and the bare loops') reads the
process's CPU seconds instead of wall time: the work done, whatever else runs on the machine.

Every call trains one epoch; its first ``warmup_steps`` steps are not timed (the arena trainer's
own ``trainer.warmup_steps``, and the same skip in the bare loop).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _bare import BARE, Bare  # noqa: E402

from framework_arena import data as data_mod  # noqa: E402
from framework_arena import models  # noqa: E402
from framework_arena.child import _Channel, _Reporter  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import Stopwatch, TrainSettings  # noqa: E402

class _Timed:
    """The reporter, timing what its step and epoch calls take inside ``fit`` (the training
    thread's share of tracking: building metrics, queueing the asynchronous request)."""

    def __init__(self, inner: _Reporter) -> None:
        self.inner, self.spent = inner, 0.0

    def on_train_begin(self, info: Any) -> None:
        self.inner.on_train_begin(info)

    def on_step_end(self, step: int, logs: Any) -> None:
        start = time.perf_counter()
        self.inner.on_step_end(step, logs)
        self.spent += time.perf_counter() - start

    def on_epoch_end(self, epoch: int, logs: Any) -> None:
        start = time.perf_counter()
        self.inner.on_epoch_end(epoch, logs)
        self.spent += time.perf_counter() - start

    def on_train_end(self, logs: Any) -> None:
        self.inner.on_train_end(logs)


OPTIM = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}


def main(p: dict[str, Any]) -> dict[str, Any]:
    fw, backend = p["framework"], p.get("backend")
    if p.get("clock") == "cpu":
        Stopwatch.clock = Bare.clock = staticmethod(time.process_time)
    data = data_mod.load({"name": "synthetic", "shape": p["shape"], "num_samples": p["num_samples"], "num_classes": 10, "noise": 0.3, "val_fraction": 0.1, "test_fraction": 0.05}, 0)
    spec = models.build_spec(p["model"], data.input_shape, data.num_classes)
    weights = models.init_weights(spec, 0)
    settings = TrainSettings(1, p["batch_size"], 0, p["threads"], "cpu", OPTIM, warmup_steps=p["warmup_steps"])
    trainer = get_trainer(fw)(spec, weights, settings, backend)
    info = trainer.setup()
    trainer.build()
    bare = BARE[fw](spec, weights, data, p["batch_size"], OPTIM, 0)
    channel = _Channel(open(os.devnull, "w"))
    n_train = len(data.train.y)

    store = tempfile.mkdtemp(prefix="arena-bench-")
    uri = f"sqlite:///{store}/mlflow.db"
    from mlflow.tracking import MlflowClient

    from framework_arena.tracking import RunLogger, ensure_experiment

    client = MlflowClient(uri)
    exp = ensure_experiment(client, "bench")

    def arena(tracked: bool) -> dict[str, float]:
        logger = None
        trainer.settings = dataclasses.replace(settings, log_every_n_steps=p["log_every_n_steps"] if tracked else 0)
        if tracked:
            logger = RunLogger(uri, client.create_run(exp, run_name=f"{fw}-tracked").info.run_id)
        reporter = _Reporter(channel, logger)
        timed = _Timed(reporter)
        trainer.fit(data, timed)
        if logger:
            logger.close()
            client.set_terminated(logger.run_id)
        return {"samples_per_s": reporter.history[-1]["train_samples_per_s"], "fit_time_s": reporter.end_logs["fit_time_s"], "callback_s": timed.spent}

    def bare_run() -> dict[str, float]:
        return {"samples_per_s": bare.epoch(p["warmup_steps"])}

    def autolog_run() -> dict[str, float]:
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.keras.autolog(log_every_n_steps=p["log_every_n_steps"], log_models=False, log_datasets=False, silent=True)
        try:
            with mlflow.start_run(experiment_id=exp, run_name=f"{fw}-autolog"):
                trainer.settings = dataclasses.replace(settings, log_every_n_steps=0)
                reporter = _Reporter(channel, None)
                trainer.fit(data, reporter)
                mlflow.flush_async_logging()
        finally:
            mlflow.keras.autolog(disable=True)
        return {"fit_time_s": reporter.end_logs["fit_time_s"]}

    kinds = {"arena": lambda: arena(False), "bare": bare_run, "tracked": lambda: arena(True)}
    if fw == "keras" and p.get("autolog", True):
        kinds["autolog"] = autolog_run
    # Warm-up: every path once (tracing, compilation, the store's schema), not recorded.
    for run in kinds.values():
        run()
    names = list(kinds)
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(p["rounds"]):
        order = names[r % len(names) :] + names[: r % len(names)]
        measured = {}
        for name in order:
            gc.collect()  # what one path allocated (MLflow, SQLAlchemy) is not collected inside the next
            measured[name] = kinds[name]()
        rounds.append(measured)
        print(f"[{fw}] round {r + 1}/{p['rounds']}: " + ", ".join(f"{k} {v}" for k, v in rounds[-1].items()), file=sys.stderr, flush=True)
    return {"framework": fw, "backend": backend, "info": info, "train_samples": n_train, "rounds": rounds, "loadavg": os.getloadavg()}


if __name__ == "__main__":
    start = time.perf_counter()
    out = main(json.loads(sys.argv[1]))
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))
