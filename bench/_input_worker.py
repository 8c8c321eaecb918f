"""One framework's streamed-against-in-memory rounds (run by ``input_pipeline.py`` in a fresh process).

Usage: python bench/_input_worker.py JSON  -> prints one JSON line with the raw figures.

The process has the trial's environment (threads, ``KERAS_BACKEND``) from ``child.environment``.
Two arena trainers of the same model, initial weights, batch size and threads live side by side:
one trains on the sharded dataset through its framework's input pipeline (``data=shards``, the
trial's own ``_fit_streamed``, ``data.workers`` workers), the other on the same training rows
read into memory (the in-memory ``fit``). Rounds of one epoch each, the order flipped every round;
each epoch's ``speed/epoch_samples_per_s`` past the warm-up steps is recorded. Once, after the rounds,
the input pipeline alone (``Trainer.measure_input``, as a streamed trial measures it).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from _worker import OPTIM, _alternate  # noqa: E402

from framework_arena import models, shards  # noqa: E402
from framework_arena.child import _Channel, _Reporter  # noqa: E402
from framework_arena.data import Dataset, Split  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import TrainSettings  # noqa: E402

T0 = time.perf_counter()


def main(p: dict[str, Any]) -> dict[str, Any]:
    fw, backend = p["framework"], p.get("backend")
    streamed = shards.load({"path": p["path"]})
    split: shards.StreamedSplit = streamed.train
    root = split.manifest.root
    x = np.concatenate([np.load(root / s["x"]) for s in split.shards])  # the same rows, in memory
    y = np.concatenate([np.load(root / s["y"]) for s in split.shards])
    in_memory = Dataset("shards", Split(x, y), streamed.val, streamed.test, streamed.num_classes)
    spec = models.build_spec(p["model"], streamed.input_shape, streamed.num_classes)
    weights = models.init_weights(spec, 0)
    settings = TrainSettings(1, p["batch_size"], 0, p["threads"], "cpu", OPTIM, warmup_steps=p["warmup_steps"])
    trainers = {
        "streamed": get_trainer(fw)(spec, weights, dataclasses.replace(settings, streamed=True, input_workers=p["workers"]), backend),
        "in_memory": get_trainer(fw)(spec, weights, settings, backend),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TensorFlow: the second trainer's thread count is already set
        for trainer in trainers.values():
            trainer.setup()
            trainer.build()
    channel = _Channel(open(os.devnull, "w"))
    datasets = {"streamed": streamed, "in_memory": in_memory}

    def epoch(kind: str) -> dict[str, Any]:
        reporter = _Reporter(channel, None)
        trainers[kind].fit(datasets[kind], reporter)
        return {"samples_per_s": reporter.history[-1]["speed/epoch_samples_per_s"], "fit_time_s": reporter.end_logs["speed/fit_time_s"]}

    for kind in trainers:  # warm-up: tracing, workers, caches; not recorded
        epoch(kind)
    print(f"  [{fw}] warmed up after {time.perf_counter() - T0:.0f} s", file=sys.stderr, flush=True)
    gc.collect()
    gc.freeze()
    rounds = _alternate(p["rounds"], {kind: (lambda k=kind: epoch(k)) for kind in trainers}, f"[{fw}] streamed / in memory")
    input_rate = trainers["streamed"].measure_input(split)
    return {"framework": fw, "backend": backend, "train_rows": len(y), "rounds": rounds, "input_samples_per_s": input_rate, "loadavg": os.getloadavg()}


if __name__ == "__main__":
    start = time.perf_counter()
    out = main(json.loads(sys.argv[1]))
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))
