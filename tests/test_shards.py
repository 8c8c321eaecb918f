"""Sharded datasets: arena-data make (reuse, resume, repair, bad input), the shared epoch order, data=shards trials."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_arena, run_compare
from mlflow.tracking import MlflowClient

from framework_arena import shards
from framework_arena.data import DataError


def arena_data(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs ``arena-data`` as a user would; ``-m`` so it runs before the console script is (re)installed."""
    return subprocess.run([sys.executable, "-m", "framework_arena.shard_writer", *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


SMALL = ["make", "synthetic", "--rows", "3000", "--val-rows", "400", "--test-rows", "400", "--shard-rows", "700", "--quiet"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 training rows in shards of 700 (the last one 200): batches of 128 span shard boundaries."""
    out = tmp_path_factory.mktemp("shards") / "small"
    proc = arena_data(*SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _checksums(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    manifest = json.loads((root / shards.MANIFEST).read_text())
    return {split: [(s["x"], s["x_sha256"], s["y_sha256"]) for s in manifest["splits"][split]] for split in shards.SPLITS}


def test_make_writes_checked_shards_and_reuses_them(small: Path) -> None:
    manifest = shards.verify(small)
    assert manifest.sample_shape == (8, 8, 1) and manifest.num_classes == 10
    assert [manifest.rows(s) for s in shards.SPLITS] == [3000, 400, 400]
    assert [int(s["rows"]) for s in manifest.splits["train"]] == [700, 700, 700, 700, 200]
    x = np.load(small / "train-00000-x.npy", mmap_mode="r")
    assert x.dtype == np.float32 and x.shape == (700, 8, 8, 1) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    before = _checksums(small)
    again = arena_data(*SMALL, "--out", str(small))
    assert again.returncode == 0 and ": reused (" in again.stdout, again.stdout + again.stderr
    assert _checksums(small) == before
    other = arena_data(*SMALL[:3], "2999", *SMALL[4:], "--out", str(small))  # other arguments, same folder
    assert other.returncode == 2 and str(small / shards.MANIFEST) in other.stderr and "another dataset" in other.stderr


def test_interrupted_make_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    args = ["make", "synthetic", "--rows", "150000", "--shard-rows", "4096", "--quiet"]
    whole = arena_data(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "framework_arena.shard_writer", *args, "--out", str(out)], env=dict(os.environ))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = out / shards.PROGRESS
        try:
            done = len(json.loads(progress.read_text())["splits"]["train"]) if progress.exists() else 0
        except (ValueError, OSError):  # replaced while read
            done = 0
        if done >= 3:
            break
        assert proc.poll() is None, "arena-data finished before the test could interrupt it"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / shards.MANIFEST).exists(), "the make finished before it was killed: make the dataset larger"
    with pytest.raises(DataError, match="incomplete"):
        shards.read_manifest(out)
    resumed = arena_data(*args, "--out", str(out))
    assert resumed.returncode == 0 and ": resumed (" in resumed.stdout, resumed.stderr
    assert _checksums(out) == _checksums(tmp_path / "whole")
    assert not list(out.glob("*.tmp")) and not (out / shards.PROGRESS).exists()


def test_bad_shards_are_named_and_make_repairs_them(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert arena_data(*SMALL, "--out", str(out)).returncode == 0
    missing = arena_data("verify", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "does not exist" in missing.stderr

    truncated = out / "train-00001-x.npy"
    raw = truncated.read_bytes()
    truncated.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(DataError, match="train-00001-x.npy: truncated"):
        shards.read_manifest(out)

    truncated.write_bytes(raw)
    replaced = out / "train-00002-y.npy"
    labels = replaced.read_bytes()
    np.save(replaced, np.zeros(5, np.int64))  # a shard that disagrees with the manifest
    with pytest.raises(DataError, match=r"train-00002-y.npy: shard disagrees with manifest.json. Expected shape \(700,\)"):
        shards.read_manifest(out)
    replaced.write_bytes(labels)

    corrupted = out / "val-00000-x.npy"  # same size, one byte changed: only the checksum sees it
    data = bytearray(corrupted.read_bytes())
    data[-1] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    proc = arena_data("verify", str(out))
    assert proc.returncode == 2 and "val-00000-x.npy: checksum differs" in proc.stderr, proc.stderr

    repaired = arena_data(*SMALL, "--out", str(out))
    assert repaired.returncode == 0 and ": repaired (" in repaired.stdout, repaired.stderr
    shards.verify(out)


def test_npz_arrays_become_a_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((1000, 6, 5)).astype(np.float64), rng.integers(0, 3, 1000)
    x_test, y_test = rng.random((200, 6, 5)), rng.integers(0, 3, 200)
    np.savez_compressed(tmp_path / "mine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    proc = arena_data(
        "make", "npz", "--file", str(tmp_path / "mine.npz"), "--val-fraction", "0.2", "--shard-rows", "300", "--out", str(tmp_path / "ds"), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    ds = shards.load({"path": str(tmp_path / "ds")})
    assert ds.input_shape == (6, 5) and ds.num_classes == 3 and len(ds.train) == 800
    np.testing.assert_array_equal(ds.val.x, x_train[800:].astype(np.float32))  # validation: the last rows, as Keras' validation_split
    np.testing.assert_array_equal(ds.test.y, y_test)
    rows = ds.train.gather([(0, np.arange(300)), (1, np.arange(300)), (2, np.arange(200))])
    np.testing.assert_array_equal(rows[0], x_train[:800].astype(np.float32))

    np.savez(tmp_path / "bad.npz", x_train=x_train, y_train=y_train[:10], x_test=x_test, y_test=y_test)
    bad = arena_data("make", "npz", "--file", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "bad"), "--quiet")
    assert bad.returncode == 2 and "bad.npz: x_train (1000, 6, 5) and y_train (10,) disagree" in bad.stderr


def test_epoch_plan_reads_every_row_once_in_a_seeded_block_order(small: Path) -> None:
    split = shards.StreamedSplit(shards.read_manifest(small))
    epoch = split.batches(128, seed=0, epoch=0)
    assert len(epoch) == 24 and epoch.plan.sizes()[-1] == 3000 - 23 * 128
    y = np.concatenate([epoch[i][1] for i in range(len(epoch))])
    every = np.concatenate([np.load(small / s["y"]) for s in split.shards])
    assert np.array_equal(np.sort(y), np.sort(every))  # each row once
    assert any(len(epoch.plan.batch(i)) == 2 for i in range(len(epoch)))  # some batches span two shards
    again = split.batches(128, seed=0, epoch=0)
    assert all(np.array_equal(epoch[i][0], again[i][0]) for i in (0, 7, 23))
    assert not np.array_equal(epoch[0][1], split.batches(128, seed=0, epoch=1)[0][1])


def test_blocks_cut_into_batches_are_the_epoch_batches(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of 300 rows in shards of 700: blocks end inside shards and batches span blocks and
    # shards; 1,450 rows in batches of 100: each epoch ends on a batch of 50, which no batch crosses.
    monkeypatch.setattr(shards, "BLOCK_BYTES", 300 * 64 * 4)
    split = shards.StreamedSplit(shards.read_manifest(small), rows=1450)
    blocks = split.blocks(100, seed=3, epochs=[0, 1])
    assert max(blocks.table[:, 3]) == 300 and blocks.batch_sizes == [100] * 14 + [50]
    rows = [blocks.read(b) for b in blocks.table]
    y = np.concatenate([r[1] for r in rows])
    cuts = np.cumsum([0, *blocks.batch_sizes * 2])  # rebatch: the sizes cycle once per epoch
    cut = list(shards.rebatch(rows, blocks.batch_sizes * 2, np.concatenate))  # torch's and low-level TF's cutting
    assert [len(b[1]) for b in cut] == blocks.batch_sizes * 2
    for epoch in (0, 1):
        epoch_batches = split.batches(100, seed=3, epoch=epoch)
        for i in range(len(epoch_batches)):
            x_i, y_i = epoch_batches[i]  # read through kept blocks
            x_ref, y_ref = split.gather(epoch_batches.plan.batch(i))  # gathered row by row from the plan
            assert np.array_equal(x_i, x_ref) and np.array_equal(y_i, y_ref)
            k = epoch * 15 + i
            assert np.array_equal(y[cuts[k] : cuts[k + 1]], y_ref), (epoch, i)
            assert np.array_equal(cut[k][0], x_ref) and np.array_equal(cut[k][1], y_ref), (epoch, i)


def test_num_samples_trains_on_the_first_rows_and_is_resolved_from_the_manifest(small: Path) -> None:
    from conftest import compose

    from framework_arena.errors import ConfigError
    from framework_arena.trial import resolve_trial

    split = shards.StreamedSplit(shards.read_manifest(small), rows=1500)  # shards of 700: two whole, 100 of the third
    assert len(split) == 1500 and split.shard_rows == [700, 700, 100]
    epoch = split.batches(128, seed=0, epoch=0)
    y = np.concatenate([epoch[i][1] for i in range(len(epoch))])
    first = np.concatenate([np.load(small / f"train-0000{i}-y.npy") for i in range(3)])[:1500]
    assert np.array_equal(np.sort(y), np.sort(first))  # exactly the first 1,500 rows, each once
    every = resolve_trial(compose(["data=shards", f"data.path={small}"]))
    assert every.data["num_samples"] == 3000  # logged as the param data.num_samples: compare reads the size from the run
    assert resolve_trial(compose(["data=shards", f"data.path={small}", "data.num_samples=1500"])).data["num_samples"] == 1500
    with pytest.raises(ConfigError, match=r"Expected data.num_samples between 1 and the dataset's 3,000 training rows .* Received: data.num_samples=5000"):
        resolve_trial(compose(["data=shards", f"data.path={small}", "data.num_samples=5000"]))


def test_too_large_in_memory_data_is_refused_before_any_run(tmp_path: Path) -> None:
    proc = run_arena(["data=synthetic", "data.num_samples=100000000000"], tmp_path)
    output = proc.stdout + proc.stderr  # Hydra's log goes to stdout
    assert proc.returncode == 2, output[-2000:]
    assert "Expected data=synthetic to fit in memory: data.num_samples=100000000000 needs about 54,400,000,000,000 bytes" in output
    assert " bytes (" in output.split("are available")[0] and "arena data=shards data.path=DIR" in output
    assert not (tmp_path / "mlflow.db").exists()  # the store was not even opened: no run


def _runs(folder: Path) -> list:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("framework-arena").experiment_id], filter_string="tags.`arena.kind` = 'trial'")


def expected_order_crc(root: Path, batch_size: int, seed: int, epoch: int) -> float:
    epoch_batches = shards.StreamedSplit(shards.read_manifest(root)).batches(batch_size, seed, epoch)
    return shards.order_crc([shards.batch_signature(epoch_batches[i][1]) for i in range(len(epoch_batches))])


@pytest.mark.slow
def test_every_framework_trains_on_the_same_rows_in_the_same_order(small: Path, tmp_path: Path) -> None:
    overrides = [
        "data=shards",
        f"data.path={small}",
        "data.workers=2",
        "trainer.epochs=1",
        "trainer.batch_size=128",
        "trainer.warmup_steps=4",
        "tracking.log_model=false",
    ]
    proc = run_arena(["-m", "framework=torch,tensorflow,keras", "hydra/launcher=parallel", *overrides], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = _runs(tmp_path)
    assert sorted(r.data.tags["arena.framework"] for r in runs) == ["keras", "tensorflow", "torch"]
    expected = expected_order_crc(small, 128, seed=0, epoch=0)
    for run in runs:
        metrics = run.data.metrics
        assert metrics["input/order_crc"] == expected, run.data.tags["arena.framework"]
        assert metrics["val/accuracy"] > 0.9 and metrics["input/samples_per_s"] > 0
        assert run.data.tags["arena.input_bound"] in ("true", "false")
    assert expected != expected_order_crc(small, 128, seed=1, epoch=0)


@pytest.mark.slow
def test_streamed_memory_stays_flat_on_a_dataset_20_times_larger(tmp_path: Path) -> None:
    # 20,000 and 400,000 rows of 64 floats (5 MB and 102 MB): in memory, the larger would add twice
    # its size to the trial (x and its split copies), past the 1.25x allowed here. Shards of 2 MiB:
    # the trial keeps at most shards.OPEN_SHARDS of them mapped.
    for name, rows in (("small", "20000"), ("large", "400000")):
        args = ["--rows", rows, "--val-rows", "2000", "--test-rows", "2000", "--shard-rows", "8192", "--quiet", "--out", str(tmp_path / name)]
        proc = arena_data("make", "synthetic", *args)
        assert proc.returncode == 0, proc.stderr
    # data.workers=0: the trial's own process reads the shards, so its peak RSS holds the maps (workers' would not count).
    common = [
        "framework=torch",
        "data=shards",
        "data.workers=0",
        "trainer.epochs=1",
        "trainer.batch_size=1024",
        "trainer.warmup_steps=8",
        "tracking.log_model=false",
    ]
    proc = run_arena(["-m", *common, f"data.path={tmp_path / 'small'},{tmp_path / 'large'}"], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    by_size = {Path(r.data.params["data.path"]).name: r.data.metrics for r in _runs(tmp_path)}
    small, large = by_size["small"], by_size["large"]
    assert small["val/accuracy"] > 0.9 and large["val/accuracy"] > 0.9  # both learn
    assert large["memory/peak_rss_mb"] <= 1.25 * small["memory/peak_rss_mb"], (small["memory/peak_rss_mb"], large["memory/peak_rss_mb"])


@pytest.mark.slow
def test_scaling_sweep_gives_large_data_from_the_curve(small: Path, tmp_path: Path) -> None:
    # experiment=scaling on one sharded dataset: 2 frameworks x its first 1,500 and all 3,000 rows.
    # Two trials at a time: the test checks the curve's arithmetic, not the figures.
    sizes = ["framework=torch,tensorflow", "data.num_samples=1500,3000", "trainer.batch_size=128"]
    common = ["experiment=scaling", "data=shards", f"data.path={small}", "data.workers=0", "tracking.log_model=false", "hydra/launcher=parallel"]
    proc = run_arena([*common, *sizes], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("scaling").experiment_id
    trials = client.search_runs([exp], filter_string="tags.`arena.kind` = 'trial'")
    logged = sorted((r.data.tags["arena.framework"], r.data.params["data.num_samples"]) for r in trials)
    assert logged == [("tensorflow", "1500"), ("tensorflow", "3000"), ("torch", "1500"), ("torch", "3000")]
    assert all(r.data.metrics["val/accuracy"] > 0.9 and r.data.metrics["speed/samples_per_s"] > 0 for r in trials)

    # The shared machine may tag runs contended: keep them, this test checks the arithmetic's inputs.
    args = [f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "select.experiment=scaling", "select.include_contended=true", "report.run_name=scaling"]
    proc = run_compare([*args, f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [run] = client.search_runs([exp], "tags.`arena.kind` = 'comparison'")
    read = lambda name: list(csv.DictReader(io.StringIO(Path(client.download_artifacts(run.info.run_id, name, str(tmp_path))).read_text())))  # noqa: E731
    metrics = {(r.data.tags["arena.framework"], r.data.params["data.num_samples"]): r.data.metrics for r in trials}
    curve = {(r["framework"], r["size"]): r for r in read("scaling.csv")}
    assert sorted(curve) == sorted(metrics) and {r["size_key"] for r in curve.values()} == {"data.num_samples"}
    for key, point in curve.items():  # one run per point: its median is the run's own figure
        assert float(point["speed/samples_per_s"]) == pytest.approx(metrics[key]["speed/samples_per_s"])
        assert float(point["memory/peak_rss_mb"]) == pytest.approx(metrics[key]["memory/peak_rss_mb"])
    large = {r["framework"]: r for r in read("criteria.csv") if r["criterion"] == "large_data"}
    for framework, cell in large.items():
        assert float(cell["value"]) == pytest.approx(metrics[(framework, "3000")]["speed/samples_per_s"])
        speed = metrics[(framework, "3000")]["speed/samples_per_s"] / metrics[(framework, "1500")]["speed/samples_per_s"]
        assert "data.num_samples=3000" in cell["note"] and f"from 1,500 to 3,000, throughput x{speed:.2f}" in cell["note"]
        # Whether the streamed runs waited on input, from the trial at the largest size (one run: its own figures).
        at_largest = [r for r in trials if (r.data.tags["arena.framework"], r.data.params["data.num_samples"]) == (framework, "3000")]
        share, tag = at_largest[0].data.metrics["input/share"], at_largest[0].data.tags["arena.input_bound"]
        verdict = "input-bound in 1 of 1 runs" if tag == "true" else "not input-bound (0 of 1 runs)"
        assert f"streamed input: {verdict}; training ran at {share:.0%} of the input pipeline's own throughput" in cell["note"], cell["note"]
    assert "scaling.png" in {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
