"""The PyTorch trainer: an ``nn.Module`` built from the spec, ``torch.optim`` and a plain loop."""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from framework_arena import names, shards
from framework_arena.contracts import Callback, ModelExport
from framework_arena.data import Dataset, epoch_order
from framework_arena.trainers._torch_modules import build_module
from framework_arena.trainers.base import EVAL_BATCH_SIZE, NameMap, RunningLoss, Trainer, end_epoch, pin
from framework_arena.trainers.events import EventLog

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

#: torch.optim by name, each called with the trainable parameters and the ``optim`` config.
OPTIMIZERS = NameMap(
    "optim.name",
    names.OPTIMIZERS,
    {
        "adam": lambda params, o: torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=0.0),
        "adamw": lambda params, o: torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"]),
        "sgd": lambda params, o: torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], dampening=0.0, weight_decay=0.0, nesterov=o["nesterov"]),
    },
)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class _Blocks(torch.utils.data.Dataset):
    """One epoch's rows as blocks of a sharded dataset (``shards.Blocks``): item ``i`` is block ``i``.

    The DataLoader takes it with ``batch_size=None``; with workers each reads whole blocks (about
    4 MiB, one fancy index into a memory-mapped shard) and the loader hands them over in index
    order, pinned on a GPU; :func:`shards.rebatch` cuts them into the shared batches. One item per batch
    cost the loader's per-item work (fetch, convert, a profiler range) on every step: 6% of the
    default MLP's step on CPU, more than the reads themselves.
    """

    def __init__(self, blocks: shards.Blocks) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks.table)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.blocks.read(self.blocks.table[index])
        return torch.from_numpy(x), torch.from_numpy(y)


