"""A short trial's fixed cost: a tracked 1-epoch ``arena`` trial against the same work without arena.

    python bench/trial_cost.py --quick      # 2 rounds of torch, tensorflow, keras; bench/results/trial_cost-quick.md
    python bench/trial_cost.py              # 5 rounds; bench/results/trial_cost.md
    python bench/trial_cost.py --quick --frameworks torch --rounds 1

Per framework and round, side by side in one run (the order rotates every round, so drift over
minutes favours none), the wall time of one process each, from its spawn to its exit:

1. ``tracked``: ``arena framework=X trainer.epochs=1`` on a SQLite store (the console script, as
   a user runs it; its ``phase/*`` figures are printed beside, medians over rounds).
2. ``untracked``: the same with ``tracking=none``.
3. ``bare``: a script that imports the framework, loads the same digits split
   (``framework_arena.data``), builds the same model and trains the same epoch in the framework's
   plain idiom (``_bare.py``). Nothing else.
4. ``mlflow_script``: ``bare`` plus what a user writes to log the same things to MLflow: the
   store and experiment, a run, the trial's params (as many as a trial logs), metrics, and the
   model in its flavor with explicit requirements and an input example (torch: ``pt2``, as arena).

Figures per framework: ``tracked_vs_mlflow_script`` (median over rounds of tracked / mlflow_script
of the same round, target <= 1.0, with ``ci90``: the 5th-95th percentiles over 1000 bootstrap
resamples of the rounds) and ``tracked_minus_untracked_s`` (median of the per-round differences,
target <= 2.5 s), and each variant's median; the same again on CPU seconds (``*_cpu``: user +
system of the process and its children), which other work on a shared machine disturbs far less. Ends with one JSON line per figure; the results file
records the machine and the load average (on a shared machine every figure carries its noise).
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
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, machine, med, python, write_results  # noqa: E402

FRAMEWORKS = {"torch": None, "tensorflow": None, "keras": "tensorflow"}
VARIANTS = ("tracked", "untracked", "bare", "mlflow_script")
PROFILES = {"quick": {"rounds": 2}, "full": {"rounds": 5}}
TARGETS = {"tracked_vs_mlflow_script": 1.0, "tracked_minus_untracked_s": 2.5}


def _overrides(framework: str) -> list[str]:
    backend = FRAMEWORKS[framework]
    return [f"framework={framework}", *([f"framework.backend={backend}"] if backend else []), "trainer.epochs=1"]


def _arena_cmd() -> list[str]:
    """The ``arena`` console script beside this Python, or the same entry point through ``-c``."""
    exe = Path(sys.executable).with_name("arena")
    return [str(exe)] if exe.exists() else [python(), "-c", "import sys; from framework_arena.app import train; sys.argv[0] = 'arena'; train()"]


def command(variant: str, framework: str, folder: Path) -> list[str]:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    if variant in ("tracked", "untracked"):
        tracking = [f"tracking.uri={uri}"] if variant == "tracked" else ["tracking=none"]
        return [*_arena_cmd(), *_overrides(framework), *tracking, "arena.json=true", f"hydra.run.dir={folder / 'outputs' / variant}"]
    return [python(), os.path.abspath(__file__), "--worker", variant, "--framework", framework, "--uri", uri]


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, dict[str, float]]:
    """Wall seconds from spawn to exit, CPU seconds (user + system, the trial's child included:
    arena waits for it), and the phases an ``arena`` process printed (arena.json)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=900)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited with {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return seconds, cpu, (json.loads(lines[-1]).get("phases", {}) if lines else {})


# --- the two scripts without arena (run as --worker) -------------------------------------------


def worker(variant: str, framework: str, uri: str) -> None:
    """``bare``: import, data, model, one epoch; ``mlflow_script``: the same with MLflow calls."""
    backend = FRAMEWORKS[framework]
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if variant == "mlflow_script":
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("trial-cost")
        run = mlflow.start_run(run_name=f"{framework}-script")
    __import__({"torch": "torch", "tensorflow": "tensorflow", "keras": "keras"}[framework])
    from _bare import BARE
    from _common import compose_trial

    from framework_arena import data as data_mod
    from framework_arena import models
    from framework_arena.identity import flatten

    trial = compose_trial([*_overrides(framework), "tracking=none"])
    data = data_mod.load(trial.data, trial.data["split_seed"])
    spec = models.build_spec(trial.model, data.input_shape, data.num_classes, data.vocab_size)
    bare = BARE[framework](spec, models.init_weights(spec, 0), data, trial.trainer.batch_size, dict(trial.optim), 0)
    start = time.perf_counter()
    rate = bare.epoch(0)
    if variant != "mlflow_script":
        return
    mlflow.log_params(dict(flatten(trial.as_dict())))
    mlflow.log_metrics({"speed/samples_per_s": rate, "speed/epoch_time_s": time.perf_counter() - start}, step=1)
    _log_model(framework, bare, data.test.x[:5])
    mlflow.end_run()
    assert run.info.run_id


def _log_model(framework: str, bare: Any, example: Any) -> None:
    import mlflow

    if framework == "torch":
        import mlflow.pytorch
        import torch

        model = bare.model.eval()
        mlflow.pytorch.log_model(
            model, name="model", input_example=example, pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"], serialization_format="pt2"
        )
    elif framework == "tensorflow":
        import mlflow.tensorflow
        import tensorflow as tf

        from framework_arena.trainers.tensorflow import _serving_module

        module = _serving_module(bare.net, example.shape[1:])
        mlflow.tensorflow.log_model(module, name="model", input_example=example, pip_requirements=[f"tensorflow=={tf.__version__}"])
    else:
        import keras
        import mlflow.keras
        from mlflow.models import Model

        class KerasFlavor:
            """``mlflow.keras`` with its model folder created first: MLflow 3.17's ``save_model``
            writes ``input_example.json`` into it before anything creates it (FileNotFoundError)."""

            __name__ = "mlflow.keras"

            @staticmethod
            def save_model(path: str, **kwargs: Any) -> Any:
                os.makedirs(path, exist_ok=True)
                return mlflow.keras.save_model(path=path, **kwargs)

        Model.log(
            artifact_path=None, name="model", flavor=KerasFlavor, model=bare.model, input_example=example, pip_requirements=[f"keras=={keras.__version__}"]
        )


# --- the benchmark -----------------------------------------------------------------------------


def _ci90(values: list[float], seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    stats = sorted(med(rng.choices(values, k=len(values))) for _ in range(1000))
    return [round(stats[50], 3), round(stats[949], 3)]


def figures_for(framework: str, rounds: list[dict[str, float]], cpu: list[dict[str, float]], phases: list[dict[str, float]]) -> list[dict[str, Any]]:
    """The wall-time figures with their targets, and the same on CPU seconds (``_cpu``), which a
    loaded machine disturbs far less: its other processes lengthen the wall time, not the work."""
    out: list[dict[str, Any]] = []
    for suffix, per_round in (("", rounds), ("_cpu", cpu)):
        ratios = [r["tracked"] / r["mlflow_script"] for r in per_round]
        diffs = [r["tracked"] - r["untracked"] for r in per_round]
        out += [
            {"figure": f"tracked_vs_mlflow_script{suffix}", "framework": framework, "value": round(med(ratios), 3), "target": "<= 1.0", "ci90": _ci90(ratios)},
            {"figure": f"tracked_minus_untracked{suffix}_s", "framework": framework, "value": round(med(diffs), 2), "target": "<= 2.5", "ci90": _ci90(diffs)},
        ]
        out += [{"figure": f"{v}{suffix}_s", "framework": framework, "value": round(med(r[v] for r in per_round), 2)} for v in VARIANTS]
    names = sorted({k for p in phases for k in p})
    out.append({"figure": "tracked_phases_s", "framework": framework, "value": {k: round(med(p.get(k, 0.0) for p in phases), 2) for k in names}})
    for f in out:
        f["rounds"] = len(rounds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="rounds per framework (default: 2 with --quick, else 5)")
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS), default=list(FRAMEWORKS))
    parser.add_argument("--out", type=Path, help="the results file (default: bench/results/trial_cost[-quick].md)")
    parser.add_argument("--worker", choices=["bare", "mlflow_script"], help=argparse.SUPPRESS)
    parser.add_argument("--framework", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.framework, args.uri)
        return
    name = "quick" if args.quick else "full"
    rounds = args.rounds or PROFILES[name]["rounds"]
    mach = machine()
    print(f"trial_cost --{name}: {rounds} round(s) of {args.frameworks}, load average {mach['loadavg']}", file=sys.stderr)
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="arena-trial-cost-") as tmp:
        folder = Path(tmp)
        for framework in args.frameworks:
            timed(command("tracked", framework, folder), folder)  # creates the store; warms the file cache
            per_round: list[dict[str, float]] = []
            cpu_round: list[dict[str, float]] = []
            phases: list[dict[str, float]] = []
            for r in range(rounds):
                order = list(VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)])
                seconds: dict[str, float] = {}
                cpu: dict[str, float] = {}
                for variant in order:
                    seconds[variant], cpu[variant], printed = timed(command(variant, framework, folder), folder)
                    if variant == "tracked":
                        phases.append(printed)
                per_round.append(seconds)
                cpu_round.append(cpu)
                line = ", ".join(f"{v} {seconds[v]:.1f} s ({cpu[v]:.1f} s CPU)" for v in VARIANTS)
                print(f"  {framework} round {r}: {line} (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            figures += figures_for(framework, per_round, cpu_round, phases)
    load_end = os.getloadavg()
    sections = [
        "## Figures",
        "",
        *(f"- {f['framework']} {f['figure']}: {f['value']}" + (f" (target {f['target']}, ci90 {f['ci90']})" if "target" in f else "") for f in figures),
    ]
    out = args.out or RESULTS / ("trial_cost-quick.md" if args.quick else "trial_cost.md")
    command_line = "python bench/trial_cost.py " + " ".join(sys.argv[1:])
    write_results(out, "A short trial's fixed cost: tracked, untracked, bare, bare with MLflow", command_line, mach, sections, figures, load_end)
    for f in figures:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
