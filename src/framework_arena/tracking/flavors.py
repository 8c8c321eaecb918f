"""A trained model in its MLflow flavor: logged to a run, or saved to a folder when the server is lost."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import mlflow

if TYPE_CHECKING:
    import numpy as np

    from framework_arena.contracts import ModelExport


def model_kwargs(export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The MLflow flavor module and what its save_model takes, for logging or saving offline alike."""
    import importlib

    from mlflow.models import infer_signature

    flavor = KerasFlavor if export.flavor == "keras" else importlib.import_module(f"mlflow.{export.flavor}")
    return flavor, {
        "signature": infer_signature(x_example, logits_example),
        "input_example": x_example,
        # Explicit requirements: inferring them re-imports the model (about 11 s per model here).
        "pip_requirements": [*export.pip_requirements, f"mlflow=={mlflow.__version__}"],
        export.model_kwarg: export.model,
        **export.extra,
    }


def log_model(
    export: ModelExport,
    x_example: np.ndarray,
    logits_example: np.ndarray,
    run_id: str,
    step: int,
    name: str = "model",
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Logs the model to ``run_id`` as a LoggedModel named ``name`` with ``params`` and ``tags``,
    its flavor, a signature and an input example; returns its URI and its id.

    The LoggedModel is created first with exactly ``params``: ``Model.log`` would otherwise copy
    the run's params onto it, ``"null"`` strings for unset keys included.
    """
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id, tags=dict(tags or {}), params=dict(params or {}))
    flavor, kwargs = model_kwargs(export, x_example, logits_example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flavor chatter about optional inputs
        # artifact_path=None: positional in MLflow 3.17; `name` replaces it
        info = Model.log(artifact_path=None, name=name, flavor=flavor, run_id=run_id, step=step, model_id=logged.model_id, **kwargs)
    return info.model_uri, logged.model_id


def save_model(export: ModelExport, x_example: np.ndarray, logits_example: np.ndarray, path: Path) -> None:
    """Saves the model in ``path`` exactly as :func:`log_model` would log it."""
    import shutil

    flavor, kwargs = model_kwargs(export, x_example, logits_example)
    shutil.rmtree(path, ignore_errors=True)  # a half-written copy from an earlier attempt
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flavor chatter about optional inputs
        flavor.save_model(path=str(path), **kwargs)


class KerasFlavor:
    """``mlflow.keras`` with its model folder created first.

    MLflow 3.17's ``mlflow.keras.save_model`` writes ``input_example.json`` into ``path`` before
    anything creates that folder, so logging a Keras model with an input example fails with
    FileNotFoundError. The saved model is exactly what ``mlflow.keras`` writes and loads.
    """

    __name__ = "mlflow.keras"

    @staticmethod
    def save_model(path: str, **kwargs: Any) -> Any:
        import mlflow.keras

        os.makedirs(path, exist_ok=True)
        return mlflow.keras.save_model(path=path, **kwargs)
