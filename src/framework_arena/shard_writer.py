"""``arena-data``: writes a sharded dataset (``shards.py``) chunk by chunk, in constant memory.

    arena-data make synthetic --rows 20000000 --out data/synth-20m
    arena-data make digits --out data/digits
    arena-data make idx --path ~/data/fashion-mnist --out data/fashion
    arena-data make npz --file my_arrays.npz --out data/mine
    arena-data verify data/synth-20m

Every shard is a pure function of the arguments, written to a temporary name and renamed once
whole, and recorded with its sha256 in ``progress.json``. So running the same command again
reuses a complete dataset (after checking every checksum), and finishes an interrupted one,
rewriting only the shards that are missing or whose bytes differ: the result is identical to an
uninterrupted make. A folder holding a different dataset is never overwritten.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import struct
import sys
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from framework_arena import data as data_lib
from framework_arena.data import DataError
from framework_arena.shards import FORMAT, MANIFEST, PROGRESS, SPLITS, VERSION, X_DTYPE, Y_DTYPE, file_sha256, read_manifest, shard_names, verify

#: Rows generated or read at a time: the writer's memory is a few chunks, whatever the dataset's size.
CHUNK_ROWS = 4096
#: Default shard size in bytes of ``x`` (the row count follows from the sample shape). A trial keeps
#: ``shards.OPEN_SHARDS`` shards mapped: 4 x 32 MiB bounds what streaming adds to its resident memory.
SHARD_BYTES = 32 * 2**20

Reader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]  # rows [start, stop) -> (x float32, y int64)


class Source:
    """What to write: per split, its row count and a reader of any row range; the sample shape and classes.

    ``describe`` is stored in the manifest: running make again with the same description reuses
    or repairs the folder.
    """

    def __init__(self, describe: Mapping[str, Any], sample_shape: Sequence[int], num_classes: int, splits: Mapping[str, tuple[int, Reader]]) -> None:
        self.describe = dict(describe)
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.num_classes = int(num_classes)
        self.splits = dict(splits)


def synthetic(rows: int, val_rows: int, test_rows: int, shape: Sequence[int], num_classes: int, noise: float, seed: int) -> Source:
    """Class prototypes plus noise, as ``data=synthetic``; each 4096-row chunk from its own seed."""
    shape = tuple(shape)
    prototypes = np.random.default_rng([seed, 32452843]).uniform(0.0, 1.0, size=(num_classes, *shape)).astype(np.float32)

    def reader(split_index: int) -> Reader:
        def read(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = [], []
            for chunk in range(start // CHUNK_ROWS, (stop - 1) // CHUNK_ROWS + 1):
                rng = np.random.default_rng([seed, split_index, chunk, 49979687])
                y = rng.integers(0, num_classes, size=CHUNK_ROWS).astype(np.int64)
                x = np.clip(prototypes[y] + rng.normal(0.0, noise, size=(CHUNK_ROWS, *shape)).astype(np.float32), 0.0, 1.0)
                lo, hi = max(start - chunk * CHUNK_ROWS, 0), min(stop - chunk * CHUNK_ROWS, CHUNK_ROWS)
                xs.append(x[lo:hi])
                ys.append(y[lo:hi])
            return np.concatenate(xs), np.concatenate(ys)

        return read

    describe = {
        "kind": "synthetic",
        "rows": rows,
        "val_rows": val_rows,
        "test_rows": test_rows,
        "shape": list(shape),
        "classes": num_classes,
        "noise": noise,
        "seed": seed,
    }
    return Source(describe, shape, num_classes, {"train": (rows, reader(0)), "val": (val_rows, reader(1)), "test": (test_rows, reader(2))})


def _arrays(split: data_lib.Split) -> tuple[int, Reader]:
    return len(split), lambda a, b: (split.x[a:b], split.y[a:b])


def digits(seed: int) -> Source:
    """scikit-learn's digits with ``data=digits``' stratified split (small: read in memory)."""
    ds = data_lib.load({"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15}, seed)
    return Source({"kind": "digits", "seed": seed}, ds.input_shape, ds.num_classes, {s: _arrays(getattr(ds, s)) for s in SPLITS})


class _RowFile:
    """Rows of one array stored after a header in a (possibly compressed) stream, read by range."""

    def __init__(self, opener: Callable[[], IO[bytes]], offset: int, shape: Sequence[int], dtype: np.dtype, name: str) -> None:
        self.opener, self.offset, self.shape, self.dtype, self.name = opener, offset, tuple(shape), np.dtype(dtype), name
        self.row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        self.stream: IO[bytes] | None = None

    def read(self, start: int, stop: int) -> np.ndarray:
        if self.stream is None:
            self.stream = self.opener()
        self.stream.seek(self.offset + start * self.row_bytes)  # forward seeks on gzip/zip streams only read on
        raw = self.stream.read((stop - start) * self.row_bytes)
        if len(raw) != (stop - start) * self.row_bytes:
            raise DataError(f"{self.name}: ends before row {stop} of the {self.shape[0]} its header announces")
        return np.frombuffer(raw, self.dtype).reshape(stop - start, *self.shape[1:])


def _idx_file(path: Path) -> _RowFile:
    opener = (lambda: gzip.open(path, "rb")) if path.suffix == ".gz" else (lambda: open(path, "rb"))
    with opener() as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08":
            raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number {head!r})")
        dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]))
    return _RowFile(opener, 4 + 4 * len(dims), dims, np.dtype(np.uint8), str(path))


def _split_rows(train_rows: int, val_fraction: float) -> tuple[int, int]:
    """Validation is the last ``val_fraction`` of the training rows, as Keras' ``validation_split``."""
    val = int(round(train_rows * val_fraction))
    return train_rows - val, val


