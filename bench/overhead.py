"""What the harness and the tracking cost: arena against bare loops, tracked against untracked.

    python bench/overhead.py --quick      # < 5 min on 2 cores; writes bench/results/overhead-quick.md
    python bench/overhead.py              # more rounds and data; bench/results/overhead.md
    python bench/overhead.py --smoke      # seconds of work: checks the script itself (tests)

Figures, per framework (``_worker.py`` describes the two phases of alternating rounds):

1. ``harness_ratio``: the median over rounds of the arena trainer's reported
   ``speed/samples_per_s`` / a minimal hand-written loop's (``_bare.py``) in the same round: same
   model, initial weights, data, batch size and threads, warm-up steps left out of both, one short
   epoch each, back to back. Target >= 0.97. (The machine's speed also drifts by a third over
   minutes: pooled medians of each side, printed for scale, mix those states; pairs do not.)
2. ``tracking_ratio``: median over rounds of a tracked epoch's ``fit_time_s`` (steps,
   validation, callbacks: the child reporting per-step metrics every ``log_every_n_steps`` steps
   and the epoch's metrics to the launching process, whose ``MetricSender`` sends them to a
   SQLite store from another process) / the untracked epoch's of the same round. Target <= 1.03.
   ``tracking_cost_ratio`` counts instead of comparing: (untracked epoch + the time inside the
   tracked step and epoch callbacks) / untracked epoch. Once per run, outside the epochs:
   ``tracking_end_ms`` (the child's end-of-training request and the wait for the launching
   process's last one); beside training, on the other core: ``sender_cpu_ms_per_epoch``.
   ``autolog_ratio`` (Keras): a whole tracked run's wall time / the same ``fit`` under
   ``mlflow.keras.autolog(log_every_n_steps=...)``.
3. ``tensorboard_cost_ratio`` (``tracking.tensorboard=true``): (a tracked epoch + the time its
   TensorBoard writes took inside the callbacks: scalars at the logged steps and the epoch's end,
   a histogram per weight) / the tracked epoch, counted; ``tensorboard_ratio`` compares the two
   epochs' ``fit_time_s`` in alternating pairs instead. Target <= 1.03, the bar the default
   (``tracking.tensorboard``) is held to. Once per trial, outside the epochs:
   ``tensorboard_once_s`` (opening the writer, the graph, closing the files).
4. ``trial_start_s``: spawning the trial's child process until it has imported the framework,
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

from _common import RESULTS, compose_trial, machine, med, python, run_json, write_results  # noqa: E402

from framework_arena.child import environment  # noqa: E402
from framework_arena.trial import Trial  # noqa: E402

PROFILES = {
    # num_samples: synthetic 16x16 images, 90% of them trained on (7112: 100 steps of 64 per
    # epoch); rounds: rounds of one epoch per variant; board_rounds: rounds of the TensorBoard pair
    # (its in-loop cost is counted, so fewer rounds suffice); rounds_runs: rounds of whole tracked runs
    # of about run_s seconds (and autolog).
    "smoke": {"num_samples": 2000, "rounds": 3, "board_rounds": 2, "rounds_runs": 1, "run_s": 0.0, "start_pairs": 1, "warmup_steps": 2, "log_every_n_steps": 5},
    "quick": {
        "num_samples": 7112,
        "rounds": 56,
        "board_rounds": 16,
        "rounds_runs": 3,
        "run_s": 1.5,
        "start_pairs": 2,
        "warmup_steps": 5,
        "log_every_n_steps": 10,
    },
    "full": {
        "num_samples": 7112,
        "rounds": 200,
        "board_rounds": 60,
        "rounds_runs": 10,
        "run_s": 3.0,
        "start_pairs": 7,
        "warmup_steps": 5,
        "log_every_n_steps": 10,
    },
}
MODEL = {"name": "mlp", "hidden": [128, 64], "activation": "relu", "dropout": 0.1, "init": "glorot_uniform"}
FRAMEWORKS = {"torch": None, "tensorflow": None, "keras": "tensorflow"}
IMPORT = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras"}


def trial_cfg(framework: str, threads: int, epochs: int = 1) -> Trial:
    """The untracked default MLP trial, composed and resolved as ``arena`` does."""
    backend = [f"framework.backend={FRAMEWORKS[framework]}"] if FRAMEWORKS[framework] else []
    return compose_trial([f"framework={framework}", *backend, "tracking=none", f"trainer.threads={threads}", f"trainer.epochs={epochs}", "trainer.device=cpu"])


def trial_start_s(framework: str, threads: int) -> float:
    """Seconds from spawning ``python -m framework_arena.child`` to its ``begin`` message."""
    trial = trial_cfg(framework, threads)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python(), "-m", "framework_arena.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment(trial, os.environ),
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"trial": trial.as_dict()}))  # no outbox: untracked
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
    proc = subprocess.Popen(
        [python(), "-c", f"import {IMPORT[framework]}; print('imported', flush=True)"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
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
        "framework": framework,
        "backend": FRAMEWORKS[framework],
        "threads": threads,
        "model": MODEL,
        "clock": clock,
        "shape": [16, 16, 1],
        "batch_size": 64,
        **{k: profile[k] for k in ("num_samples", "rounds", "board_rounds", "rounds_runs", "run_s", "warmup_steps", "log_every_n_steps")},
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
    # Paired: the epochs of a round ran a fraction of a second apart, under the same load.
    return med(r["arena"]["samples_per_s"][0] / r["bare"]["samples_per_s"][0] for r in rounds)


def _tracking(rounds: list[dict[str, Any]]) -> float:
    return med(r["tracked"]["fit_time_s"] / r["arena"]["fit_time_s"] for r in rounds)


def _counted(rounds: list[dict[str, Any]]) -> float:
    """The untracked epoch plus what tracking's callbacks took in the training process."""
    return med((r["arena"]["fit_time_s"] + r["tracked"]["callback_s"] - r["arena"]["callback_s"]) / r["arena"]["fit_time_s"] for r in rounds)


