"""A trial's model folder is what MLflow's own ``save_model`` writes, though the child never imports MLflow.

The child writes the framework's files (``model_files.save``), the launcher the rest
(``tracking.flavors.complete_model``); an MLflow upgrade that changes a flavor's layout shows
up here first. Each variant runs in a fresh process (``probe_model_files.py``): Keras reads its
back end at import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORKS, framework_id

PROBE = Path(__file__).with_name("probe_model_files.py")
#: Written anew by every save: the time, a random id, and the size (torch.export's archive differs by some bytes).
VOLATILE = ("utc_time_created", "model_uuid", "model_size_bytes")


@pytest.mark.parametrize(("framework", "backend"), FRAMEWORKS, ids=[framework_id(fb) for fb in FRAMEWORKS])
def test_the_model_folder_is_what_mlflow_save_model_writes(framework: str, backend: str | None, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(PROBE), framework, backend or "-", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    ours, theirs = result["ours"], result["mlflow"]
    assert {k: v for k, v in ours.items() if k not in VOLATILE} == {k: v for k, v in theirs.items() if k not in VOLATILE}
    assert ours["model_size_bytes"] == pytest.approx(theirs["model_size_bytes"], rel=0.05)
    assert result["files_ours"] == result["files_mlflow"] and "MLmodel" in result["files_ours"]
    assert all(result["same_text"].values()), result["same_text"]
    if backend:
        assert ours["flavors"]["keras"]["keras_backend"] == backend
    # Loaded back by MLflow, it predicts the trainer's logits, for another batch size than the example's.
    assert result["predict_max_diff"] < 1e-5