class TorchTrainer(Trainer):
    framework = "torch"
    device: torch.device = torch.device("cpu")

    def setup(self) -> dict[str, str]:
        s = self.settings
        torch.set_num_threads(s.threads)
        try:
            torch.set_num_interop_threads(s.threads)
        except RuntimeError:  # can be set only once per process, before any parallel work
            pass
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)
        random.seed(s.seed)
        use_cuda = self._use_gpu(torch.cuda.is_available, f"torch {torch.__version__}, built with CUDA {torch.version.cuda}")
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        return {
            "framework_version": torch.__version__,
            "device": str(self.device),
            "precision": s.precision,
            "compile": "torch.compile" if s.compile else "off",
        }

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 mixed precision: matmuls and convolutions in bf16, weights and loss in fp32."""
        if self.settings.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.settings.precision])

    def _build(self) -> int:
        self.model = build_module(self.spec, self.weights).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = OPTIMIZERS[self.settings.optim["name"]](params, self.settings.optim)
        # torch.compile wraps the module and shares its parameters; compiled lazily on first call,
        # so the first step (speed/time_to_first_step_s, speed/compile_time_s) carries the compilation.
        # Validation and test passes run the eager module (no extra graphs to compile).
        self.compiled = torch.compile(self.model) if self.settings.compile else self.model
        return sum(p.numel() for p in params)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _loss_sum(self, losses: Sequence[torch.Tensor], sizes: Sequence[int]) -> float:
        """Sum of each step's mean loss times its batch size: one kernel and one host sync."""
        return float(torch.stack(losses).float() @ torch.tensor(sizes, dtype=torch.float32, device=self.device))

    def loader(self, split: shards.StreamedSplit, epoch: int) -> torch.utils.data.DataLoader:
        """The epoch's (0-based) blocks of a streamed split through a DataLoader with ``data.workers`` workers."""
        s = self.settings
        return torch.utils.data.DataLoader(
            _Blocks(split.blocks(s.batch_size, s.seed, [epoch])),
            batch_size=None,
            shuffle=False,
            num_workers=s.input_workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if s.input_workers else None,
        )

    def input_pipeline(self, split: shards.StreamedSplit, epoch: int) -> Any:
        """The epoch's batches: the loader's blocks cut by :func:`shards.rebatch`."""
        s = self.settings
        return shards.rebatch(self.loader(split, epoch), split.batches(s.batch_size, s.seed, epoch).plan.sizes(), torch.cat)

    def _fit_streamed(self, data: Dataset, callback: Callback) -> None:
        s = self.settings
        n = len(data.train)
        stopwatch = self._stopwatch(n, self._sync)
        val = self._tensors(data.val.x, data.val.y)
        model, opt, log_every = self.compiled, self.optimizer, s.log_every_n_steps
        for epoch in range(1, s.epochs + 1):
            self.model.train()
            losses, sizes, signatures = [], [], []
            outputs: list[torch.Tensor] = []
            labels: list[torch.Tensor] = []
            correct = torch.zeros((), dtype=torch.int64, device=self.device)  # on the device: no sync
            running = RunningLoss(callback, self._loss_sum)
            stopwatch.epoch_start()
            for xb, yb in self.input_pipeline(data.train, epoch - 1):
                signatures.append(shards.batch_signature(yb.numpy()))
                xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
                with self._autocast():
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                sizes.append(len(yb))
                outputs.append(logits.detach())
                labels.append(yb)
                stopwatch.step_end(len(yb))
                if len(outputs) == 256:  # reduced in blocks, as in memory once per epoch: no extra ops per step, flat memory
                    correct += self._correct(outputs, labels)
                if log_every and stopwatch.step % log_every == 0:
                    running.report(stopwatch.step, losses, sizes)
            timing = {**stopwatch.epoch_end(), "input/order_crc": shards.order_crc(signatures)}
            with torch.no_grad():
                train_loss = self._loss_sum(losses, sizes) / n
                correct += self._correct(outputs, labels)
            end_epoch(callback, epoch, train_loss, int(correct) / n, timing, lambda: self._evaluate(*val))
        callback.on_train_end(stopwatch.end_logs())

    @staticmethod
    def _correct(outputs: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """Correct predictions in the kept steps' logits (on their device), which are then dropped."""
        count = (torch.cat(outputs).argmax(dim=1) == torch.cat(labels)).sum() if outputs else 0
        outputs.clear()
        labels.clear()
        return count

    def fit(self, data: Dataset, callback: Callback) -> None:
        if data.streamed:
            return self._fit_streamed(data, callback)
        s = self.settings
        n = len(data.train.y)
        stopwatch = self._stopwatch(n, self._sync)
        x, y = self._tensors(data.train.x, data.train.y)
        val = self._tensors(data.val.x, data.val.y)
        model, opt, log_every = self.compiled, self.optimizer, s.log_every_n_steps
        for epoch in range(1, s.epochs + 1):
            self.model.train()
            order = torch.from_numpy(epoch_order(n, s.seed, epoch - 1)).to(self.device)
            idx_batches = torch.split(order, s.batch_size)  # the slices of data.batches, as device views
            sizes = [len(i) for i in idx_batches]
            # Detached outputs are kept and reduced once per epoch: no extra kernels or host syncs per step.
            losses, outputs = [], []
            running = RunningLoss(callback, self._loss_sum)
            stopwatch.epoch_start()
            for idx, size in zip(idx_batches, sizes):
                with self._autocast():
                    logits = model(x[idx])
                    loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                outputs.append(logits.detach())
                stopwatch.step_end(size)
                if log_every and stopwatch.step % log_every == 0:
                    running.report(stopwatch.step, losses, sizes)
            timing = stopwatch.epoch_end()
            with torch.no_grad():
                train_loss = self._loss_sum(losses, sizes) / n
                correct = int((torch.cat(outputs).argmax(dim=1) == y[order]).sum())
            end_epoch(callback, epoch, train_loss, correct / n, timing, lambda: self._evaluate(*val))
        callback.on_train_end(stopwatch.end_logs())

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return _t(x).to(self.device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)

    @torch.inference_mode()
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        if len(x) == 0:  # e.g. val_fraction=0: torch.cat needs at least one batch
            return x.new_zeros((0, self.spec.num_classes))
        with self._autocast():
            return torch.cat([self.model(x[i : i + EVAL_BATCH_SIZE]).float() for i in range(0, len(x), EVAL_BATCH_SIZE)])

    @torch.inference_mode()
    def _evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        if len(y) == 0:
            return float("nan"), float("nan")
        logits = self._logits(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(dim=1) == y).sum()
        return float(loss) / len(y), int(correct) / len(y)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return self._evaluate(*self._tensors(x, y))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._logits(_t(x).to(self.device)).cpu().numpy()

    def forward_train(self, x: np.ndarray) -> np.ndarray:
        self.model.train()
        with torch.no_grad():
            return self.model(_t(x).to(self.device)).cpu().numpy()

    def inference_fn(self) -> Callable[[np.ndarray], Any]:
        model, device = self.compiled, self.device
        self.model.eval()

        def logits(xb: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), self._autocast():
                return model(torch.from_numpy(xb).to(device)).float().cpu().numpy()  # .cpu() waits for the device

        return logits

    def summary(self) -> str:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.model.parameters() if not p.requires_grad)
        buffers = sum(b.numel() for b in self.model.buffers())
        return (
            f"{self.model}\n\nTrainable parameters: {trainable:,}\nNon-trainable parameters: {frozen:,}\n"
            f"Buffers (e.g. BatchNorm running statistics): {buffers:,}\n"
        )

    def event_log(self, logdir: str) -> EventLog:
        from framework_arena.trainers._torch_events import TorchEvents

        return TorchEvents(logdir, lambda: ((n, p) for n, p in self.model.named_parameters() if p.requires_grad), self.model)

    def gpu_peak_mem_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None

    def export(self) -> ModelExport:
        # A CPU copy, so the trainer keeps working on its device after exporting.
        model = copy.deepcopy(self.model).cpu().eval()
        return ModelExport(
            flavor="pytorch",
            model_kwarg="pytorch_model",
            model=model,
            pip_requirements=[pin("torch")],
            # pt2 (torch.export) loads without framework_arena and without unpickling code;
            # named explicitly because MLflow falls back to pickle on Databricks URIs.
            extra={"serialization_format": "pt2"},
        )
