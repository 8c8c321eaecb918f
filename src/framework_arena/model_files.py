"""A trained model's files in its MLflow flavor's layout, written by the framework alone (no MLflow).

The child saves only what needs the framework: the model's own files where the flavor puts them,
and the flavor's settings that name the framework's versions. The launcher, which has MLflow
loaded already, completes the folder with everything else MLflow writes (``MLmodel``, the
signature, the input example, the environment files: ``tracking.flavors.complete_model``).
Importing MLflow in the child took ~2 s of a short trial's serial path, about what the whole
rest of tracking costs it (``bench/trial_cost.py``).

Each function below does what the framework part of ``mlflow.<flavor>.save_model`` does (MLflow
3.17; ``tests/test_model_files.py`` checks the folder against MLflow's own ``save_model``):

- pytorch: ``torch.export`` with the batch dimension dynamic (``Dim.AUTO``, MLflow's choice for a
  ``-1`` of the signature), saved as ``data/model.pt2`` (loads without unpickling code);
- keras: ``data/model.keras`` and ``data/keras_module.txt``, the exported-model variant off;
- tensorflow: the ``tf.Module`` as a SavedModel in ``tf2model/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from framework_arena.contracts import ModelExport

#: What the child leaves for the launcher beside the framework's files (removed once complete).
ABOUT_FILE = "arena-flavor.json"
X_FILE = "arena-x-example.npy"
LOGITS_FILE = "arena-logits-example.npy"


def _pytorch(export: ModelExport, path: Path, x_example: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch
    from torch.export import Dim

    model = export.model
    exported = torch.export.export(model, (torch.from_numpy(x_example),), dynamic_shapes=[{0: Dim.AUTO}])
    (path / "data").mkdir(parents=True)
    torch.export.save(exported, str(path / "data" / "model.pt2"))
    flavor = {"model_data": "data", "pytorch_version": str(torch.__version__), "code": None}
    pyfunc = {
        "loader_module": "mlflow.pytorch",
        "data": "data",
        "pickle_module_name": "mlflow.pytorch.pickle_module",
        "code": None,
        "model_config": {"device": None},
    }
    return flavor, pyfunc


def _keras(export: ModelExport, path: Path, x_example: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    import keras

    (path / "data").mkdir(parents=True)
    (path / "data" / "keras_module.txt").write_text("keras")
    export.model.save(str(path / "data" / "model.keras"))
    flavor = {"data": "data", "keras_version": keras.__version__, "keras_backend": keras.backend.backend(), "save_exported_model": False}
    return flavor, {"loader_module": "mlflow.keras"}


def _tensorflow(export: ModelExport, path: Path, x_example: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    import tensorflow as tf

    tf.saved_model.save(export.model, str(path / "tf2model"))
    return {"code": None, "saved_model_dir": "tf2model", "model_type": "tf2-module"}, {"loader_module": "mlflow.tensorflow", "code": None}


SAVERS: dict[str, Callable[[ModelExport, Path, np.ndarray], tuple[dict[str, Any], dict[str, Any]]]] = {
    "pytorch": _pytorch,
    "keras": _keras,
    "tensorflow": _tensorflow,
}


def save(export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Writes the framework's part of the model folder at ``path``, and what the launcher needs to complete it."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=False)
    flavor, pyfunc = SAVERS[export.flavor](export, folder, x_example)
    np.save(folder / X_FILE, x_example)
    np.save(folder / LOGITS_FILE, logits_example)
    about = {"flavor": export.flavor, "flavor_conf": flavor, "pyfunc": pyfunc, "pip_requirements": list(export.pip_requirements)}
    (folder / ABOUT_FILE).write_text(json.dumps(about, indent=1) + "\n")
    return folder
