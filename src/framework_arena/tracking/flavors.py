"""A trained model in its MLflow flavor: the folder the child saved, completed as MLflow's ``save_model`` would.

The child writes the framework's files and the flavor's settings (``framework_arena/model_files.py``,
no MLflow there); :func:`complete_model` adds the rest, with MLflow's own helpers and in
``save_model``'s order: the input example (and its serving form), the signature inferred from the
example and its logits, the flavor and ``python_function`` entries, the folder's size, ``MLmodel``,
and the environment files from the explicit requirements (inferring them re-imports the model:
about 11 s per model here).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import yaml

from framework_arena.model_files import ABOUT_FILE, LOGITS_FILE, X_FILE


def warm_up() -> None:
    """The one-time cost of :func:`complete_model`'s first call (~1 s): MLflow maps every installed
    distribution to its modules to check the requirements against the environment."""
    from mlflow.utils.environment import _process_pip_requirements

    _process_pip_requirements(None, [f"mlflow=={mlflow.__version__}"], None)


def complete_model(path: Path) -> None:
    """Completes the model folder the child saved at ``path``; it then loads with ``mlflow.pyfunc``
    and ``mlflow.<flavor>`` as one ``mlflow.<flavor>.save_model`` wrote."""
    from mlflow import pyfunc
    from mlflow.models import Model, infer_signature
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.models.utils import _save_example
    from mlflow.utils.environment import _CONDA_ENV_FILE_NAME, _PYTHON_ENV_FILE_NAME, _REQUIREMENTS_FILE_NAME, _process_pip_requirements, _PythonEnv
    from mlflow.utils.file_utils import get_total_file_size, write_to

    about = json.loads((path / ABOUT_FILE).read_text())
    x_example, logits_example = np.load(path / X_FILE), np.load(path / LOGITS_FILE)
    for name in (ABOUT_FILE, X_FILE, LOGITS_FILE):
        (path / name).unlink()
    model = Model()
    _save_example(model, x_example, str(path))
    model.signature = infer_signature(x_example, logits_example)
    model.add_flavor(about["flavor"], **about["flavor_conf"])
    pyfunc.add_to_model(model, conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME, **about["pyfunc"])
    if size := get_total_file_size(str(path)):
        model.model_size_bytes = size
    model.save(str(path / MLMODEL_FILE_NAME))
    conda_env, requirements, constraints = _process_pip_requirements(None, [*about["pip_requirements"], f"mlflow=={mlflow.__version__}"], None)
    assert not constraints  # explicit pins only: MLflow writes constraints.txt for "-c" lines
    with open(path / _CONDA_ENV_FILE_NAME, "w") as f:
        yaml.safe_dump(conda_env, stream=f, default_flow_style=False)
    write_to(str(path / _REQUIREMENTS_FILE_NAME), "\n".join(requirements))
    _PythonEnv.current().to_yaml(str(path / _PYTHON_ENV_FILE_NAME))
