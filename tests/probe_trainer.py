"""Builds one framework's model in a fresh process and compares it with the numpy reference.

Usage: python probe_trainer.py FRAMEWORK BACKEND|- MODELS_JSON  -> prints a JSON line
mapping each model name of MODELS_JSON (a {name: model config} object) to its figures.
A fresh process per framework because Keras fixes its back end at the first import.
"""

from __future__ import annotations

import json
import os
import sys

framework, backend, model_json = sys.argv[1], sys.argv[2], sys.argv[3]
if backend != "-":
    os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from numpy_reference import forward  # noqa: E402

from framework_arena import data, models  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import TrainSettings  # noqa: E402

ds = data.load({"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}, 0)
optim = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}
x = ds.val.x[:64]
results = {}
for name, model_cfg in json.loads(model_json).items():
    spec = models.build_spec(model_cfg, ds.input_shape, ds.num_classes)
    weights = models.init_weights(spec, 0)
    trainer = get_trainer(framework)(spec, weights, TrainSettings(1, 64, 0, 2, "cpu", optim), None if backend == "-" else backend)
    trainer.setup()
    num_params = trainer.build()
    diff = float(np.max(np.abs(trainer.predict(x) - forward(spec, weights, x))))
    results[name] = {"num_params": num_params, "spec_params": models.count_params(spec), "max_abs_diff": diff}
print(json.dumps(results))
