"""Are speed figures fair on a shared machine? A trial alone, in a parallel sweep, beside a CPU hog.

    python bench/fairness.py --quick      # 2 rounds, the hogged case in one (target < 5 min on 2 cores); writes bench/results/fairness-quick.md
    python bench/fairness.py --smoke      # about a minute, torch only: checks the script itself

Per framework and round, side by side in one run (the cases alternate inside each round):

1. ``alone``: one ``arena`` trial, ``trainer.threads=0`` (its budget: every core it may use).
2. ``parallel``: a 2-job sweep, ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` with
   ``trainer.threads=0``: each trial gets its share (disjoint cores, cores.py).
3. ``hogged``: one trial while the benchmark's bounded CPU hog spins on every core the trial may
   use (one process per core, started before the trial and killed after it, by pid).

Figures: ``parallel_ratio`` per framework = median over rounds of (median ``speed/samples_per_s``
of the sweep's two trials / the alone trial's), target >= 0.85 on 2 cores, with ``ci90`` (5th-95th
percentiles over bootstrap resamples of the rounds); ``hogged_flagged`` (target: every one) and
``quiet_flagged`` (alone and parallel trials tagged ``arena.contended``; target <= 1 in 10 on a
quiet machine). Ends with one JSON line per figure; the results file records the machine and the
load average at start and end (a loaded machine flags its quiet trials too: that is the point).
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

from _common import RESULTS, machine, med, write_results  # noqa: E402

from framework_arena.cores import affinity  # noqa: E402

PROFILES = {
    "smoke": {"frameworks": ["torch"], "rounds": 1, "hogged_rounds": 1, "overrides": ["trainer.epochs=2"]},
    # The hogged case answers a yes/no question (is every hogged trial flagged?) and is the slowest
    # (the hog halves the trials' start-up too), so --quick runs it in one round, not every round.
    # 4 epochs, as the full profile: with 2, the steady figure was one digits epoch after the
    # warm-up, ~36 ms of timing, and torch's parallel_ratio swung 0.79-1.16 between runs of the
    # same code; 2 more epochs cost ~0.1 s a trial (start-up is ~10 s).
    "quick": {"frameworks": ["torch", "tensorflow", "keras"], "rounds": 2, "hogged_rounds": 1, "overrides": ["trainer.epochs=4"]},
    "full": {"frameworks": ["torch", "tensorflow", "keras"], "rounds": 5, "hogged_rounds": 5, "overrides": ["trainer.epochs=4"]},
}
HOG_S = 300  # a hog never outlives this, even if the benchmark is killed


def _arena(args: list[str], folder: Path, experiment: str, timeout: float = 600) -> None:
    exe = Path(sys.executable).with_name("arena")
    cmd = [
        str(exe),
        *args,
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
        f"tracking.experiment={experiment}",
        "tracking.log_model=false",
        "tracking.plots=false",
    ]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")


def _runs(folder: Path, experiment: str) -> list[dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`arena.kind` = 'trial' and attributes.status = 'FINISHED'")
    return [
        {
            "framework": r.data.params.get("framework.name"),
            "samples_per_s": r.data.metrics.get("speed/samples_per_s", float("nan")),
            "contended": r.data.tags.get("arena.contended") == "true",
            "cores": r.data.tags.get("arena.cores"),
            "other_share": r.data.metrics.get("contention/other_share"),
        }
        for r in runs
    ]


def _hogs() -> list[subprocess.Popen[bytes]]:
    code = "import os, sys, time\nos.sched_setaffinity(0, {int(sys.argv[1])})\nend = time.time() + %d\nwhile time.time() < end:\n    pass\n" % HOG_S
    return [subprocess.Popen([sys.executable, "-c", code, str(core)]) for core in affinity()]


def case(name: str, frameworks: list[str], overrides: list[str], folder: Path, tag: str) -> dict[str, list[dict[str, Any]]]:
    """Runs one case for every framework in one ``arena`` multirun; returns the finished trials by framework.

    One Hydra process per case, not per framework: each trial is still its own child process
    (runner.py), so a trial's figures are the same, and the benchmark pays the launcher's start-up
    once per case (it was most of the wall time: a digits trial trains for seconds).
    """
    experiment = f"fair-{tag}-{name}"
    base = ["-m", f"framework={','.join(frameworks)}", "trainer.threads=0", *overrides, f"hydra.sweep.dir={folder}/sweeps/{experiment}"]
    if name == "parallel":
        _arena([*base, "trainer.seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], folder, experiment)
    elif name == "hogged":
        hogs = _hogs()
        try:
            time.sleep(0.5)  # the hogs are spinning before the first trial starts
            _arena(base, folder, experiment)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    else:
        _arena(base, folder, experiment)
    return {fw: [r for r in _runs(folder, experiment) if r["framework"] == fw] for fw in frameworks}


def _ci90(pairs: list[float], seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    stats = sorted(med(rng.choices(pairs, k=len(pairs))) for _ in range(1000))
    return [round(stats[50], 3), round(stats[949], 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true")
    group.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = PROFILES[name]
    mach = machine()
    print(f"fairness --{name}: {len(affinity())} usable cores, load average {mach['loadavg']}", file=sys.stderr)
    results: dict[str, dict[str, list[list[dict[str, Any]]]]] = {}
    began = time.perf_counter()  # --quick's target is a duration (< 5 min): recorded with the figures
    with tempfile.TemporaryDirectory(prefix="arena-fairness-") as tmp:
        folder = Path(tmp)
        os.environ["ARENA_CORES_DIR"] = str(folder / "cores")  # this benchmark's own core locks
        for r in range(profile["rounds"]):
            order = ["alone", "parallel", "hogged"] if r < profile["hogged_rounds"] else ["alone", "parallel"]
            if r % 2:
                order.reverse()  # alternate: drift over minutes does not favour one case
            for c in order:
                start = time.perf_counter()
                by_framework = case(c, profile["frameworks"], profile["overrides"], folder, f"r{r}")
                for framework, runs in by_framework.items():
                    if not runs:
                        raise RuntimeError(f"round {r} {c}: no finished {framework} trial in the store")
                    results.setdefault(framework, {}).setdefault(c, []).append(runs)
                    print(
                        f"  round {r} {c} {framework}: {[round(x['samples_per_s']) for x in runs]} samples/s, contended {[x['contended'] for x in runs]}",
                        file=sys.stderr,
                    )
                print(f"  round {r} {c}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    figures = []
    for framework, cases in results.items():
        pairs = [med(x["samples_per_s"] for x in par) / alone[0]["samples_per_s"] for alone, par in zip(cases["alone"], cases["parallel"])]
        figures.append(
            {"figure": "parallel_ratio", "framework": framework, "value": round(med(pairs), 3), "target": ">= 0.85", "ci90": _ci90(pairs), "rounds": len(pairs)}
        )
        for label, keys in (("hogged_flagged", ["hogged"]), ("quiet_flagged", ["alone", "parallel"])):
            trials = [x for k in keys for runs in cases[k] for x in runs]
            figures.append({"figure": label, "framework": framework, "value": sum(x["contended"] for x in trials), "of": len(trials)})
        figures.append({"figure": "alone_samples_per_s", "framework": framework, "value": round(med(runs[0]["samples_per_s"] for runs in cases["alone"]))})
    load_end = os.getloadavg()
    took = time.perf_counter() - began
    sections = [
        f"Took {took:.0f} s ({took / 60:.1f} min).",
        "",
        "## Figures",
        "",
        *(
            f"- {f['framework']} {f['figure']}: {f['value']}"
            + (f" of {f['of']}" if "of" in f else "")
            + (f" (target {f['target']}, ci90 {f['ci90']})" if "target" in f else "")
            for f in figures
        ),
    ]
    write_results(
        RESULTS / f"fairness-{name}.md", "Fairness: alone, parallel, beside a CPU hog", f"python bench/fairness.py --{name}", mach, sections, figures, load_end
    )
    for f in figures:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
