"""TensorBoard events with PyTorch's own writer, ``torch.utils.tensorboard.SummaryWriter``."""

from __future__ import annotations

import warnings
from typing import Callable, Iterable

import numpy as np
import torch

from framework_arena.trainers.events import EventLog, without_tensorflow

without_tensorflow()  # before torch.utils.tensorboard imports the TensorBoard writer
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


class TorchEvents(EventLog):
    """Scalars and weight histograms with ``add_scalar`` / ``add_histogram``; the graph with ``add_graph``.

    Args:
        parameters: the named trainable parameters, read at each epoch end (``module.named_parameters``).
        module: the ``nn.Module`` whose graph ``add_graph`` traces (``torch.jit.trace``); None: no graph
            (Keras on torch: its layers are modules, but its calls do not trace).
    """

    tool = "torch.utils.tensorboard"

    def __init__(self, logdir: str, parameters: Callable[[], Iterable[tuple[str, torch.Tensor]]], module: torch.nn.Module | None = None) -> None:
        super().__init__(logdir)
        self.writer = SummaryWriter(logdir)
        self.parameters = parameters
        self.module = module

    def _scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def _histograms(self, step: int) -> int:
        n = 0
        for name, p in self.parameters():
            # 30 buckets, as tf.summary.histogram's default. torch's own default ("tensorflow" bins)
            # made the cnn's files 144 KB after 2 epochs (24 KB after 4 with 30), and took 2-3x as long.
            self.writer.add_histogram(name, p.detach().float().cpu(), step, bins=30)
            n += 1
        return n

    def _graph(self, example: np.ndarray) -> bool:
        if self.module is None:
            return False
        was_training = self.module.training
        self.module.eval()  # inference mode: no dropout draws, no BatchNorm updates
        try:
            device = next(self.module.parameters()).device
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's warnings about Python values in the graph
                self.writer.add_graph(self.module, torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32)).to(device))
        finally:
            self.module.train(was_training)
        return True

    def _close(self) -> None:
        self.writer.close()
