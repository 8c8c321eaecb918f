"""Saves one framework variant's model twice, in a fresh process: as a trial does (the framework's
files in the child, ``model_files.save``; the rest in the launcher, ``flavors.complete_model``) and
with MLflow's own ``mlflow.<flavor>.save_model``; loads the first back with ``mlflow.pyfunc``.

Usage: python probe_model_files.py FRAMEWORK BACKEND|- FOLDER -> writes FOLDER/result.json: each
folder's ``MLmodel`` (as a dict) and file list, which text files are equal, and the largest
difference between the reloaded model's predictions and the trainer's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

framework, backend, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if backend != "-":
    os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from framework_arena import data, model_files, models  # noqa: E402
from framework_arena.trainers import get_trainer  # noqa: E402
from framework_arena.trainers.base import TrainSettings  # noqa: E402

OPTIM = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}

ds = data.load({"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}, 0)
spec = models.build_spec({"name": "mlp", "hidden": [16], "activation": "relu", "dropout": 0.0}, ds.input_shape, ds.num_classes)
trainer = get_trainer(framework)(spec, models.init_weights(spec, 0), TrainSettings(1, 32, 0, 1, "cpu", OPTIM), None if backend == "-" else backend)
trainer.setup()
trainer.build()
x = ds.test.x[:5]
logits = trainer.predict(x)
export = trainer.export()

ours = folder / "ours"
model_files.save(export, x, logits, ours)
import mlflow  # noqa: E402  (as the launcher: after the framework's part is written)

from framework_arena.tracking.flavors import complete_model  # noqa: E402

complete_model(ours)

reference = folder / "mlflow"
with_mlflow = __import__("importlib").import_module(f"mlflow.{export.flavor}")
if export.flavor == "keras":
    reference.mkdir()  # MLflow 3.17's keras save_model writes the example before it makes the folder
with_mlflow.save_model(
    path=str(reference),
    signature=mlflow.models.infer_signature(x, logits),
    input_example=x,
    pip_requirements=[*export.pip_requirements, f"mlflow=={mlflow.__version__}"],
    **{export.model_kwarg: export.model},
    **export.extra,
)


def files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


texts = ["conda.yaml", "requirements.txt", "python_env.yaml", "input_example.json", "serving_input_example.json"]
big = np.concatenate([ds.test.x[:7], ds.test.x[:7]])  # another batch size than the example's
reloaded = mlflow.pyfunc.load_model(str(ours)).predict(big)
(folder / "result.json").write_text(
    json.dumps(
        {
            "ours": yaml.safe_load((ours / "MLmodel").read_text()),
            "mlflow": yaml.safe_load((reference / "MLmodel").read_text()),
            "files_ours": files(ours),
            "files_mlflow": files(reference),
            "same_text": {t: (ours / t).read_text() == (reference / t).read_text() for t in texts},
            "predict_max_diff": float(np.max(np.abs(np.asarray(reloaded) - trainer.predict(big)))),
        }
    )
)
