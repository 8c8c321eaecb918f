"""framework-arena: train one model in PyTorch, TensorFlow and Keras 3, tracked in MLflow."""

__version__ = "0.1.0"
