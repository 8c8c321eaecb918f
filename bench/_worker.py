"""One framework's in-process overhead measurements (run by ``overhead.py`` in a fresh process).

Usage: python bench/_worker.py JSON  -> prints one JSON line with the raw figures.

The process has the trial's environment (threads, ``KERAS_BACKEND``) from ``child.environment``.
One arena trainer and one bare loop (``_bare.py``) of the same model, weights, data, batch size
and threads live side by side. Two phases of alternating rounds, the order flipped every round:

1. epochs, in two phases of rounds of one short epoch per variant, the order flipped every
   round: ``harness`` pairs the arena trainer's ``fit`` untracked (the child's real reporter)
   with the hand-written loop; ``tracking`` pairs it with the same ``fit`` tracked as a trial is
   (per-step metrics on, ``log_every_n_steps``): the child's reporter and ``Outbox`` here,
   the runner's ``RunRelay`` in a process of its own (``_sender.py``) fed through a pipe,
   one run for the whole phase. Epochs are short and rounds many: on a shared machine other
   work slows stretches of a fraction of a second by tens of percent, so only a fine alternation
   gives the variants the same conditions. Each call records samples/s past the warm-up,
   ``fit_time_s`` (steps, validation, callbacks) and the time inside the reporter's step and
   epoch calls (``callback_s``).
2. runs: a few whole tracked runs of about ``run_s`` seconds (new run, closed: the per-run
   costs, ``end_s`` in the child's end call and ``close_s`` waiting for the launching process's
   last request, and the sender process's CPU time ``sender_cpu_s``), and for Keras the same
   ``fit`` under ``mlflow.keras.autolog()``, in alternation.

The first ``warmup_steps`` steps of each call are not timed (the arena trainer's own
``trainer.warmup_steps``, and the same skip in the bare loop). With ``"clock": "cpu"`` the
throughput timers read the process's CPU seconds instead of wall time.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(__file__))

from _bare import BARE, Bare  # noqa: E402

from framework_arena import data as data_mod  # noqa: E402
from framework_arena import models  # noqa: E402
from framework_arena.child import _Channel, _Reporter  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import Stopwatch, TrainSettings  # noqa: E402
from framework_arena.trainers.events import Recorder  # noqa: E402


class _Parent:
    """The runner's side of a tracked trial, in a process of its own (``_sender.py``): the
    reporter's channel writes into it, and it sends the metrics with ``MetricSender``."""

    def __init__(self, uri: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "_sender.py"), uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.channel = _Channel(self.proc.stdin)

    def start(self, run_id: str) -> None:
        self.channel.send(["run", run_id])

    def close(self) -> float:
        """Waits until the run's last metrics are sent; the CPU seconds the sender spent on it."""
        self.channel.send(["close"])
        assert self.proc.stdout is not None
        return float(json.loads(self.proc.stdout.readline())["cpu_s"])


class _Timed:
    """The reporter, timing what its step and epoch calls take inside ``fit`` (the training
    thread's share of tracking: building metrics, queueing the asynchronous request)."""

    def __init__(self, inner: _Reporter) -> None:
        self.inner, self.spent, self.end = inner, 0.0, 0.0

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
        start = time.perf_counter()
        self.inner.on_train_end(logs)  # tracked: sends what is buffered and waits for it
        self.end = time.perf_counter() - start


OPTIM = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}


