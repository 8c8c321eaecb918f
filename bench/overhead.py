"""What the harness and the tracking cost: arena against bare loops, tracked against untracked.

    python bench/overhead.py --quick      # < 5 min on 2 cores; writes bench/results/overhead-quick.md
    python bench/overhead.py              # more rounds and data; bench/results/overhead.md
    python bench/overhead.py --smoke      # seconds of work: checks the script itself (tests)

Figures, per framework (each a median over alternating rounds; see ``_worker.py``):

1. ``harness_ratio``: the arena trainer's reported ``train_samples_per_s`` / a minimal
   hand-written loop's samples/s (``_bare.py``): same model, initial weights, data, batch size
   and threads, warm-up steps left out of both. Target >= 0.97.
2. ``tracking_ratio``: ``fit_time_s`` with ``tracking=local`` (a SQLite store, per-epoch metrics
   and ``log_every_n_steps`` per-step metrics) / ``fit_time_s`` untracked; ``fit_time_s`` covers
   the training steps, validation and the logging calls. Target <= 1.03. Being a ratio of two
   noisy wall times, it is complemented by ``tracking_in_loop_ms_per_epoch``, the time measured
   inside the tracked callbacks during ``fit`` (building metrics, queueing MLflow's asynchronous
   request), and ``tracking_in_loop_ratio`` = (untracked fit + that time) / untracked fit.
   ``autolog_ratio`` (Keras): our tracked ``fit_time_s`` / the same ``fit`` under
   ``mlflow.keras.autolog(log_every_n_steps=...)``.
3. ``trial_start_s``: spawning the trial's child process until it has imported the framework,
   loaded the data, set up and built the model (its ``begin`` message), against
   ``bare_import_s``: ``python -c "import <framework>"`` in the same environment.

Ends with one JSON line per figure; the results file records them with the machine's description
and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, machine, med, python, run_json, write_results  # noqa: E402

from framework_arena.child import environment  # noqa: E402

PROFILES = {
    # num_samples: synthetic 16x16 images, 85% of them trained on; rounds: alternating rounds.
    "smoke": {"num_samples": 2000, "rounds": 1, "start_pairs": 1, "warmup_steps": 2, "log_every_n_steps": 5},
    "quick": {"num_samples": 40000, "rounds": 9, "start_pairs": 2, "warmup_steps": 5, "log_every_n_steps": 10},
    "full": {"num_samples": 60000, "rounds": 25, "start_pairs": 5, "warmup_steps": 5, "log_every_n_steps": 10},
}
MODEL = {"name": "mlp", "hidden": [128, 64], "activation": "relu", "dropout": 0.1, "init": "glorot_uniform"}
FRAMEWORKS = {"torch": None, "tensorflow": None, "keras": "tensorflow"}
IMPORT = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras"}


def trial_cfg(framework: str, threads: int, epochs: int = 1) -> dict[str, Any]:
    return {
        "framework": {"name": framework, "backend": FRAMEWORKS[framework], "compile": False},
        "model": MODEL,
        "data": {"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0},
        "optim": {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7},
        "trainer": {"epochs": epochs, "batch_size": 64, "seed": 0, "threads": threads, "device": "cpu"},
        "tracking": {"name": "none", "log_model": False},
    }


def trial_start_s(framework: str, threads: int) -> float:
    """Seconds from spawning ``python -m framework_arena.child`` to its ``begin`` message."""
    cfg = trial_cfg(framework, threads)
    start = time.perf_counter()
    proc = subprocess.Popen([python(), "-m", "framework_arena.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment(cfg, os.environ), text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"cfg": cfg, "uri": None, "run_id": None}))
    proc.stdin.close()
    for line in proc.stdout:
        if json.loads(line)[0] == "begin":
            elapsed = time.perf_counter() - start
            break
    else:
        raise RuntimeError(f"the {framework} child ended without a begin message")
    proc.terminate()
    proc.wait()
    return elapsed


def bare_import_s(framework: str, threads: int) -> float:
    """Seconds from spawning ``python -c "import <framework>"`` until it says so (as the child's
    ``begin`` message: the interpreter's shutdown, seconds for TensorFlow, is not counted)."""
    env = environment(trial_cfg(framework, threads), os.environ)
    start = time.perf_counter()
    proc = subprocess.Popen([python(), "-c", f"import {IMPORT[framework]}; print('imported', flush=True)"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.terminate()
    proc.wait()
    if line.strip() != "imported":
        raise RuntimeError(f"python -c 'import {IMPORT[framework]}' failed")
    return elapsed


def measure(framework: str, threads: int, profile: dict[str, Any], clock: str) -> dict[str, Any]:
    params = {
        "framework": framework, "backend": FRAMEWORKS[framework], "threads": threads, "model": MODEL, "clock": clock,
        "shape": [16, 16, 1], "batch_size": 64, **{k: profile[k] for k in ("num_samples", "rounds", "warmup_steps", "log_every_n_steps")},
    }
    env = environment(trial_cfg(framework, threads), os.environ)
    out = run_json([python(), str(Path(__file__).with_name("_worker.py")), json.dumps(params)], env, timeout=1800)
    starts, imports = [], []
    for i in range(profile["start_pairs"]):
        pair = [("start", trial_start_s), ("import", bare_import_s)]
        for kind, fn in pair if i % 2 == 0 else pair[::-1]:
            (starts if kind == "start" else imports).append(fn(framework, threads))
    out["trial_start_s"], out["bare_import_s"] = starts, imports
    return out


def figures(out: dict[str, Any]) -> list[dict[str, Any]]:
    fw, rounds = out["framework"], out["rounds"]
    rows = [
        ("harness_ratio", med(r["arena"]["samples_per_s"] / r["bare"]["samples_per_s"] for r in rounds), "ratio", ">= 0.97"),
        ("arena_samples_per_s", med(r["arena"]["samples_per_s"] for r in rounds), "samples/s", None),
        ("bare_samples_per_s", med(r["bare"]["samples_per_s"] for r in rounds), "samples/s", None),
        ("tracking_ratio", med(r["tracked"]["fit_time_s"] / r["arena"]["fit_time_s"] for r in rounds), "ratio", "<= 1.03"),
        # The training thread's direct share: time inside the tracked reporter's calls, per epoch.
        ("tracking_in_loop_ms_per_epoch", med(1e3 * (r["tracked"]["callback_s"] - r["arena"]["callback_s"]) for r in rounds), "ms", None),
        ("tracking_in_loop_ratio", med((r["arena"]["fit_time_s"] + r["tracked"]["callback_s"] - r["arena"]["callback_s"]) / r["arena"]["fit_time_s"] for r in rounds), "ratio", "<= 1.03"),
    ]
    if all("autolog" in r for r in rounds):
        rows.append(("autolog_ratio", med(r["tracked"]["fit_time_s"] / r["autolog"]["fit_time_s"] for r in rounds), "ratio", None))
    start, imp = med(out["trial_start_s"]), med(out["bare_import_s"])
    rows += [("trial_start_s", start, "s", None), ("bare_import_s", imp, "s", None), ("start_overhead_s", start - imp, "s", None)]
    n = {"trial_start_s": len(out["trial_start_s"]), "bare_import_s": len(out["bare_import_s"]), "start_overhead_s": len(out["trial_start_s"])}
    return [
        {"figure": name, "framework": fw, "value": round(v, 4), "unit": unit, **({"target": t} if t else {}), "clock": "wall" if name in n else out["clock"],
         **({"pairs": n[name]} if name in n else {"rounds": len(rounds)})}
        for name, v, unit, t in rows
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds and less data: under 5 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true", help="a few seconds of work per framework: checks the script")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of torch,tensorflow,keras")
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads for every framework (default 1: steadier on a shared machine)")
    ap.add_argument("--rounds", type=int, help="alternating rounds per framework (overrides the mode's)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time (default), or the process's CPU seconds: the work done, robust to other load (use with --threads 1)")
    ap.add_argument("--nice", type=int, default=0, help="add this to the benchmark's scheduling priority (negative needs root): less disturbed by other processes")
    ap.add_argument("--out", type=Path, help="the Markdown results file (default bench/results/overhead[-quick].md)")
    args = ap.parse_args()
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = dict(PROFILES[name])
    if args.rounds:
        profile["rounds"] = args.rounds
    suffix = ("" if name == "full" else f"-{name}") + ("-cpu" if args.clock == "cpu" else "")
    out_path = args.out or RESULTS / f"overhead{suffix}.md"
    if args.nice:
        os.nice(args.nice)  # inherited by the workers and children
    mach = machine()
    t0 = time.perf_counter()
    results, figs = [], []
    for fw in args.frameworks.split(","):
        if fw not in FRAMEWORKS:
            sys.exit(f"Expected --frameworks from {list(FRAMEWORKS)}. Received: {fw!r}")
        print(f"== {fw}: {profile['rounds']} rounds", file=sys.stderr, flush=True)
        results.append({**measure(fw, args.threads, profile, args.clock), "clock": args.clock})
        figs += figures(results[-1])
    load_end = os.getloadavg()

    table = [
        "| framework | harness_ratio | arena / bare samples/s | tracking_ratio | tracking in loop (ms/epoch, ratio) | autolog_ratio | trial start / bare import (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for out in results:
        f = {x["figure"]: x["value"] for x in figs if x["framework"] == out["framework"]}
        table.append(
            f"| {out['framework']} | {f['harness_ratio']:.3f} | {f['arena_samples_per_s']:,.0f} / {f['bare_samples_per_s']:,.0f} | "
            f"{f['tracking_ratio']:.3f} | {f['tracking_in_loop_ms_per_epoch']:.2f}, {f['tracking_in_loop_ratio']:.4f} | "
            f"{f.get('autolog_ratio', float('nan')):.3f} | {f['trial_start_s']:.2f} / {f['bare_import_s']:.2f} |"
        )
    setup = (
        f"mode `{name}`: synthetic 16x16x1 data, {profile['num_samples']} samples (85% trained), mlp {MODEL['hidden']}, "
        f"batch 64, trainer.threads={args.threads}, clock={args.clock}, nice {os.nice(0)}, {profile['rounds']} alternating rounds of one epoch each "
        f"(first {profile['warmup_steps']} steps untimed), tracking.log_every_n_steps={profile['log_every_n_steps']}; "
        f"{profile['start_pairs']} start/import pairs. Took {time.perf_counter() - t0:.0f} s."
    )
    print("\n" + "\n".join(table) + "\n" + setup)
    command = " ".join(["python bench/overhead.py", *sys.argv[1:]])
    raw = ["", "## Raw rounds", "", *(f"- {o['framework']}: " + json.dumps(o["rounds"]) for o in results)]
    write_results(out_path, "Harness and tracking overhead", command, mach, ["## Results", "", setup, "", *table, *raw], figs, load_end)
    print(f"results: {out_path}")
    for f in figs:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
