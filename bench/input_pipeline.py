"""Streaming from shards against in-memory arrays: does a framework's input pipeline keep up?

    python bench/input_pipeline.py --quick   # < 5 min on 2 cores; writes bench/results/input_pipeline-quick.md
    python bench/input_pipeline.py           # more rounds and rows; bench/results/input_pipeline.md
    python bench/input_pipeline.py --smoke   # seconds of work: checks the script itself (tests)

Per framework (torch, tensorflow, keras on tensorflow), the default MLP at batch 256 on a
synthetic 8x8x1 dataset written once by ``arena-data make`` (shards of ``--shard-rows`` rows):

- ``stream_ratio``: the median over rounds of the streamed epoch's ``speed/epoch_samples_per_s``
  (``data=shards``: the trial's ``_fit_streamed`` through the framework's own pipeline, a torch
  ``DataLoader`` of blocks, ``tf.data`` for TensorFlow and Keras on tensorflow, with
  ``data.workers`` workers) / the same trainer settings' epoch on the same rows in memory, in
  the same round (``_input_worker.py``:
  one epoch each, back to back, the order flipped every round), with ``ci90`` (5th-95th
  percentiles over 1000 bootstrap resamples of the rounds). Target >= 0.9.
- ``input_samples_per_s``: the pipeline alone, no model (``Trainer.measure_input``, as a
  streamed trial logs it), and ``input_share`` = streamed training / that: at
  ``child.INPUT_BOUND_SHARE`` (0.8) or more the trial tags itself ``arena.input_bound=true``.
  ``input_ceiling`` = the pipeline alone / in-memory training: what streaming could reach at
  most. Below the target, the report says by how much, and whether the pipeline was the limit
  (input-bound: a ceiling below the target, or the trial's own tag) or the loop around it.

Ends with one JSON line per figure; the results file records them with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, compose_trial, machine, med, python, run_json, write_results  # noqa: E402

from framework_arena.child import INPUT_BOUND_SHARE, environment  # noqa: E402

PROFILES = {
    # rows: training rows (rows / 256 steps per epoch); rounds: epochs per variant.
    "smoke": {"rows": 2560, "rounds": 2, "warmup_steps": 2},
    "quick": {"rows": 25600, "rounds": 16, "warmup_steps": 5},
    "full": {"rows": 102400, "rounds": 40, "warmup_steps": 10},
}
MODEL = {"name": "mlp", "hidden": [128, 64], "activation": "relu", "dropout": 0.1, "init": "glorot_uniform"}
FRAMEWORKS = {"torch": None, "tensorflow": None, "keras": "tensorflow"}
TARGET = 0.9


def make_dataset(rows: int, shard_rows: int, folder: Path) -> Path:
    """The benchmark's dataset, written by ``arena-data make`` as a user would."""
    out = folder / f"synthetic-{rows}"
    cmd = [python(), "-m", "framework_arena.shard_writer", "make", "synthetic", "--rows", str(rows), "--val-rows", "1000", "--test-rows", "1000"]
    subprocess.run([*cmd, "--shard-rows", str(shard_rows), "--quiet", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def measure(framework: str, path: Path, threads: int, workers: int, profile: dict[str, Any]) -> dict[str, Any]:
    backend = [f"framework.backend={FRAMEWORKS[framework]}"] if FRAMEWORKS[framework] else []
    trial = compose_trial([f"framework={framework}", *backend, "tracking=none", f"trainer.threads={threads}", "trainer.device=cpu"])
    params = {
        "framework": framework,
        "backend": FRAMEWORKS[framework],
        "path": str(path),
        "threads": threads,
        "workers": workers,
        "model": MODEL,
        "batch_size": 256,
        "rounds": profile["rounds"],
        "warmup_steps": profile["warmup_steps"],
    }
    return run_json([python(), str(Path(__file__).with_name("_input_worker.py")), json.dumps(params)], environment(trial, os.environ), timeout=1800)


def _ratio(rounds: list[dict[str, Any]]) -> float:
    # Paired: the two epochs of a round ran back to back, under the same load.
    return med(r["streamed"]["samples_per_s"] / r["in_memory"]["samples_per_s"] for r in rounds)


def _ci90(rounds: list[dict[str, Any]], figure: Callable[[list[dict[str, Any]]], float], seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    values = sorted(figure(rng.choices(rounds, k=len(rounds))) for _ in range(1000))
    return [round(values[50], 4), round(values[949], 4)]


def figures(out: dict[str, Any]) -> list[dict[str, Any]]:
    rounds, fw = out["rounds"], out["framework"]
    streamed = med(r["streamed"]["samples_per_s"] for r in rounds)
    share = streamed / out["input_samples_per_s"] if out["input_samples_per_s"] > 0 else float("nan")
    rows = [
        ("stream_ratio", _ratio(rounds), "ratio", f">= {TARGET}", _ci90(rounds, _ratio)),
        ("streamed_samples_per_s", streamed, "samples/s", None, None),
        ("in_memory_samples_per_s", med(r["in_memory"]["samples_per_s"] for r in rounds), "samples/s", None, None),
        ("input_samples_per_s", out["input_samples_per_s"], "samples/s", None, None),
        ("input_share", share, "ratio", None, None),
        # What streaming could reach at most: the pipeline alone / in-memory training.
        ("input_ceiling", out["input_samples_per_s"] / med(r["in_memory"]["samples_per_s"] for r in rounds), "ratio", None, None),
    ]
    return [
        {
            "figure": name,
            "framework": fw,
            "value": round(v, 4),
            "unit": unit,
            **({"target": t} if t else {}),
            **({"ci90": ci} if ci else {}),
            "rounds": len(rounds),
        }
        for name, v, unit, t, ci in rows
    ]


def verdict(f: dict[str, dict[str, Any]]) -> str:
    """On target, or how far below and why: the input pipeline's ceiling or the streamed loop's cost."""
    ratio, share, ceiling = f["stream_ratio"]["value"], f["input_share"]["value"], f["input_ceiling"]["value"]
    if ratio >= TARGET:
        return "on target"
    if ceiling < TARGET or share >= INPUT_BOUND_SHARE:
        why = f"input-bound: the pipeline alone delivers {ceiling:.2f}x the in-memory training rate"
        if share >= INPUT_BOUND_SHARE:
            why += f", and training reached {share:.0%} of it (arena.input_bound=true)"
        return f"{1 - ratio:.0%} slower streamed; {why}"
    return f"{1 - ratio:.0%} slower streamed; not input-bound (the pipeline alone delivers {ceiling:.2f}x): the workers and the loop share the cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="under 5 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true", help="a few seconds of work per framework: checks the script")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of torch,tensorflow,keras")
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads (default 1: steadier on a shared machine)")
    ap.add_argument("--workers", type=int, default=0, help="data.workers of the streamed trainer (the default of data=shards)")
    ap.add_argument("--shard-rows", type=int, default=4096, help="rows per shard (epochs cross several shards)")
    ap.add_argument("--out", type=Path, help="the Markdown results file (default bench/results/input_pipeline[-quick].md)")
    args = ap.parse_args()
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = PROFILES[name]
    for fw in args.frameworks.split(","):
        if fw not in FRAMEWORKS:
            sys.exit(f"Expected --frameworks from {list(FRAMEWORKS)}. Received: {fw!r}")
    out_path = args.out or RESULTS / f"input_pipeline{'' if name == 'full' else '-' + name}.md"
    mach = machine()
    t0 = time.perf_counter()
    results, figs = [], []
    with tempfile.TemporaryDirectory(prefix="arena-input-bench-") as folder:
        path = make_dataset(profile["rows"], args.shard_rows, Path(folder))
        for fw in args.frameworks.split(","):
            print(f"== {fw}: {profile['rounds']} rounds of a streamed and an in-memory epoch", file=sys.stderr, flush=True)
            results.append(measure(fw, path, args.threads, args.workers, profile))
            figs += figures(results[-1])
    load_end = os.getloadavg()
    table = [
        "| framework | stream_ratio [90% CI] | streamed / in memory samples/s | input alone samples/s | input_share | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for out in results:
        f = {x["figure"]: x for x in figs if x["framework"] == out["framework"]}
        lo, hi = f["stream_ratio"]["ci90"]
        table.append(
            f"| {out['framework']} | {f['stream_ratio']['value']:.3f} [{lo:.3f}-{hi:.3f}] | {f['streamed_samples_per_s']['value']:,.0f} / "
            f"{f['in_memory_samples_per_s']['value']:,.0f} | {f['input_samples_per_s']['value']:,.0f} | {f['input_share']['value']:.2f} | {verdict(f)} |"
        )
    setup = (
        f"mode `{name}`: synthetic 8x8x1, {profile['rows']:,} training rows in shards of {args.shard_rows:,}, mlp {MODEL['hidden']}, batch 256, "
        f"trainer.threads={args.threads}, data.workers={args.workers}; {profile['rounds']} rounds of one epoch per variant, order flipped every round, "
        f"first {profile['warmup_steps']} steps of each epoch untimed. Target stream_ratio >= {TARGET}. Took {time.perf_counter() - t0:.0f} s."
    )
    print("\n" + "\n".join(table) + "\n" + setup)
    raw = ["", "## Raw rounds", "", *(f"- {o['framework']}: " + json.dumps(o["rounds"]) for o in results)]
    command = " ".join(["python bench/input_pipeline.py", *sys.argv[1:]])
    write_results(out_path, "Input pipeline: streamed from shards / in memory", command, mach, ["## Results", "", setup, "", *table, *raw], figs, load_end)
    print(f"results: {out_path}")
    for f in figs:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
