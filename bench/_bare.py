"""Minimal hand-written training loops: the baseline the arena trainers are measured against.

Each is what a user of that framework writes without a harness: the same model (built from the
same spec and initial weights), the same optimizer settings, data, batch size and threads, the
framework's plain idiom for the loop, and a clock around each epoch that stops once the device
has finished (a value read back). Nothing else: no accuracy, no callbacks, no validation.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from framework_arena.data import Dataset


class Bare:
    """``epoch(skip)`` trains one epoch and returns its samples/s, the first ``skip`` steps
    untimed (as the arena trainer's ``warmup_steps``), by ``clock`` (as ``Stopwatch.clock``)."""

    clock = staticmethod(time.perf_counter)

    def epoch(self, skip: int) -> float:
        raise NotImplementedError


class BareTorch(Bare):
    def __init__(self, spec: Any, weights: Sequence[Sequence[np.ndarray]], data: Dataset, batch_size: int, optim: dict[str, Any], seed: int) -> None:
        import torch

        from framework_arena.trainers.torch import build_module

        self.torch = torch
        self.model = build_module(spec, weights)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=optim["lr"], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"])
        self.x = torch.from_numpy(np.ascontiguousarray(data.train.x, np.float32))
        self.y = torch.from_numpy(data.train.y.astype(np.int64))
        self.bs = batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self, skip: int) -> float:
        torch, F = self.torch, self.torch.nn.functional
        model, opt, x, y, bs = self.model, self.opt, self.x, self.y, self.bs
        model.train()
        perm = torch.randperm(len(y), generator=self.gen)
        for step, i in enumerate(range(0, len(y), bs)):
            if step == skip:
                start = self.clock()
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()
        return (len(y) - skip * bs) / (self.clock() - start)


class BareTensorFlow(Bare):
    def __init__(self, spec: Any, weights: Sequence[Sequence[np.ndarray]], data: Dataset, batch_size: int, optim: dict[str, Any], seed: int) -> None:
        import tensorflow as tf

        from framework_arena.trainers._tf_optim import make_optimizer
        from framework_arena.trainers.tensorflow import _Net

        net = self.net = _Net(spec, weights)  # kept: trial_cost.py's MLflow script logs it as the arena does
        opt = make_optimizer(optim, net.trainable_variables)
        x_spec = tf.TensorSpec([None, *spec.input_shape], tf.float32)

        @tf.function(input_signature=[x_spec, tf.TensorSpec([None], tf.int64)])
        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=net.forward(x, training=True)))
            opt.apply(tape.gradient(loss, net.trainable_variables))
            return loss

        # The traced concrete function, called directly: what a user who cares about per-step
        # Python cost writes, and what the arena trainer does.
        self.step = step.get_concrete_function()
        self.x = np.ascontiguousarray(data.train.x, np.float32)
        self.y = data.train.y.astype(np.int64)
        self.bs = batch_size
        self.rng = np.random.default_rng(seed)

    def epoch(self, skip: int) -> float:
        x, y, bs, step = self.x, self.y, self.bs, self.step
        perm = self.rng.permutation(len(y))
        loss = None
        for k, i in enumerate(range(0, len(y), bs)):
            if k == skip:
                if loss is not None:  # the skipped steps must have finished before the clock starts
                    loss.numpy()
                start = self.clock()
            idx = perm[i : i + bs]
            loss = step(x[idx], y[idx])
        loss.numpy()
        return (len(y) - skip * bs) / (self.clock() - start)


class BareKeras(Bare):
    """``model.fit`` on numpy arrays, one epoch per call, shuffled by a permutation of our own
    (as the arena trainer does, so both feed Keras the same kind of input: Keras' ``shuffle=True``
    is a different, slower input pipeline). Timed as the arena trainer times Keras, by a callback
    that only reads the clock: from the start of batch ``skip`` (the previous steps' logs are
    read back by then) to the end of the last batch (Keras' end-of-epoch work, the iterator's
    teardown, comes after; stopping at ``on_epoch_end`` instead counted ~30 ms per epoch that the
    arena's figure leaves out)."""

    def __init__(self, spec: Any, weights: Sequence[Sequence[np.ndarray]], data: Dataset, batch_size: int, optim: dict[str, Any], seed: int) -> None:
        import keras

        from framework_arena.trainers._keras_layers import build_model
        from framework_arena.trainers.keras import _optimizer

        self.model = build_model(spec, weights)  # the arena's own build: the same layers and weights
        self.model.compile(
            optimizer=_optimizer(optim),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile="auto" if keras.backend.backend() == "jax" else False,
        )
        self.x, self.y, self.bs = data.train.x, data.train.y, batch_size
        self.rng = np.random.default_rng(seed)

        clock = self.clock
        last = -(-len(self.y) // batch_size) - 1

        class EpochTimer(keras.callbacks.Callback):
            async_safe = True  # as the arena's reporter: Keras keeps its asynchronous dispatch
            skip = 0

            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                if batch == self.skip:
                    self.start = clock()

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if batch == last:
                    self.seconds = clock() - self.start

        self.timer = EpochTimer()

    def epoch(self, skip: int) -> float:
        self.timer.skip = skip
        perm = self.rng.permutation(len(self.y))
        self.model.fit(self.x[perm], self.y[perm], batch_size=self.bs, epochs=1, shuffle=False, verbose=0, callbacks=[self.timer])
        return (len(self.y) - skip * self.bs) / self.timer.seconds


BARE = {"torch": BareTorch, "tensorflow": BareTensorFlow, "keras": BareKeras}