def idx(path: str, val_fraction: float) -> Source:
    """MNIST-style IDX files, streamed: the t10k files are the test set; validation is the last rows of the training files."""
    root = data_lib.check_idx_path(path)
    find = lambda stem: next(p for p in (root / stem, root / f"{stem}.gz") if p.is_file())  # noqa: E731 - check_idx_path found them
    files = {
        split: (_idx_file(find(f"{stem}-images-idx3-ubyte")), _idx_file(find(f"{stem}-labels-idx1-ubyte")))
        for split, stem in (("train", "train"), ("test", "t10k"))
    }
    for images, labels in files.values():
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{images.name} holds {images.shape[0]} images but {labels.name} {labels.shape[0]} labels")
    num_classes = int(max(_max_label(labels) for _, labels in files.values())) + 1

    def reader(split: str, first: int) -> Reader:
        images, labels = files[split]
        return lambda a, b: ((images.read(first + a, first + b).astype(np.float32) / 255.0)[..., None], labels.read(first + a, first + b).astype(np.int64))

    train, val = _split_rows(files["train"][0].shape[0], val_fraction)
    splits = {"train": (train, reader("train", 0)), "val": (val, reader("train", train)), "test": (files["test"][0].shape[0], reader("test", 0))}
    describe = {
        "kind": "idx",
        "path": str(root.resolve()),
        "val_fraction": val_fraction,
        "files": _fingerprint(p for pair in files.values() for p in (pair[0].name, pair[1].name)),
    }
    return Source(describe, (*files["train"][0].shape[1:], 1), num_classes, splits)


def _max_label(labels: _RowFile) -> int:
    return max((int(labels.read(a, min(a + 65536, labels.shape[0])).max()) for a in range(0, labels.shape[0], 65536)), default=0)


def _fingerprint(paths: Iterator[str]) -> list[list[Any]]:
    """Name, size and modification time of the input files: a changed input is a different dataset."""
    return [[str(p), os.stat(p).st_size, int(os.stat(p).st_mtime)] for p in paths]


def _npz_member(path: Path, key: str) -> _RowFile:
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if fortran:
        raise DataError(f"{path}: {key} is Fortran-ordered. Expected C order: save np.ascontiguousarray({key})")
    if dtype.hasobject or not shape:
        raise DataError(f"{path}: {key} must be a numeric array with a row axis. Received: dtype {dtype}, shape {shape}")

    def opener() -> IO[bytes]:
        return zipfile.ZipFile(path).open(f"{key}.npy")

    return _RowFile(opener, offset, shape, dtype, f"{path}:{key}")


