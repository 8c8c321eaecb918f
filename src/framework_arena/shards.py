"""Sharded datasets on disk: the format, its checks, and the training stream every framework reads.

A dataset made by ``arena-data make`` (``shard_writer.py``) is a folder::

    manifest.json                      what follows, with a sha256 per file
    train-00000-x.npy  train-00000-y.npy   ...   fixed-size shards (the last keeps the remainder)
    val-00000-x.npy    ...  test-00000-x.npy ...

``x`` shards are ``float32`` of shape ``(rows, *sample_shape)``, ``y`` shards ``int64`` class
indices. The training split is never loaded whole: each shard is memory-mapped while it is read
and unmapped after (at most :data:`OPEN_SHARDS` at once), so a trial's resident memory does not
grow with the dataset. Validation and test splits are read into memory: ``arena-data make`` caps
them (``--val-rows``, ``--test-rows``) so that they stay small at any size.

**The epoch order is a block shuffle, the same in every framework** (:class:`EpochPlan`): the
shards are permuted, then the rows inside each shard; batches are consecutive slices of that
sequence and may span two shards. A full permutation of all rows would make every batch touch
``batch_size`` random places of the whole dataset; this touches one or two shards at a time.
Each trainer wraps :class:`EpochBatches` in its framework's own input pipeline (a torch
``DataLoader``, a ``tf.data`` map with ``prefetch``, a Keras ``PyDataset``).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from framework_arena.data import DataError, Dataset, Split

FORMAT = "framework-arena-shards"
VERSION = 1
MANIFEST = "manifest.json"
#: Written while ``arena-data make`` runs; its presence without a manifest means an interrupted make.
PROGRESS = "progress.json"
SPLITS = ("train", "val", "test")
X_DTYPE, Y_DTYPE = np.dtype(np.float32), np.dtype(np.int64)
#: Training shards kept memory-mapped at once (the one being read, the next, two for parallel readers).
OPEN_SHARDS = 4
#: Bytes of ``x`` a block reader (``tf.data``) reads at once: one call per block, not per batch.
BLOCK_BYTES = 4 * 2**20


def block_rows(sample_shape: Sequence[int], batch_size: int) -> int:
    """Rows per block for :meth:`EpochPlan.blocks`: about :data:`BLOCK_BYTES`, at least one batch."""
    return max(batch_size, BLOCK_BYTES // (math.prod(sample_shape) * X_DTYPE.itemsize))


def shard_names(split: str, index: int) -> tuple[str, str]:
    """The ``x`` and ``y`` file names of a split's ``index``-th shard."""
    return f"{split}-{index:05d}-x.npy", f"{split}-{index:05d}-y.npy"


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and data offset of a ``.npy`` file, read from its header only.

    Raises:
        DataError: the file is missing or is not a ``.npy`` file, naming it.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise DataError(f"{path}: shard file is missing. Run `arena-data make` again with the same arguments to repair the dataset") from None
    except ValueError as e:
        raise DataError(f"{path}: not a .npy shard ({e})") from None
    if fortran:
        raise DataError(f"{path}: a Fortran-ordered array; shards are C-ordered")
    return tuple(shape), dtype, offset


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A checked ``manifest.json``: the folder, the sample shape, the classes and the shards per split."""

    root: Path
    sample_shape: tuple[int, ...]
    num_classes: int
    rows_per_shard: int
    splits: Mapping[str, Sequence[Mapping[str, Any]]]  # split -> [{"x", "y", "rows", "x_sha256", "y_sha256"}]
    source: Mapping[str, Any]

    def rows(self, split: str) -> int:
        return sum(int(s["rows"]) for s in self.splits[split])

    def nbytes(self, split: str) -> int:
        """Bytes of the split's ``x`` and ``y`` arrays in memory."""
        row = math.prod(self.sample_shape) * X_DTYPE.itemsize + Y_DTYPE.itemsize
        return self.rows(split) * row


