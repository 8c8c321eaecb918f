"""What the harness and the tracking cost: arena against bare loops, tracked against untracked.

    python bench/overhead.py --quick      # < 5 min on 2 cores; writes bench/results/overhead-quick.md
    python bench/overhead.py              # more rounds and data; bench/results/overhead.md
    python bench/overhead.py --smoke      # seconds of work: checks the script itself (tests)

Figures, per framework (``_worker.py`` describes the two phases of alternating rounds):

1. ``harness_ratio``: the median over rounds of the arena trainer's reported
   ``train_samples_per_s`` / a minimal hand-written loop's (``_bare.py``) in the same round: same
   model, initial weights, data, batch size and threads, warm-up steps left out of both, one short
   epoch each, back to back. Target >= 0.97. (The machine's speed also drifts by a third over
   minutes: pooled medians of each side, printed for scale, mix those states; pairs do not.)
2. ``tracking_ratio``: median over rounds of the wall time of a ~``tracking_call_s`` s ``fit``
   tracked as a trial is (``tracking=local``: a SQLite store, per-epoch metrics and
   ``log_every_n_steps`` per-step metrics, sent by the launching process's ``MetricSender``; the
   final figures from the child) until its last metrics are sent / the same ``fit`` untracked.
   Target <= 1.03. Two noisy wall times: it comes with ``tracking_cost_ratio``, the cost counted
   in the training process instead: (untracked time + the time inside the tracked step and epoch
   callbacks + the end call) / untracked time, with its parts ``tracking_in_loop_ms_per_epoch``
   and ``tracking_end_ms`` (once per run). ``sender_cpu_ms_per_epoch`` is the work the
   launching process does beside training, on the other core. ``autolog_ratio``
   (Keras): our tracked time / the same ``fit`` under ``mlflow.keras.autolog(log_every_n_steps=...)``.
3. ``trial_start_s``: spawning the trial's child process until it has imported the framework,
   loaded the data, set up and built the model (its ``begin`` message), against
   ``bare_import_s``: ``python -c "import <framework>"`` in the same environment.

Ratios carry ``ci90``: the 5th-95th percentiles of the same figure over 1000 bootstrap resamples
of the rounds, the uncertainty the machine's noise leaves.

Ends with one JSON line per figure; the results file records them with the machine's description
and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, machine, med, python, run_json, write_results  # noqa: E402

from framework_arena.child import environment  # noqa: E402

PROFILES = {
    # num_samples: synthetic 16x16 images, 90% of them trained on (7112: 100 steps of 64 per
    # epoch); rounds: harness rounds of one epoch each; rounds_tracking: tracking rounds of a fit
    # of about tracking_call_s seconds per variant.
    "smoke": {"num_samples": 2000, "rounds": 3, "rounds_tracking": 2, "tracking_call_s": 0.0, "start_pairs": 1, "warmup_steps": 2, "log_every_n_steps": 5},
    "quick": {"num_samples": 7112, "rounds": 80, "rounds_tracking": 12, "tracking_call_s": 1.0, "start_pairs": 2, "warmup_steps": 5, "log_every_n_steps": 10},
    "full": {"num_samples": 7112, "rounds": 300, "rounds_tracking": 30, "tracking_call_s": 3.0, "start_pairs": 7, "warmup_steps": 5, "log_every_n_steps": 10},
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
        "shape": [16, 16, 1], "batch_size": 64, **{k: profile[k] for k in ("num_samples", "rounds", "rounds_tracking", "tracking_call_s", "warmup_steps", "log_every_n_steps")},
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


def _ci90(rounds: list[dict[str, Any]], figure: Callable[[list[dict[str, Any]]], float], seed: int = 0) -> list[float]:
    """5th and 95th percentiles of ``figure`` over bootstrap resamples of ``rounds``."""
    rng = random.Random(seed)
    values = sorted(figure(rng.choices(rounds, k=len(rounds))) for _ in range(1000))
    return [round(values[50], 4), round(values[949], 4)]


def _harness(rounds: list[dict[str, Any]]) -> float:
    # Paired: the two epochs of a round ran a fraction of a second apart, under the same load.
    return med(r["arena"]["samples_per_s"][0] / r["bare"]["samples_per_s"][0] for r in rounds)


def _extra(r: dict[str, Any]) -> float:
    """Seconds tracking added to one call in the training process, by count: the tracked step,
    epoch and end callbacks beyond the untracked ones."""
    t, u = r["tracked"], r["untracked"]
    return t["callback_s"] - u["callback_s"] + t["end_s"] - u["end_s"]


def figures(out: dict[str, Any]) -> list[dict[str, Any]]:
    fw, rounds, trounds, et = out["framework"], out["rounds"], out["tracking_rounds"], out["epochs_tracking"]
    ratio_figures: dict[str, tuple[Callable[[list[dict[str, Any]]], float], str | None]] = {
        "harness_ratio": (_harness, ">= 0.97"),
    }
    tracking_figures: dict[str, tuple[Callable[[list[dict[str, Any]]], float], str | None]] = {
        "tracking_ratio": (lambda rs: med(r["tracked"]["wall_s"] / r["untracked"]["wall_s"] for r in rs), "<= 1.03"),
        "tracking_cost_ratio": (lambda rs: med((r["untracked"]["wall_s"] + _extra(r)) / r["untracked"]["wall_s"] for r in rs), "<= 1.03"),
    }
    if all("autolog" in r for r in trounds):
        tracking_figures["autolog_ratio"] = (lambda rs: med(r["tracked"]["wall_s"] / r["autolog"]["wall_s"] for r in rs), None)
    rows = [(name, fn(rounds), "ratio", t, _ci90(rounds, fn), "harness") for name, (fn, t) in ratio_figures.items()]
    rows += [(name, fn(trounds), "ratio", t, _ci90(trounds, fn), "tracking") for name, (fn, t) in tracking_figures.items()]
    rows += [
        ("arena_samples_per_s", med(x for r in rounds for x in r["arena"]["samples_per_s"]), "samples/s", None, None, "harness"),
        ("bare_samples_per_s", med(x for r in rounds for x in r["bare"]["samples_per_s"]), "samples/s", None, None, "harness"),
        ("tracking_in_loop_ms_per_epoch", med(1e3 * (r["tracked"]["callback_s"] - r["untracked"]["callback_s"]) / et for r in trounds), "ms", None, None, "tracking"),
        ("sender_cpu_ms_per_epoch", med(1e3 * r["tracked"]["sender_cpu_s"] / et for r in trounds), "ms", None, None, "tracking"),
        ("tracking_end_ms", med(1e3 * r["tracked"]["end_s"] for r in trounds), "ms", None, None, "tracking"),
        ("untracked_ms_per_epoch", med(1e3 * r["untracked"]["wall_s"] / et for r in trounds), "ms", None, None, "tracking"),
    ]
    start, imp = med(out["trial_start_s"]), med(out["bare_import_s"])
    n = len(out["trial_start_s"])
    rows += [(name, v, "s", None, None, "start") for name, v in (("trial_start_s", start), ("bare_import_s", imp), ("start_overhead_s", start - imp))]
    counts = {"harness": {"rounds": len(rounds), "epochs_per_round": 1}, "tracking": {"rounds": len(trounds), "epochs_per_round": et}, "start": {"pairs": n}}
    return [
        {"figure": name, "framework": fw, "value": round(v, 4), "unit": unit, **({"target": t} if t else {}), **({"ci90": ci} if ci else {}),
         "clock": "wall" if phase != "harness" else out["clock"], **counts[phase]}
        for name, v, unit, t, ci, phase in rows
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds and less data: under 5 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true", help="a few seconds of work per framework: checks the script")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of torch,tensorflow,keras")
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads for every framework (default 1: steadier on a shared machine)")
    ap.add_argument("--rounds", type=int, help="harness rounds per framework (overrides the mode's)")
    ap.add_argument("--rounds-tracking", type=int, help="tracking rounds per framework (overrides the mode's)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time (default), or the process's CPU seconds: the work done, robust to other load (use with --threads 1)")
    ap.add_argument("--nice", type=int, default=0, help="add this to the benchmark's scheduling priority (negative needs root): less disturbed by other processes")
    ap.add_argument("--out", type=Path, help="the Markdown results file (default bench/results/overhead[-quick].md)")
    args = ap.parse_args()
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = dict(PROFILES[name])
    if args.rounds:
        profile["rounds"] = args.rounds
    if args.rounds_tracking:
        profile["rounds_tracking"] = args.rounds_tracking
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
        print(f"== {fw}: {profile['rounds']} harness rounds, {profile['rounds_tracking']} tracking rounds", file=sys.stderr, flush=True)
        results.append({**measure(fw, args.threads, profile, args.clock), "clock": args.clock})
        figs += figures(results[-1])
    load_end = os.getloadavg()

    table = [
        "| framework | harness_ratio [90% CI] | arena / bare samples/s | tracking_ratio [90% CI] | tracking_cost_ratio [90% CI] | in loop (ms/epoch of ms); end (ms/run); sender beside (ms/epoch) | autolog_ratio | trial start / bare import (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ratio(f: dict[str, Any], name: str) -> str:
        if name not in f:
            return "-"
        lo, hi = f[name].get("ci90", [float("nan")] * 2)
        return f"{f[name]['value']:.3f} [{lo:.3f}-{hi:.3f}]"

    for out in results:
        f = {x["figure"]: x for x in figs if x["framework"] == out["framework"]}
        v = {k: x["value"] for k, x in f.items()}
        table.append(
            f"| {out['framework']} | {ratio(f, 'harness_ratio')} | {v['arena_samples_per_s']:,.0f} / {v['bare_samples_per_s']:,.0f} | "
            f"{ratio(f, 'tracking_ratio')} | {ratio(f, 'tracking_cost_ratio')} | "
            f"{v['tracking_in_loop_ms_per_epoch']:.2f} of {v['untracked_ms_per_epoch']:.0f}; {v['tracking_end_ms']:.0f}; {v['sender_cpu_ms_per_epoch']:.1f} | "
            f"{ratio(f, 'autolog_ratio')} | {v['trial_start_s']:.2f} / {v['bare_import_s']:.2f} |"
        )
    setup = (
        f"mode `{name}`: synthetic 16x16x1 data, {profile['num_samples']} samples (90% trained: {results[0]['train_samples']}), mlp {MODEL['hidden']}, "
        f"batch 64, trainer.threads={args.threads}, clock={args.clock}, nice {os.nice(0)}; harness: {profile['rounds']} alternating rounds of one epoch, "
        f"first {profile['warmup_steps']} steps untimed; tracking: {profile['rounds_tracking']} alternating rounds of a ~{profile['tracking_call_s']} s fit "
        f"({', '.join(str(o['epochs_tracking']) for o in results)} epochs), "
        f"tracking.log_every_n_steps={profile['log_every_n_steps']}; {profile['start_pairs']} start/import pairs. Took {time.perf_counter() - t0:.0f} s."
    )
    print("\n" + "\n".join(table) + "\n" + setup)
    command = " ".join(["python bench/overhead.py", *sys.argv[1:]])
    raw = ["", "## Raw rounds", "", *(f"- {o['framework']}: " + json.dumps({"harness": o["rounds"], "tracking": o["tracking_rounds"]}) for o in results)]
    write_results(out_path, "Harness and tracking overhead", command, mach, ["## Results", "", setup, "", *table, *raw], figs, load_end)
    print(f"results: {out_path}")
    for f in figs:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