def npz(file: str, val_fraction: float, num_classes: int | None) -> Source:
    """A user's arrays: ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally ``x_val``, ``y_val``.

    ``x`` is stored as float32 as given (scale it before saving); ``y`` holds class indices. Without
    ``x_val`` the validation split is the last ``val_fraction`` of the training rows. Read member by
    member, chunk by chunk: ``np.savez`` and ``np.savez_compressed`` files both work.
    """
    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"--file={file!r} does not exist. Expected an .npz file with x_train, y_train, x_test, y_test (and optionally x_val, y_val)")
    try:
        names = {n[: -len(".npy")] for n in zipfile.ZipFile(path).namelist()}
    except zipfile.BadZipFile:
        raise DataError(f"{path} is not an .npz file (not a zip archive)") from None
    required = {"x_train", "y_train", "x_test", "y_test"}
    if not required <= names:
        raise DataError(f"{path}: expected the arrays {sorted(required)} (and optionally x_val, y_val). Received: {sorted(names)}")
    keys = ("train", "test", "val") if {"x_val", "y_val"} <= names else ("train", "test")
    members = {split: (_npz_member(path, f"x_{split}"), _npz_member(path, f"y_{split}")) for split in keys}
    shape = members["train"][0].shape[1:]
    for split, (x, y) in members.items():
        if x.shape[0] != y.shape[0] or x.shape[1:] != shape or len(y.shape) != 1:
            raise DataError(
                f"{path}: x_{split} {x.shape} and y_{split} {y.shape} disagree. Expected y_{split} of shape ({x.shape[0]},) and rows of shape {shape}"
            )
        if y.dtype.kind not in "iu":
            raise DataError(f"{path}: y_{split} must hold integer class indices. Received: dtype {y.dtype}")
    top = max(_max_label(y) for _, y in members.values())
    classes = num_classes or top + 1
    if top >= classes:
        raise DataError(f"{path}: labels go up to {top}. Expected labels < --num-classes={classes}")

    def reader(split: str, first: int) -> Reader:
        x, y = members[split]
        return lambda a, b: (x.read(first + a, first + b).astype(np.float32), y.read(first + a, first + b).astype(np.int64))

    if "val" in members:
        splits = {s: (members[s][0].shape[0], reader(s, 0)) for s in SPLITS}
    else:
        train, val = _split_rows(members["train"][0].shape[0], val_fraction)
        splits = {"train": (train, reader("train", 0)), "val": (val, reader("train", train)), "test": (members["test"][0].shape[0], reader("test", 0))}
    describe = {
        "kind": "npz",
        "file": str(path.resolve()),
        "val_fraction": val_fraction if "val" not in members else None,
        "classes": classes,
        "files": _fingerprint(iter([str(path)])),
    }
    return Source(describe, shape, classes, splits)


def _atomic_json(path: Path, content: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=1))
    os.replace(tmp, path)


def _done(root: Path, entry: Mapping[str, Any] | None, shard: Mapping[str, Any]) -> bool:
    """Whether a recorded shard is on disk with the bytes recorded for it."""
    if entry is None or entry.get("rows") != shard["rows"]:
        return False
    return all((root / entry[p]).is_file() and file_sha256(root / entry[p]) == entry[f"{p}_sha256"] for p in ("x", "y"))


