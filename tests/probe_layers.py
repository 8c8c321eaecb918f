"""Builds layer-list models in one framework variant, in a fresh process, and measures them
against the numpy reference: inference, training mode (BatchNorm's batch statistics) and inference
after it (running statistics), and the loss after one Adam step from the shared weights.

Usage: python probe_layers.py FRAMEWORK BACKEND|- MODELS_JSON -> prints a JSON line mapping each
model name of MODELS_JSON ({name: {"data": "digits"|"sequences", "model": model config}}) to its figures.
"""

from __future__ import annotations

import json
import os
import sys

framework, backend, models_json = sys.argv[1], sys.argv[2], sys.argv[3]
if backend != "-":
    os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from numpy_reference import forward  # noqa: E402

from framework_arena import data, models  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import TrainSettings  # noqa: E402

BATCH = 32
DATA = {
    "digits": data.load({"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}, 0),
    "sequences": data.load({"name": "sequences", "num_samples": 400, "length": 12, "vocab_size": 16, "val_fraction": 0.15, "test_fraction": 0.15}, 0),
}
# Keras adds Adam's epsilon before the bias correction (32x larger at step one): with 1e-7 the
# transformer's loss after a step differs by 1.2e-4 between Keras and the others, with 1e-8 by 2e-5.
OPTIM = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}


class _Quiet:
    def on_step_end(self, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict) -> None:
        pass


def _trainer(spec: models.ModelSpec, weights: list) -> object:
    trainer = get_trainer(framework)(spec, weights, TrainSettings(1, BATCH, 0, 2, "cpu", OPTIM), None if backend == "-" else backend)
    trainer.setup()
    trainer.num_params = trainer.build()
    return trainer


results = {}
for name, entry in json.loads(models_json).items():
    ds = DATA[entry["data"]]
    spec = models.build_spec(entry["model"], ds.input_shape, ds.num_classes, ds.vocab_size)
    weights = models.init_weights(spec, 0)
    x, y = ds.train.x[:BATCH], ds.train.y[:BATCH]
    trainer = _trainer(spec, weights)
    out = {"num_params": trainer.num_params, "spec_params": models.count_params(spec)}
    out["inference"] = float(np.max(np.abs(trainer.predict(x) - forward(spec, weights, x))))
    ref_train, updated = forward(spec, weights, x, training=True)
    out["training"] = float(np.max(np.abs(trainer.forward_train(x) - ref_train)))
    out["after_training"] = float(np.max(np.abs(trainer.predict(x) - forward(spec, updated, x))))
    # One Adam step on one batch (the whole training split), then the loss in inference mode.
    trainer = _trainer(spec, weights)
    one = data.Split(x, y)
    trainer.fit(data.Dataset(ds.name, one, one, one, ds.num_classes, ds.vocab_size), _Quiet())
    out["loss_before"] = float(np.mean(np.log(np.sum(np.exp(forward(spec, weights, x)), axis=1)) - forward(spec, weights, x)[np.arange(BATCH), y]))
    out["loss_after_step"] = trainer.evaluate(x, y)[0]
    results[name] = out
print(json.dumps(results))