def read_manifest(path: str | Path | None, key: str = "data.path") -> Manifest:
    """Reads and checks a sharded dataset's manifest and every shard's header and size.

    Checksums are not computed here (that reads every byte): :func:`verify` does, and
    ``arena-data make`` on an existing folder. A truncated or replaced shard is found by its size
    and header.

    Raises:
        DataError: naming ``key`` and the folder, or the file that disagrees with the manifest.
    """
    if not path:
        raise DataError(f"data=shards needs {key}: a folder made by `arena-data make`. Received: {key}=None")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{key}={str(path)!r} does not exist or is not a folder. Expected a folder made by `arena-data make ... --out DIR`")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        if (root / PROGRESS).is_file():
            raise DataError(f"{key}={str(path)!r}: the dataset is incomplete ({PROGRESS}, no {MANIFEST}): run the same `arena-data make` again to finish it")
        raise DataError(f"{key}={str(path)!r} has no {MANIFEST}. Expected a folder made by `arena-data make ... --out DIR`")
    try:
        raw = json.loads(manifest_path.read_text())
        if raw.get("format") != FORMAT or raw.get("version") != VERSION:
            raise DataError(f"{manifest_path}: expected format {FORMAT!r} version {VERSION}. Received: {raw.get('format')!r} version {raw.get('version')!r}")
        manifest = Manifest(root, tuple(int(d) for d in raw["sample_shape"]), int(raw["num_classes"]), int(raw["rows_per_shard"]), raw["splits"], raw["source"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{manifest_path}: not a valid manifest ({type(e).__name__}: {e})") from None
    for split in SPLITS:
        if split not in manifest.splits:
            raise DataError(f"{manifest_path}: no {split!r} split. Expected the splits {SPLITS}")
        for shard in manifest.splits[split]:
            _check_shard_file(root / shard["x"], (int(shard["rows"]), *manifest.sample_shape), X_DTYPE)
            _check_shard_file(root / shard["y"], (int(shard["rows"]),), Y_DTYPE)
    if manifest.rows("train") == 0:
        raise DataError(f"{manifest_path}: the train split has no rows")
    return manifest


def _check_shard_file(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    found_shape, found_dtype, offset = npy_header(path)
    if found_shape != shape or found_dtype != dtype:
        raise DataError(f"{path}: shard disagrees with {MANIFEST}. Expected shape {shape} of {dtype}. Received: shape {found_shape} of {found_dtype}")
    size, expected = path.stat().st_size, offset + math.prod(shape) * dtype.itemsize
    if size != expected:
        raise DataError(f"{path}: truncated or padded shard: {size} bytes, expected {expected} for shape {shape} of {dtype}")


def verify(path: str | Path) -> Manifest:
    """:func:`read_manifest`, then every file's sha256 against the manifest.

    Raises:
        DataError: naming the first shard whose bytes changed.
    """
    manifest = read_manifest(path)
    for split in SPLITS:
        for shard in manifest.splits[split]:
            for part in ("x", "y"):
                file = manifest.root / shard[part]
                if file_sha256(file) != shard[f"{part}_sha256"]:
                    raise DataError(f"{file}: checksum differs from {MANIFEST} (the shard was changed or corrupted): run `arena-data make` again to repair it")
    return manifest


class StreamedSplit:
    """The training split of a sharded dataset: shards memory-mapped on demand, never loaded whole.

    ``rows`` keeps only the split's first rows (whole shards, then part of one): a scaling sweep
    grows it on one dataset, and the block shuffle covers exactly those rows.
    """

    def __init__(self, manifest: Manifest, split: str = "train", rows: int | None = None) -> None:
        self.manifest = manifest
        self.shards, self.shard_rows = [], []
        left = manifest.rows(split) if rows is None else int(rows)
        for shard in manifest.splits[split]:
            if left <= 0:
                break
            self.shards.append(shard)
            self.shard_rows.append(min(int(shard["rows"]), left))
            left -= self.shard_rows[-1]
        self.sample_shape = manifest.sample_shape
        self._open: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._headers: dict[Path, tuple[tuple[int, ...], np.dtype, int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(self.shard_rows)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers may be spawned: they reopen their own maps.
        return {"manifest": self.manifest, "shards": self.shards, "shard_rows": self.shard_rows, "sample_shape": self.sample_shape}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open, self._headers, self._lock = OrderedDict(), {}, threading.Lock()

    def _maps(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            maps = self._open.get(shard)
            if maps is None:
                maps = self._open[shard] = (self._map(shard, "x"), self._map(shard, "y"))
                while len(self._open) > OPEN_SHARDS:  # the dropped map is unmapped: its pages leave our resident memory
                    self._open.popitem(last=False)
            else:
                self._open.move_to_end(shard)
            return maps

    def _map(self, shard: int, part: str) -> np.ndarray:
        # The header is parsed once per file: np.load parses it at every map (0.18 ms against 0.04
        # for np.memmap), and a shard is mapped again whenever more than OPEN_SHARDS were read since.
        path = self.manifest.root / self.shards[shard][part]
        found = self._headers.get(path)
        if found is None:
            shape, dtype, offset = npy_header(path)
            found = self._headers[path] = (shape, dtype, offset)
        shape, dtype, offset = found
        return np.memmap(path, dtype, "r", offset, shape)

    def gather(self, pieces: Sequence[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``pieces`` (shard, row indices in it), in that order, as new arrays."""
        xs, ys = [], []
        for shard, rows in pieces:
            x, y = self._maps(shard)
            xs.append(x[rows])
            ys.append(y[rows])
        if len(xs) == 1:
            return xs[0], ys[0]
        return np.concatenate(xs), np.concatenate(ys)

    def batches(self, batch_size: int, seed: int, epoch: int) -> EpochBatches:
        """The batches of 0-based ``epoch`` in the shared block-shuffled order."""
        return EpochBatches(self, EpochPlan(self.shard_rows, batch_size, seed, epoch))

    def blocks(self, batch_size: int, seed: int, epochs: Sequence[int]) -> Blocks:
        """The blocks of the 0-based ``epochs``, in the shared order: see :class:`Blocks`."""
        return Blocks(self, batch_size, seed, epochs, block_rows(self.sample_shape, batch_size))


class EpochPlan:
    """Which rows make each batch of one epoch: shards permuted, rows permuted inside each shard.

    Built from the seed and the epoch only, so every framework (and every DataLoader worker)
    computes the same plan; its memory is one permutation per shard in use, not one per row.
    """

    def __init__(self, shard_rows: Sequence[int], batch_size: int, seed: int, epoch: int) -> None:
        self.shard_rows, self.batch_size, self.seed, self.epoch = list(shard_rows), batch_size, seed, epoch
        self.order = np.random.default_rng([seed, epoch, 7919]).permutation(len(self.shard_rows))
        self.starts = np.concatenate([[0], np.cumsum([self.shard_rows[s] for s in self.order])])
        self.rows = int(self.starts[-1])
        self._perms: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def _perm(self, shard: int) -> np.ndarray:
        with self._lock:
            perm = self._perms.get(shard)
            if perm is None:
                perm = np.random.default_rng([self.seed, self.epoch, shard, 7927]).permutation(self.shard_rows[shard])
                self._perms[shard] = perm
                while len(self._perms) > OPEN_SHARDS:
                    self._perms.popitem(last=False)
            return perm

    def batch(self, index: int) -> list[tuple[int, np.ndarray]]:
        """``(shard, row indices)`` pieces of batch ``index``, in order."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of an epoch of {len(self)}")
        start, stop = index * self.batch_size, min((index + 1) * self.batch_size, self.rows)
        pieces = []
        position = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < stop:
            shard = int(self.order[position])
            offset = start - int(self.starts[position])
            take = min(stop - start, self.shard_rows[shard] - offset)
            pieces.append((shard, self._perm(shard)[offset : offset + take]))
            start += take
            position += 1
        return pieces

    def sizes(self) -> list[int]:
        return [min(self.batch_size, self.rows - i * self.batch_size) for i in range(len(self))]

    def blocks(self, max_rows: int) -> np.ndarray:
        """The epoch's row sequence cut into blocks: ``(shard, offset, rows)`` per block, in order.

        Each block lies in one shard (rows ``offset:offset + rows`` of its permutation) and holds
        at most ``max_rows`` rows; the blocks end to end are the batches end to end. A pipeline that
        reads blocks and cuts them into batches (``tf.data``'s ``rebatch``) yields the same batches
        as :meth:`batch` with one read per block instead of one per batch.
        """
        out = []
        for shard in self.order:
            rows = self.shard_rows[int(shard)]
            out += [(int(shard), offset, min(max_rows, rows - offset)) for offset in range(0, rows, max_rows)]
        return np.asarray(out, np.int64).reshape(-1, 3)

    def block(self, shard: int, offset: int, rows: int) -> list[tuple[int, np.ndarray]]:
        """The ``(shard, row indices)`` piece of one block of :meth:`blocks`."""
        return [(shard, self._perm(shard)[offset : offset + rows])]


class EpochBatches:
    """One epoch's batches as a sequence: ``batches[i]`` is ``(x float32, y int64)``; safe from threads.

    Rows are read a block at a time (:meth:`EpochPlan.blocks`, about :data:`BLOCK_BYTES`: one
    fancy index into a memory-mapped shard per block) and batches are slices of the blocks kept
    (at most :data:`OPEN_SHARDS`): most batches are views into a block, no copy. Gathering each
    batch from the shard itself cost a fancy index, a lookup and a copy per batch: a quarter of
    the in-memory step of the default MLP (bench/input_pipeline.py). The views must be read only.
    Keras' ``PyDataset`` worker threads share the kept blocks, so they read whole blocks, not
    per-batch rows. (torch and ``tf.data`` read :class:`Blocks` and cut batches themselves.)
    """

    def __init__(self, split: StreamedSplit, plan: EpochPlan) -> None:
        self.split, self.plan = split, plan
        self.blocks = plan.blocks(block_rows(split.sample_shape, plan.batch_size))
        self._starts = np.concatenate([[0], np.cumsum(self.blocks[:, 2])])
        self._kept: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.plan)

    def __getstate__(self) -> dict[str, Any]:
        return {"split": self.split, "plan": self.plan, "blocks": self.blocks, "_starts": self._starts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._kept, self._lock = OrderedDict(), threading.Lock()

    def _block(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            arrays = self._kept.get(index)
            if arrays is not None:
                self._kept.move_to_end(index)
                return arrays
        shard, offset, rows = (int(v) for v in self.blocks[index])
        arrays = self.split.gather(self.plan.block(shard, offset, rows))  # outside the lock: other threads read on
        with self._lock:
            self._kept[index] = arrays
            while len(self._kept) > OPEN_SHARDS:
                self._kept.popitem(last=False)
        return arrays

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of an epoch of {len(self)}")
        start, stop = index * self.plan.batch_size, min((index + 1) * self.plan.batch_size, self.plan.rows)
        block = int(np.searchsorted(self._starts, start, side="right")) - 1
        xs, ys = [], []
        while start < stop:
            x, y = self._block(block)
            begin, end = int(self._starts[block]), int(self._starts[block + 1])
            xs.append(x[start - begin : min(stop, end) - begin])
            ys.append(y[start - begin : min(stop, end) - begin])
            start, block = min(stop, end), block + 1
        if len(xs) == 1:
            return xs[0], ys[0]
        return np.concatenate(xs), np.concatenate(ys)


class Blocks:
    """Several epochs' rows as blocks, for a pipeline that reads blocks and cuts them into batches.

    ``table`` has one row ``(epoch, shard, offset, rows)`` per block (:meth:`EpochPlan.blocks`),
    epochs end to end; :meth:`read` gives a block's rows. Cutting the blocks, in order, into
    batches of ``batch_sizes`` (cycled: one cycle per epoch, its last batch possibly smaller)
    gives every epoch's batches of :meth:`StreamedSplit.batches`, with one read per block rather
    than one per batch. The ``tf.data`` pipeline is ``from_tensor_slices(table)``, a parallel
    ``map`` of :meth:`read`, ``rebatch(batch_sizes)``.
    """

    def __init__(self, split: StreamedSplit, batch_size: int, seed: int, epochs: Sequence[int], max_rows: int) -> None:
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self._plans: OrderedDict[int, EpochPlan] = OrderedDict()
        self._lock = threading.Lock()
        tables = [np.insert(self._plan(e).blocks(max_rows), 0, e, axis=1) for e in epochs]
        self.table = np.concatenate(tables) if tables else np.zeros((0, 4), np.int64)
        self.batch_sizes = EpochPlan(split.shard_rows, batch_size, seed, 0).sizes()

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers may be spawned: they make their own plans.
        return {"split": self.split, "batch_size": self.batch_size, "seed": self.seed, "table": self.table, "batch_sizes": self.batch_sizes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plans, self._lock = OrderedDict(), threading.Lock()

    def _plan(self, epoch: int) -> EpochPlan:
        with self._lock:
            plan = self._plans.get(epoch)
            if plan is None:
                plan = self._plans[epoch] = EpochPlan(self.split.shard_rows, self.batch_size, self.seed, epoch)
                while len(self._plans) > 2:  # readers are at most one epoch boundary apart
                    self._plans.popitem(last=False)
            return plan

    def read(self, block: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The rows of one ``table`` row ``(epoch, shard, offset, rows)`` as new arrays."""
        epoch, shard, offset, rows = (int(v) for v in block)
        return self.split.gather(self._plan(epoch).block(shard, offset, rows))


def rebatch(blocks: Iterable[tuple[Any, Any]], sizes: Iterable[int], concat: Callable[[list[Any]], Any]) -> Iterator[tuple[Any, Any]]:
    """Cuts blocks ``(x, y)``, in order, into batches of ``sizes`` (``tf.data``'s ``rebatch``, in Python).

    A batch inside one block is a view of it (a slice); one spanning two blocks is joined with
    ``concat`` (``np.concatenate``, ``torch.cat``). Ends when the sizes or the blocks do.
    """
    wanted = iter(sizes)
    size, xs, ys, have = next(wanted, 0), [], [], 0
    for x, y in blocks:
        start = 0
        while size and start < len(y):
            take = min(size - have, len(y) - start)
            xs.append(x[start : start + take])
            ys.append(y[start : start + take])
            have, start = have + take, start + take
            if have == size:
                yield (xs[0], ys[0]) if len(xs) == 1 else (concat(xs), concat(ys))
                size, xs, ys, have = next(wanted, 0), [], [], 0


def batch_signature(y: np.ndarray) -> int:
    """An order-sensitive integer of one batch's labels: ``sum((y + 1) * (i % 97 + 1))``.

    Every framework computes it on the batch it trains on (Keras inside its train step, as a
    metric), so equal :func:`order_crc` values show that the frameworks saw the same batches in
    the same order. Exact in float32 while ``num_classes * 97 * batch_size < 2**24``.
    """
    y = np.asarray(y, np.int64)
    return int(((y + 1) * (np.arange(len(y)) % 97 + 1)).sum())


def order_crc(signatures: Sequence[int]) -> float:
    """The CRC-32 of an epoch's batch signatures, as the float MLflow stores (metric ``input/order_crc``)."""
    return float(zlib.crc32(np.asarray(signatures, np.int64).tobytes()))


def signature_exact(num_classes: int, batch_size: int) -> bool:
    return num_classes * 97 * batch_size < 2**24


def load(cfg: Mapping[str, Any], seed: int = 0) -> Dataset:
    """The dataset of ``data=shards``: a :class:`StreamedSplit` to train on, validation and test in memory.

    Args:
        cfg: the resolved ``data`` config (``path``; ``num_samples``: the first training rows to use).
        seed: unused: the splits were made by ``arena-data make``.
    """
    manifest = read_manifest(cfg.get("path"))
    train = StreamedSplit(manifest, rows=cfg.get("num_samples"))
    return Dataset("shards", train, _in_memory(manifest, "val"), _in_memory(manifest, "test"), manifest.num_classes)  # type: ignore[arg-type]


def _in_memory(manifest: Manifest, split: str) -> Split:
    shards = manifest.splits[split]
    if not shards:
        return Split(np.zeros((0, *manifest.sample_shape), X_DTYPE), np.zeros((0,), Y_DTYPE))
    x = np.concatenate([np.load(manifest.root / s["x"]) for s in shards])
    y = np.concatenate([np.load(manifest.root / s["y"]) for s in shards])
    return Split(x, y)
