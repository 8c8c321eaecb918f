"""framework-arena: train one model in PyTorch, TensorFlow and Keras 3, tracked in MLflow.

From Python (a notebook, a script): ``framework_arena.api`` has ``train``, ``sweep`` and
``compare``, the three commands with the same overrides (imported lazily: ``import
framework_arena`` stays light, for the trial's child process).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["compare", "sweep", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from framework_arena import api

        return getattr(api, name)
    raise AttributeError(f"module 'framework_arena' has no attribute {name!r}")
