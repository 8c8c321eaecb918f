"""One trainer per framework; each module imports only its own framework, so import lazily."""

from __future__ import annotations

import importlib

from framework_arena.trainers.base import Trainer

FRAMEWORKS = {
    "torch": ("framework_arena.trainers.torch", "TorchTrainer"),
    "tensorflow": ("framework_arena.trainers.tensorflow", "TensorFlowTrainer"),
    "keras": ("framework_arena.trainers.keras", "KerasTrainer"),
}


def get_trainer(framework: str) -> type[Trainer]:
    """Imports and returns the trainer class for ``framework`` (which imports the framework).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"Expected framework.name in {sorted(FRAMEWORKS)}. Received: framework.name={framework!r}")
    module, cls = FRAMEWORKS[framework]
    return getattr(importlib.import_module(module), cls)