def _alternate(rounds: int, kinds: dict[str, Callable[[], dict[str, Any]]], label: str) -> list[dict[str, Any]]:
    names, out, start = list(kinds), [], time.perf_counter()
    for r in range(rounds):
        measured = {}
        for name in names if r % 2 == 0 else names[::-1]:
            gc.collect()  # cheap after gc.freeze(): what one call allocated is not collected inside the next
            measured[name] = kinds[name]()
        out.append(measured)
        if (r + 1) % max(1, rounds // 5) == 0 or r + 1 == rounds:
            print(f"  {label}: round {r + 1}/{rounds} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return out


T0 = time.perf_counter()


def main(p: dict[str, Any]) -> dict[str, Any]:
    fw, backend = p["framework"], p.get("backend")
    if p.get("clock") == "cpu":
        Stopwatch.clock = Bare.clock = staticmethod(time.process_time)
    data = data_mod.load(
        {
            "name": "synthetic",
            "shape": p["shape"],
            "num_samples": p["num_samples"],
            "num_classes": 10,
            "noise": 0.3,
            "val_fraction": 0.05,
            "test_fraction": 0.05,
        },
        0,
    )
    spec = models.build_spec(p["model"], data.input_shape, data.num_classes)
    weights = models.init_weights(spec, 0)
    settings = TrainSettings(1, p["batch_size"], 0, p["threads"], "cpu", OPTIM, warmup_steps=p["warmup_steps"])
    trainer = get_trainer(fw)(spec, weights, settings, backend)
    info = trainer.setup()
    trainer.build()
    bare = BARE[fw](spec, weights, data, p["batch_size"], OPTIM, 0)
    channel = _Channel(open(os.devnull, "w"))

    store = tempfile.mkdtemp(prefix="arena-bench-")
    outbox = tempfile.mkdtemp(dir=store)  # the runner's scratch folder for the child's files
    uri = f"sqlite:///{store}/mlflow.db"
    from mlflow.tracking import MlflowClient

    from framework_arena.outbox import Outbox
    from framework_arena.tracking import ensure_experiment

    client = MlflowClient(uri)
    exp = ensure_experiment(client, "bench")

    parent = _Parent(uri)

    def arena(epochs: int, tracked: bool = False) -> dict[str, Any]:
        trainer.settings = dataclasses.replace(settings, epochs=epochs, log_every_n_steps=p["log_every_n_steps"] if tracked else 0)
        logger = None
        if tracked:  # as the runner and the child do: the parent logs what the child reports
            parent.start(client.create_run(exp, run_name=f"{fw}-tracked").info.run_id)
            logger = Outbox(parent.channel.send, outbox)
        reporter = _Reporter(parent.channel if tracked else channel, logger)
        timed = _Timed(reporter)
        start = time.perf_counter()
        trainer.fit(data, timed)
        sender_s = close_s = 0.0
        if logger:
            close_start = time.perf_counter()
            sender_s = parent.close()  # the last metrics sent, as before the runner sets the status
            close_s = time.perf_counter() - close_start
        wall = time.perf_counter() - start
        # The run stays RUNNING in this scratch store, deleted at the end: MLflow's
        # set_terminated waits ~1 s for its asynchronous queue's thread, per call.
        return {
            "samples_per_s": [h["speed/epoch_samples_per_s"] for h in reporter.history],
            "wall_s": wall,
            "fit_time_s": reporter.end_logs["speed/fit_time_s"],
            "callback_s": timed.spent,  # on_step_end and on_epoch_end
            "end_s": timed.end,  # on_train_end: tracked, the last request sent and waited for
            "sender_cpu_s": sender_s,
            "close_s": close_s,  # waiting for the launching process's last request
        }

    def tracked_epoch() -> dict[str, Any]:
        """One epoch of the session's tracked run (one run for the whole phase: its per-run costs
        are measured in the ``runs`` phase)."""
        trainer.settings = dataclasses.replace(settings, epochs=1, log_every_n_steps=p["log_every_n_steps"])
        reporter = _Reporter(parent.channel, session)
        timed = _Timed(reporter)
        trainer.fit(data, timed)
        return {
            "samples_per_s": [h["speed/epoch_samples_per_s"] for h in reporter.history],
            "fit_time_s": reporter.end_logs["speed/fit_time_s"],
            "callback_s": timed.spent,
        }

    board_dir = tempfile.mkdtemp(prefix="arena-bench-tb-")
    board_start = time.perf_counter()
    events = trainer.event_log(board_dir)  # as a trial with tracking.tensorboard=true opens it
    events.seconds += time.perf_counter() - board_start

    def _raise(what: str, e: Exception) -> None:
        raise RuntimeError(f"could not {what}") from e

    def board_epoch() -> dict[str, Any]:
        """A tracked epoch that also writes its TensorBoard events (scalars at the logged steps and
        the epoch's end, a histogram per weight), inside the timed callbacks like in a trial."""
        trainer.settings = dataclasses.replace(settings, epochs=1, log_every_n_steps=p["log_every_n_steps"])
        reporter = _Reporter(parent.channel, session)
        timed = _Timed(Recorder(reporter, events, _raise))
        trainer.fit(data, timed)
        return {
            "samples_per_s": [h["speed/epoch_samples_per_s"] for h in reporter.history],
            "fit_time_s": reporter.end_logs["speed/fit_time_s"],
            "callback_s": timed.spent,
        }

    def autolog(epochs: int) -> dict[str, Any]:
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.keras.autolog(log_every_n_steps=p["log_every_n_steps"], log_models=False, log_datasets=False, silent=True)
        try:
            with mlflow.start_run(experiment_id=exp, run_name=f"{fw}-autolog"):
                trainer.settings = dataclasses.replace(settings, epochs=epochs, log_every_n_steps=0)
                start = time.perf_counter()
                trainer.fit(data, _Reporter(channel, None))
                mlflow.flush_async_logging()
                wall = time.perf_counter() - start
        finally:
            mlflow.keras.autolog(disable=True)
        return {"wall_s": wall}

    print(f"  [{fw}] ready after {time.perf_counter() - T0:.0f} s", file=sys.stderr, flush=True)
    session_run = client.create_run(exp, run_name=f"{fw}-tracked-epochs").info.run_id
    session = Outbox(parent.channel.send, outbox)
    harness = {"arena": lambda: arena(1), "bare": lambda: {"samples_per_s": [bare.epoch(p["warmup_steps"])]}}
    tracking = {"arena": lambda: arena(1), "tracked": tracked_epoch}
    # Warm-up: every path once (tracing, compilation, the store's schema), not recorded.
    epoch_s = statistics.median(arena(1)["wall_s"] for _ in range(3))
    bare.epoch(p["warmup_steps"])
    # A whole tracked run lasts about run_s whatever the framework's speed.
    et = max(2, round(p["run_s"] / epoch_s))
    runs = {"run": lambda: arena(et, tracked=True)}
    if fw == "keras" and p.get("autolog", True):
        runs["autolog"] = lambda: autolog(et)
    for run in runs.values():
        run()
    parent.start(session_run)
    tracked_epoch()
    board_epoch()
    print(f"  [{fw}] warmed up after {time.perf_counter() - T0:.0f} s", file=sys.stderr, flush=True)
    gc.collect()
    gc.freeze()  # what exists now is never scanned again: a collection between calls stays cheap
    # Two variants per phase, their order flipped every round: with three in one round, torch's
    # arena/bare ratio moved by 4-9% with the rotation (0.96 and 0.91 in two runs, 1.00 in five
    # runs of pairs).
    rounds = _alternate(p["rounds"], harness, f"[{fw}] harness")
    tracking_rounds = _alternate(p["rounds"], tracking, f"[{fw}] tracking")
    board_rounds = _alternate(p["board_rounds"], {"tracked": tracked_epoch, "board": board_epoch}, f"[{fw}] tensorboard")
    # Once per trial, outside the epochs: opening the writer, the graph, closing the files.
    board = events.close(data.test.x[:1] if len(data.test.y) else data.train.x[:1])
    shutil.rmtree(board_dir, ignore_errors=True)
    parent.close()
    run_rounds = _alternate(p["rounds_runs"], runs, f"[{fw}] runs")
    assert parent.proc.stdin is not None
    parent.proc.stdin.close()
    parent.proc.wait()
    shutil.rmtree(store, ignore_errors=True)
    return {
        "framework": fw,
        "backend": backend,
        "info": info,
        "train_samples": len(data.train.y),
        "epochs_per_run": et,
        "rounds": rounds,
        "tracking_rounds": tracking_rounds,
        "run_rounds": run_rounds,
        "board_rounds": board_rounds,
        "board_once_s": board["seconds"] - board["fit_seconds"],
        "board_bytes_per_epoch": board["bytes"] / (len(board_rounds) + 1),
        "loadavg": os.getloadavg(),
    }


if __name__ == "__main__":
    start = time.perf_counter()
    out = main(json.loads(sys.argv[1]))
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))