def _board(rounds: list[dict[str, Any]]) -> float:
    return med(r["board"]["fit_time_s"] / r["tracked"]["fit_time_s"] for r in rounds)


def _board_counted(rounds: list[dict[str, Any]]) -> float:
    """The tracked epoch plus what the TensorBoard writes took in its callbacks."""
    return med((r["tracked"]["fit_time_s"] + r["board"]["callback_s"] - r["tracked"]["callback_s"]) / r["tracked"]["fit_time_s"] for r in rounds)


def figures(out: dict[str, Any]) -> list[dict[str, Any]]:
    fw, rounds, trounds, runs, et = out["framework"], out["rounds"], out["tracking_rounds"], out["run_rounds"], out["epochs_per_run"]
    rows = [
        ("harness_ratio", _harness(rounds), "ratio", ">= 0.97", _ci90(rounds, _harness), "epochs"),
        ("tracking_ratio", _tracking(trounds), "ratio", "<= 1.03", _ci90(trounds, _tracking), "epochs"),
        ("tracking_cost_ratio", _counted(trounds), "ratio", "<= 1.03", _ci90(trounds, _counted), "epochs"),
        ("arena_samples_per_s", med(r["arena"]["samples_per_s"][0] for r in rounds), "samples/s", None, None, "epochs"),
        ("bare_samples_per_s", med(r["bare"]["samples_per_s"][0] for r in rounds), "samples/s", None, None, "epochs"),
        ("untracked_ms_per_epoch", med(1e3 * r["arena"]["fit_time_s"] for r in trounds), "ms", None, None, "epochs"),
        ("tracking_in_loop_ms_per_epoch", med(1e3 * (r["tracked"]["callback_s"] - r["arena"]["callback_s"]) for r in trounds), "ms", None, None, "epochs"),
        ("tracking_end_ms", med(1e3 * (r["run"]["end_s"] + r["run"]["close_s"]) for r in runs), "ms", None, None, "runs"),
        ("sender_cpu_ms_per_epoch", med(1e3 * r["run"]["sender_cpu_s"] / et for r in runs), "ms", None, None, "runs"),
    ]
    if all("autolog" in r for r in runs):
        fn = lambda rs: med(r["run"]["wall_s"] / r["autolog"]["wall_s"] for r in rs)  # noqa: E731
        rows.append(("autolog_ratio", fn(runs), "ratio", None, _ci90(runs, fn), "runs"))
    brounds = out["board_rounds"]
    rows += [
        ("tensorboard_ratio", _board(brounds), "ratio", "<= 1.03", _ci90(brounds, _board), "boards"),
        ("tensorboard_cost_ratio", _board_counted(brounds), "ratio", "<= 1.03", _ci90(brounds, _board_counted), "boards"),
        ("tensorboard_in_loop_ms_per_epoch", med(1e3 * (r["board"]["callback_s"] - r["tracked"]["callback_s"]) for r in brounds), "ms", None, None, "boards"),
        ("tensorboard_once_s", out["board_once_s"], "s", None, None, "boards"),
        ("tensorboard_kb_per_epoch", out["board_bytes_per_epoch"] / 1024, "KiB", None, None, "boards"),
    ]
    start, imp = med(out["trial_start_s"]), med(out["bare_import_s"])
    n = len(out["trial_start_s"])
    rows += [(name, v, "s", None, None, "start") for name, v in (("trial_start_s", start), ("bare_import_s", imp), ("start_overhead_s", start - imp))]
    counts = {
        "epochs": {"rounds": len(rounds), "epochs_per_round": 1},
        "boards": {"rounds": len(brounds), "epochs_per_round": 1},
        "runs": {"rounds": len(runs), "epochs_per_run": et},
        "start": {"pairs": n},
    }
    return [
        {
            "figure": name,
            "framework": fw,
            "value": round(v, 4),
            "unit": unit,
            **({"target": t} if t else {}),
            **({"ci90": ci} if ci else {}),
            "clock": "wall" if phase not in ("epochs", "boards") else out["clock"],
            **counts[phase],
        }
        for name, v, unit, t, ci, phase in rows
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds and less data: under 5 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true", help="a few seconds of work per framework: checks the script")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of torch,tensorflow,keras")
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads for every framework (default 1: steadier on a shared machine)")
    ap.add_argument("--rounds", type=int, help="rounds of one epoch per variant, per framework (overrides the mode's)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default), or the process's CPU seconds: the work done, robust to other load (use with --threads 1)",
    )
    ap.add_argument(
        "--nice", type=int, default=0, help="add this to the benchmark's scheduling priority (negative needs root): less disturbed by other processes"
    )
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
        print(f"== {fw}: {profile['rounds']} rounds of epochs, {profile['rounds_runs']} of runs", file=sys.stderr, flush=True)
        results.append({**measure(fw, args.threads, profile, args.clock), "clock": args.clock})
        figs += figures(results[-1])
    load_end = os.getloadavg()

    table = [
        "| framework | harness_ratio [90% CI] | arena / bare samples/s | tracking_ratio [90% CI] | tracking_cost_ratio [90% CI] | in loop (ms/epoch of ms); end (ms/run); sender beside (ms/epoch) | autolog_ratio | trial start / bare import (s) | tensorboard_cost_ratio [90% CI]; tensorboard_ratio; in loop (ms/epoch); once (s) |",
        "|---|---|---|---|---|---|---|---|---|",
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
            f"{ratio(f, 'autolog_ratio')} | {v['trial_start_s']:.2f} / {v['bare_import_s']:.2f} | "
            f"{ratio(f, 'tensorboard_cost_ratio')}; {ratio(f, 'tensorboard_ratio')}; {v['tensorboard_in_loop_ms_per_epoch']:.1f}; {v['tensorboard_once_s']:.2f} |"
        )
    setup = (
        f"mode `{name}`: synthetic 16x16x1 data, {profile['num_samples']} samples (90% trained: {results[0]['train_samples']}), mlp {MODEL['hidden']}, "
        f"batch 64, trainer.threads={args.threads}, clock={args.clock}, nice {os.nice(0)}; {profile['rounds']} rounds of one epoch per pair (harness, tracking), "
        f"first {profile['warmup_steps']} steps untimed; {profile['rounds_runs']} rounds of whole tracked runs of ~{profile['run_s']} s "
        f"({', '.join(str(o['epochs_per_run']) for o in results)} epochs), {profile['board_rounds']} rounds of the tracked / tracked + TensorBoard pair, "
        f"tracking.log_every_n_steps={profile['log_every_n_steps']}; {profile['start_pairs']} start/import pairs. Took {time.perf_counter() - t0:.0f} s."
    )
    print("\n" + "\n".join(table) + "\n" + setup)
    command = " ".join(["python bench/overhead.py", *sys.argv[1:]])
    raw = [
        "",
        "## Raw rounds",
        "",
        *(
            f"- {o['framework']}: "
            + json.dumps({"harness": o["rounds"], "tracking": o["tracking_rounds"], "tensorboard": o["board_rounds"], "runs": o["run_rounds"]})
            for o in results
        ),
    ]
    write_results(out_path, "Harness and tracking overhead", command, mach, ["## Results", "", setup, "", *table, *raw], figs, load_end)
    print(f"results: {out_path}")
    for f in figs:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
