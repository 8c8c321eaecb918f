"""Datasets: deterministic stratified splits, synthetic data of any size, IDX files from disk."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from framework_arena import data

DIGITS = {"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}


def test_digits_split_is_deterministic_stratified_and_disjoint() -> None:
    a, b, other = data.load(DIGITS, 0), data.load(DIGITS, 0), data.load(DIGITS, 1)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.y, other.train.y)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.input_shape == (8, 8, 1) and a.train.x.dtype == np.float32 and a.train.x.max() <= 1.0
    for split in (a.val, a.test):  # every class keeps about its share
        counts = np.bincount(split.y, minlength=10)
        assert counts.min() >= 20
    rows = {r.tobytes() for r in a.train.x} & {r.tobytes() for r in a.test.x}
    assert len(rows) <= 2  # the digits set holds a couple of duplicated images, nothing more


def test_epoch_order_is_a_seeded_permutation() -> None:
    o1, o2 = data.epoch_order(100, 0, 0), data.epoch_order(100, 0, 0)
    assert np.array_equal(o1, o2) and sorted(o1) == list(range(100))
    assert not np.array_equal(o1, data.epoch_order(100, 0, 1))
    sizes = [len(b) for b in data.batches(o1, 32)]
    assert sizes == [32, 32, 32, 4] and data.num_batches(100, 32) == 4


def test_synthetic_images_and_sequences() -> None:
    cfg = {"name": "synthetic", "shape": [6, 5], "num_samples": 500, "num_classes": 4, "noise": 0.1, "val_fraction": 0.2, "test_fraction": 0.2}
    ds = data.load(cfg, 3)
    assert ds.input_shape == (6, 5) and ds.num_classes == 4
    assert len(ds.train) + len(ds.val) + len(ds.test) == 500
    assert np.array_equal(ds.train.x, data.load(cfg, 3).train.x)


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_is_read(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (200, 28, 28)), compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(200) % 10, compress)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (50, 28, 28)), compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.arange(50) % 10, compress)
    ds = data.load({"name": "idx", "path": str(tmp_path), "limit": None, "val_fraction": 0.1}, 0)
    assert ds.input_shape == (28, 28, 1) and len(ds.test) == 50 and len(ds.train) + len(ds.val) == 200
    assert ds.num_classes == 10


def test_idx_missing_path_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="does not exist"):
        data.check_idx_path(str(tmp_path / "nope"))
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
        data.check_idx_path(str(tmp_path))


def test_digits_read_from_the_bundled_file_equal_scikit_learns_loader() -> None:
    from sklearn.datasets import load_digits

    from framework_arena.data import digits_arrays

    images, target = digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)
