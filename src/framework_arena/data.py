"""Datasets as numpy arrays with deterministic splits, shared by every framework.

Images are ``float32`` in ``[0, 1]`` with shape ``(N, H, W, C)``; sequences ``(N, T, F)``;
labels are ``int64`` class indices. The batch order of every epoch comes from
:func:`epoch_order`, so all three frameworks see the same batches in the same order.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

DATASETS = ("digits", "synthetic", "idx", "sequences")


class DataError(ValueError):
    """The data config points at something that cannot be loaded."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


@dataclass(frozen=True)
class Dataset:
    """A dataset split three ways. ``train`` is a :class:`Split` in memory, or, for ``data=shards``,
    a ``shards.StreamedSplit`` read from disk through each framework's input pipeline."""

    name: str
    train: Any  # Split | shards.StreamedSplit
    val: Split
    test: Split
    num_classes: int
    vocab_size: int | None = None  # samples are token ids in [0, vocab_size) (data=sequences)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.sample_shape)

    @property
    def streamed(self) -> bool:
        return not isinstance(self.train, Split)


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of training samples for ``epoch`` (0-based): the same in every framework."""
    return np.random.default_rng([seed, epoch, 104729]).permutation(num_samples)


def batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order``; the last batch keeps the remainder."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def num_batches(num_samples: int, batch_size: int) -> int:
    return math.ceil(num_samples / batch_size)


def _split(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> tuple[Split, Split, Split]:
    """A stratified split: every class keeps its share in train, val and test."""
    rng = np.random.default_rng([seed, 15485863])
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    out = []
    for name in ("train", "val", "test"):
        idx = np.sort(np.concatenate(parts[name]))
        out.append(Split(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])))
    return out[0], out[1], out[2]


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, read from the file it ships, without importing scikit-learn.

    ``sklearn.datasets.load_digits`` is ``np.loadtxt`` of ``sklearn/datasets/data/digits.csv.gz``
    (64 pixel columns, then the label); importing scikit-learn for it pulls in SciPy, about 3 s
    of CPU per trial here (2026-11). ``tests/test_data.py`` checks the arrays equal ``load_digits``'s.

    Returns:
        images ``(1797, 8, 8)`` with values 0-16, and labels ``(1797,)``.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # a top-level package: found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise DataError("Expected scikit-learn installed for data=digits (its bundled digits file). Received: no module named sklearn")
    path = Path(next(iter(spec.submodule_search_locations)), "datasets", "data", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def _digits(cfg: Mapping[str, Any], seed: int) -> Dataset:
    images, target = digits_arrays()  # bundled with scikit-learn: no download
    x = (images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1)
    y = target.astype(np.int64)
    train, val, test = _split(x, y, cfg["val_fraction"], cfg["test_fraction"], seed)
    return Dataset("digits", train, val, test, 10)


def _synthetic(cfg: Mapping[str, Any], seed: int) -> Dataset:
    """Class prototypes plus noise: learnable, any size, generated in chunks to bound memory."""
    shape = tuple(int(d) for d in cfg["shape"])
    n, k = int(cfg["num_samples"]), int(cfg["num_classes"])
    rng = np.random.default_rng([seed, 32452843])
    prototypes = rng.uniform(0.0, 1.0, size=(k, *shape)).astype(np.float32)
    y = rng.integers(0, k, size=n).astype(np.int64)
    x = np.empty((n, *shape), np.float32)
    chunk = 65536
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        noise = rng.normal(0.0, cfg["noise"], size=(end - start, *shape)).astype(np.float32)
        x[start:end] = np.clip(prototypes[y[start:end]] + noise, 0.0, 1.0)
    train, val, test = _split(x, y, cfg["val_fraction"], cfg["test_fraction"], seed)
    return Dataset("synthetic", train, val, test, k)


def read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise DataError(f"{path} holds {data.size} bytes of data, its header announces {dims}")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"data.path={str(root)!r} has no {stem} (or {stem}.gz). Expected a folder holding the four "
        f"MNIST/Fashion-MNIST IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    )


def check_idx_path(path: str | None) -> Path:
    """Fails with the key, the value and what was expected when ``data.path`` is unusable."""
    if not path:
        raise DataError("data=idx needs data.path: the folder holding the IDX files. Received: data.path=None")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={path!r} does not exist or is not a folder. Expected a folder of IDX files")
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _find(root, stem)
    return root


def _idx(cfg: Mapping[str, Any], seed: int) -> Dataset:
    root = check_idx_path(cfg.get("path"))
    x_train = read_idx(_find(root, "train-images-idx3-ubyte"))
    y_train = read_idx(_find(root, "train-labels-idx1-ubyte")).astype(np.int64)
    x_test = read_idx(_find(root, "t10k-images-idx3-ubyte"))
    y_test = read_idx(_find(root, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DataError(f"data.path={str(root)!r}: image and label files disagree on the number of samples")
    limit = cfg.get("limit")
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[:limit], y_test[:limit]
    to_float = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    # The official test set stays the test set; validation is carved out of the training files.
    train, val, _ = _split(to_float(x_train), y_train, cfg["val_fraction"], 0.0, seed)
    test = Split(to_float(x_test), y_test)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset("idx", train, val, test, num_classes)


def memory_needed(cfg: Mapping[str, Any]) -> int | None:
    """Peak bytes :func:`load` allocates for ``cfg``; None when small or unknown (digits, unreadable files).

    synthetic: ``x`` generated whole, then copied into its three splits, plus the labels and indices.
    sequences: the int64 tokens, their float32 copy and the split copy.
    idx: the uint8 images, their float32 copy, the division's temporary and the split copy.
    """
    if cfg.get("name") == "synthetic":
        n = int(cfg["num_samples"])
        return 2 * n * math.prod(int(d) for d in cfg["shape"]) * 4 + 4 * n * 8
    if cfg.get("name") == "sequences":  # int64 tokens, their float32 copy, the split copy
        n = int(cfg["num_samples"])
        return n * int(cfg["length"]) * (8 + 4 + 4) + 4 * n * 8
    if cfg.get("name") == "idx":
        try:
            root = check_idx_path(cfg.get("path"))
        except DataError:
            return None
        total = 0
        for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
            dims = _idx_dims(_find(root, stem))
            if dims is None:  # not an IDX file: the loader says so, naming it
                return None
            rows = min(dims[0], cfg["limit"]) if cfg.get("limit") else dims[0]
            total += rows * math.prod(dims[1:]) * (1 + 4 + 4 + 4)
        return total
    return None


def _idx_dims(path: Path) -> tuple[int, ...] | None:
    """The dimensions in an IDX file's header; None when it is not an unsigned-byte IDX file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08" or head[3] == 0:
            return None
        dims = f.read(4 * head[3])
        return struct.unpack(f">{head[3]}I", dims) if len(dims) == 4 * head[3] else None


def _sequences(cfg: Mapping[str, Any], seed: int) -> Dataset:
    from framework_arena import sequences

    x, y = sequences.load(cfg, seed)
    train, val, test = _split(x, y, cfg["val_fraction"], cfg["test_fraction"], seed)
    return Dataset("sequences", train, val, test, sequences.NUM_CLASSES, int(cfg["vocab_size"]))


def load(cfg: Mapping[str, Any], seed: int) -> Dataset:
    """Loads the dataset described by the ``data`` config group, split with ``seed``.

    Args:
        cfg: the resolved ``data`` config.
        seed: the split seed (``data.split_seed``).

    Returns:
        The dataset; raises :class:`DataError` with the offending key when it cannot.
    """
    loaders = {"digits": _digits, "synthetic": _synthetic, "idx": _idx, "sequences": _sequences}
    name = cfg["name"]
    if name not in loaders:
        raise DataError(f"Expected data.name in {DATASETS}. Received: data.name={name!r}")
    return loaders[name](cfg, seed)
