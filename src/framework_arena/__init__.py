"""framework-arena: train one model in PyTorch, TensorFlow and Keras 3, tracked in MLflow.

From Python (a notebook, a script): ``import framework_arena.api as arena`` has ``train``,
``sweep`` and ``compare``, the three commands with the same overrides. Nothing is imported here,
so the trial's child process stays light.
"""

__version__ = "0.1.0"
