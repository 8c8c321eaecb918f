"""Hand-written optimizers for the low-level TensorFlow trainer.

They follow ``torch.optim``'s update rules (not Keras'), so the ``optim`` config means the same
thing in the three frameworks. State lives in ``tf.Variable`` slots created up front, and
:meth:`apply` is called inside the trainer's ``tf.function`` step.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import tensorflow as tf

from framework_arena import names
from framework_arena.trainers.base import NameMap


class _Slots(tf.Module):
    """The variables an optimizer updates, its step counter and its per-variable state.

    Each optimizer below adds ``apply(grads)``: update every variable with its gradient, in the
    order of the constructor's list.
    """

    def __init__(self, variables: Sequence[tf.Variable], name: str) -> None:
        super().__init__(name=name)
        self.params = list(variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

    def _slots(self, kind: str) -> list[tf.Variable]:
        return [tf.Variable(tf.zeros_like(v), trainable=False, name=f"{kind}_{i}") for i, v in enumerate(self.params)]


class Adam(_Slots):
    """torch.optim.Adam, or AdamW when ``weight_decay`` > 0 (decoupled decay, applied first)."""

    def __init__(self, variables: Sequence[tf.Variable], lr: float, beta1: float, beta2: float, eps: float, weight_decay: float = 0.0) -> None:
        super().__init__(variables, "adamw" if weight_decay else "adam")
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, beta1, beta2, eps, weight_decay
        self.m = self._slots("m")
        self.v = self._slots("v")

    def apply(self, grads: Sequence[tf.Tensor]) -> None:
        t = tf.cast(self.step.assign_add(1), tf.float64)
        # torch computes the bias corrections as Python (double) floats: do the same, then cast.
        step_size = tf.cast(self.lr / (1.0 - self.beta1**t), tf.float32)
        bc2_sqrt = tf.cast(tf.sqrt(1.0 - self.beta2**t), tf.float32)
        b1, b2 = self.beta1, self.beta2
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if self.weight_decay:
                p.assign(p * (1.0 - self.lr * self.weight_decay))
            m_t = m.assign_add((1.0 - b1) * (g - m))  # torch's exp_avg.lerp_(grad, 1 - beta1)
            v_t = v.assign(v * b2 + (1.0 - b2) * tf.square(g))
            p.assign_sub(step_size * m_t / (tf.sqrt(v_t) / bc2_sqrt + self.eps))


class SGD(_Slots):
    """torch.optim.SGD with dampening 0: a zero-initialised buffer makes the first step buf = g."""

    def __init__(self, variables: Sequence[tf.Variable], lr: float, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(variables, "sgd")
        if nesterov and momentum <= 0:
            raise ValueError(f"optim.nesterov=true needs optim.momentum > 0. Received: optim.momentum={momentum}")
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buf = self._slots("momentum") if momentum else []

    def apply(self, grads: Sequence[tf.Tensor]) -> None:
        self.step.assign_add(1)
        if not self.momentum:
            for p, g in zip(self.params, grads):
                p.assign_sub(self.lr * g)
            return
        for p, g, buf in zip(self.params, grads, self.buf):
            b = buf.assign(self.momentum * buf + g)
            p.assign_sub(self.lr * (g + self.momentum * b if self.nesterov else b))


#: The optimizers above by name, each called with the variables and the ``optim`` config.
OPTIMIZERS = NameMap(
    "optim.name",
    names.OPTIMIZERS,
    {
        "adam": lambda variables, o: Adam(variables, float(o["lr"]), float(o["beta1"]), float(o["beta2"]), float(o["eps"])),
        "adamw": lambda variables, o: Adam(variables, float(o["lr"]), float(o["beta1"]), float(o["beta2"]), float(o["eps"]), float(o.get("weight_decay", 0.0))),
        "sgd": lambda variables, o: SGD(variables, float(o["lr"]), float(o.get("momentum", 0.0)), bool(o.get("nesterov", False))),
    },
)


def make_optimizer(cfg: Mapping[str, Any], variables: Sequence[tf.Variable]) -> Adam | SGD:
    """The optimizer the ``optim`` config group names, over ``variables``."""
    return OPTIMIZERS[cfg["name"]](variables, cfg)