def make(source: Source, out: str | Path, shard_rows: int | None = None, progress: bool = True) -> tuple[Path, str]:
    """Writes (or reuses, or repairs) the sharded dataset of ``source`` in ``out``.

    Args:
        source: what to write.
        out: the folder; created if missing.
        shard_rows: rows per shard; default: about 32 MiB of ``x`` per shard.
        progress: show a progress bar over the rows (on stderr).

    Returns:
        The folder, and ``made``, ``resumed``, ``reused`` or ``repaired``.

    Raises:
        DataError: ``out`` holds something else than this dataset.
    """
    root = Path(out).expanduser()
    row_bytes = math.prod(source.sample_shape) * X_DTYPE.itemsize
    shard_rows = int(shard_rows or max(1, SHARD_BYTES // row_bytes))
    describe = {**source.describe, "rows_per_shard": shard_rows}
    previous: Mapping[str, Any] | None = None
    for name in (MANIFEST, PROGRESS):
        if (root / name).is_file():
            previous = json.loads((root / name).read_text())
            if previous.get("source") != describe:
                raise DataError(
                    f"{root / name}: this folder holds another dataset (made from {previous.get('source')}). "
                    f"Received: {describe}. Choose another --out, or delete the folder to replace it"
                )
            state = "reused" if name == MANIFEST else "resumed"
            break
    else:
        if root.exists() and any(root.iterdir()):
            raise DataError(f"--out={str(out)!r} is a folder that is not empty and holds no {MANIFEST} or {PROGRESS}: choose an empty or new folder")
        root.mkdir(parents=True, exist_ok=True)
        state = "made"
    recorded = {s: {e["x"]: e for e in previous["splits"].get(s, [])} for s in SPLITS} if previous else {s: {} for s in SPLITS}
    content: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "source": describe,
        "sample_shape": list(source.sample_shape),
        "x_dtype": X_DTYPE.str,
        "y_dtype": Y_DTYPE.str,
        "num_classes": source.num_classes,
        "rows_per_shard": shard_rows,
        "splits": {s: [] for s in SPLITS},
    }
    total = sum(rows for rows, _ in source.splits.values())
    rewritten = 0
    with tqdm(total=total, unit="rows", unit_scale=True, desc=f"arena-data {root.name}", disable=not progress, file=sys.stderr) as bar:
        for split in SPLITS:
            rows, read = source.splits[split]
            for index in range(math.ceil(rows / shard_rows)):
                start, stop = index * shard_rows, min((index + 1) * shard_rows, rows)
                x_name, y_name = shard_names(split, index)
                shard = {"x": x_name, "y": y_name, "rows": stop - start}
                entry = recorded[split].get(x_name)
                if _done(root, entry, shard):
                    shard = dict(entry)  # type: ignore[arg-type]
                else:
                    rewritten += 1
                    shard["x_sha256"], shard["y_sha256"] = _write_pair(root, x_name, y_name, (stop - start, *source.sample_shape), read, start, stop)
                content["splits"][split].append(shard)
                _atomic_json(root / PROGRESS, content)
                bar.update(stop - start)
    _atomic_json(root / MANIFEST, content)
    (root / PROGRESS).unlink()
    for leftover in root.glob("*.tmp"):  # a shard an interrupted make was writing
        leftover.unlink()
    if state == "reused" and rewritten:
        state = "repaired"
    read_manifest(root, key="--out")
    return root, state


def _write_pair(root: Path, x_name: str, y_name: str, shape: tuple[int, ...], read: Reader, start: int, stop: int) -> tuple[str, str]:
    """Writes one shard's ``x`` and ``y`` files a chunk at a time, under temporary names renamed once whole.

    Returns:
        The sha256 of each file's bytes (header included), as :func:`shards.verify` reads them.
    """
    paths = (root / x_name, root / y_name)
    tmps = [p.with_name(p.name + ".tmp") for p in paths]
    with open(tmps[0], "wb") as fx, open(tmps[1], "wb") as fy:
        for f, dtype, dims in ((fx, X_DTYPE, shape), (fy, Y_DTYPE, shape[:1])):
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": dims})
        for a in range(start, stop, CHUNK_ROWS):
            x, y = read(a, min(a + CHUNK_ROWS, stop))
            fx.write(np.ascontiguousarray(x, X_DTYPE).tobytes())
            fy.write(np.ascontiguousarray(y, Y_DTYPE).tobytes())
    checksums = (file_sha256(tmps[0]), file_sha256(tmps[1]))
    for tmp, path in zip(tmps, paths):
        os.replace(tmp, path)
    return checksums


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arena-data", description="Sharded datasets for data=shards: make one, or verify its checksums.")
    commands = parser.add_subparsers(dest="command", required=True)
    mk = commands.add_parser("make", help="write a sharded dataset (reuses a complete one, finishes an interrupted one)")
    kinds = mk.add_subparsers(dest="kind", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="the dataset's folder (then: arena data=shards data.path=DIR)")
    common.add_argument("--shard-rows", type=int, default=None, help="rows per shard (default: about 32 MiB of x per shard)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    syn = kinds.add_parser("synthetic", parents=[common], help="class prototypes plus noise, from a seed (as data=synthetic)")
    syn.add_argument("--rows", type=int, required=True, help="training rows")
    syn.add_argument("--val-rows", type=int, default=None, help="validation rows (default: 15%% of --rows, at most 10,000: read in memory)")
    syn.add_argument("--test-rows", type=int, default=None, help="test rows (default as --val-rows)")
    syn.add_argument("--shape", type=int, nargs="+", default=[8, 8, 1], help="sample shape: H W C or STEPS FEATURES")
    syn.add_argument("--classes", type=int, default=10)
    syn.add_argument("--noise", type=float, default=0.3)
    syn.add_argument("--seed", type=int, default=0)
    dig = kinds.add_parser("digits", parents=[common], help="scikit-learn's digits, split as data=digits")
    dig.add_argument("--seed", type=int, default=0, help="the split seed")
    ix = kinds.add_parser("idx", parents=[common], help="MNIST / Fashion-MNIST IDX files from a folder")
    ix.add_argument("--path", required=True)
    ix.add_argument("--val-fraction", type=float, default=0.1, help="the last rows of the training files kept for validation")
    nz = kinds.add_parser("npz", parents=[common], help="your own arrays: x_train, y_train, x_test, y_test [, x_val, y_val]")
    nz.add_argument("--file", required=True)
    nz.add_argument("--val-fraction", type=float, default=0.1, help="without x_val: the last rows of x_train kept for validation")
    nz.add_argument("--num-classes", type=int, default=None, help="default: the largest label + 1")
    ver = commands.add_parser("verify", help="check every shard against the manifest's checksums")
    ver.add_argument("path")
    return parser


def _source(args: argparse.Namespace) -> Source:
    if args.kind == "synthetic":
        problems = []
        if args.rows < 1:
            problems.append(f"Expected --rows >= 1. Received: --rows={args.rows}")
        if args.classes < 2:
            problems.append(f"Expected --classes >= 2. Received: --classes={args.classes}")
        if not 2 <= len(args.shape) <= 3 or min(args.shape) < 1:
            problems.append(f"Expected --shape H W C or STEPS FEATURES of integers >= 1. Received: --shape {args.shape}")
        if problems:
            raise DataError("; ".join(problems))
        default_eval = min(int(round(args.rows * 0.15)), 10_000)
        val = default_eval if args.val_rows is None else args.val_rows
        test = default_eval if args.test_rows is None else args.test_rows
        return synthetic(args.rows, val, test, args.shape, args.classes, args.noise, args.seed)
    if args.kind == "digits":
        return digits(args.seed)
    if args.kind == "idx":
        return idx(args.path, args.val_fraction)
    return npz(args.file, args.val_fraction, args.num_classes)


def main(argv: Sequence[str] | None = None) -> None:
    """``arena-data``: exits 0 when done, 2 with a message naming the file or option on bad input."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "verify":
            manifest = verify(args.path)
            print(f"{manifest.root}: {sum(len(v) for v in manifest.splits.values())} shards, checksums match")
            return
        if args.shard_rows is not None and args.shard_rows < 1:
            raise DataError(f"Expected --shard-rows >= 1. Received: --shard-rows={args.shard_rows}")
        root, state = make(_source(args), args.out, args.shard_rows, progress=not args.quiet)
    except DataError as e:
        print(f"arena-data: error: {e}", file=sys.stderr)
        sys.exit(2)
    manifest = read_manifest(root, key="--out")
    rows = ", ".join(f"{s} {manifest.rows(s):,}" for s in SPLITS)
    print(f"{root}: {state} ({rows} rows of {list(manifest.sample_shape)}, {manifest.num_classes} classes). Train on it: arena data=shards data.path={root}")


if __name__ == "__main__":
    main()
