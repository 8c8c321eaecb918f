"""How long arena-compare takes on many runs, against MLflow's own search_runs over the same runs.

    python bench/compare_scale.py                # 10,000 runs, 3 alternating repeats
    python bench/compare_scale.py --runs 2000 --repeats 2

Generates the runs in a temporary SQLite store through MLflow's own ORM models (creating 10,000
runs through the client would take minutes and time nothing of interest), then alternates: MLflow's
``search_runs`` over every trial run (paged, the same filter arena-compare uses) and a whole
``arena-compare`` (selection, epoch histories of ``report.max_history_runs`` runs per framework,
criteria, a 1,000-sample bootstrap, report files and plots; no comparison run is logged). Prints the
medians, their ratio, arena-compare's peak memory (RSS of this process during the compare), the CPU
seconds of both (figure workers included: on a busy machine wall time also measures the neighbours),
and one JSON line per figure; writes bench/results/compare_scale.md.

    python bench/compare_scale.py --runs 100000 --store /tmp/scale100k   # keeps the store for the next try
                                                                         # results: bench/results/compare_scale-100000.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

GROUPS = (("torch", None), ("tensorflow", None), ("keras", "tensorflow"), ("keras", "torch"), ("keras", "jax"))


def generate(uri: str, runs: int, epochs: int, seed: int = 0) -> str:
    """``runs`` FINISHED trial runs spread over the groups, seeds and two models; returns the experiment id."""
    from mlflow.store.tracking.dbmodels import models as m
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp_id = client.create_experiment("scale")
    store = SqlAlchemyStore(uri, tempfile.mkdtemp())
    rng = np.random.default_rng(seed)
    now = int(time.time() * 1000)
    with store.ManagedSessionMaker() as session:
        for i in range(runs):
            fw, backend = GROUPS[i % len(GROUPS)]
            rid = uuid.uuid4().hex
            speed = {"torch": 30000, "tensorflow": 60000}.get(fw, 15000) * (1 + 0.1 * rng.standard_normal())
            acc = float(np.clip(0.95 + 0.01 * rng.standard_normal(), 0, 1))
            rows: list = [
                m.SqlRun(
                    run_uuid=rid,
                    name=f"{fw}-{i}",
                    source_type="LOCAL",
                    source_name="bench",
                    entry_point_name="",
                    user_id="bench",
                    status="FINISHED",
                    start_time=now + i,
                    end_time=now + i + 1,
                    source_version="",
                    lifecycle_stage="active",
                    artifact_uri=f"file:///tmp/{rid}",
                    experiment_id=int(exp_id),
                )
            ]
            tags = {"arena.kind": "trial", "arena.framework": fw, "arena.model": ("mlp", "cnn")[i % 2], "arena.data": "digits", "mlflow.runName": f"{fw}-{i}"}
            if backend:
                tags["arena.backend"] = backend
            rows += [m.SqlTag(key=k, value=v, run_uuid=rid) for k, v in tags.items()]
            params = {
                "framework.name": fw,
                "model.name": tags["arena.model"],
                "trainer.seed": str(i // 10 % 5),
                "trainer.batch_size": "64",
                "trainer.epochs": str(epochs),
                "optim.lr": "0.001",
            }
            rows += [m.SqlParam(key=k, value=v, run_uuid=rid) for k, v in params.items()]
            final = {
                "test/accuracy": acc,
                "test/loss": 1 - acc,
                "memory/peak_rss_mb": 700 + 50 * rng.random(),
                "speed/import_time_s": 2 + rng.random(),
                "speed/time_to_first_step_s": 0.5 * rng.random(),
                "infer/latency_ms_p50": 0.5 + rng.random(),
                "speed/samples_per_s": speed,
            }
            for k, v in final.items():
                rows += [
                    m.SqlMetric(key=k, value=float(v), timestamp=now, step=epochs, is_nan=False, run_uuid=rid),
                    m.SqlLatestMetric(key=k, value=float(v), timestamp=now, step=epochs, is_nan=False, run_uuid=rid),
                ]
            for e in range(1, epochs + 1):
                curve = {"val/accuracy": acc * (1 - 0.5**e), "train/loss": 2 * 0.6**e, "speed/epoch_time_s": 1000 / speed}
                for k, v in curve.items():
                    rows.append(m.SqlMetric(key=k, value=float(v), timestamp=now + e, step=e, is_nan=False, run_uuid=rid))
                    if e == epochs:
                        rows.append(m.SqlLatestMetric(key=k, value=float(v), timestamp=now + e, step=e, is_nan=False, run_uuid=rid))
            session.add_all(rows)
            if i % 1000 == 999:
                session.flush()
    return exp_id


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (VmRSS: now, VmHWM: peak), in MB; NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the figure workers): on a busy
    machine, where wall time measures the neighbours too, the figure that compares."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _reset_peak() -> bool:
    """Starts VmHWM again from the current RSS (Linux), so the next peak is the compare's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--store", type=Path, help="keep the generated store in this folder and reuse it when it already holds --runs runs")
    args = ap.parse_args()

    from mlflow.tracking import MlflowClient
    from tqdm import tqdm

    from framework_arena.compare.query import TRIAL_FILTER
    from framework_arena.compare.run import compare
    from framework_arena.tracking import Reader

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_compare import _compose_compare  # the real Hydra composition of conf/compare.yaml

    tmp = args.store or Path(tempfile.mkdtemp(prefix="arena-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    if (tmp / "mlflow.db").exists():
        print(f"reusing the store in {tmp}")
    else:
        t0 = time.perf_counter()
        generate(uri, args.runs, args.epochs)
        print(f"generated {args.runs:,} runs in {time.perf_counter() - t0:.1f} s ({uri})")
    cfg = _compose_compare([f"tracking.uri={uri}", "select.experiment=scale", "report.log_run=false"])

    def search() -> int:
        """MLflow's own ``search_runs``, paged, with the filter arena-compare uses: the baseline.
        (Not through Reader, whose SQL reads are what arena-compare is measured with.)"""
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("scale").experiment_id
        count, token = 0, None
        while True:
            page = client.search_runs([exp], TRIAL_FILTER, max_results=Reader.PAGE, page_token=token)
            count, token = count + len(page), page.token
            if not token:
                return count

    searched, compared, peaks, before, cpu_s, cpu_c = [], [], [], [], [], []
    import logging

    logging.getLogger("arena.compare").setLevel(logging.WARNING)
    devnull = open(os.devnull, "w")
    for r in tqdm(range(args.repeats), desc="alternating search / compare", unit="pair"):
        t, c = time.perf_counter(), _cpu()
        n = search()
        searched.append(time.perf_counter() - t)
        cpu_s.append(_cpu() - c)
        assert n == args.runs, n
        before.append(_status_mb("VmRSS"))
        reset = _reset_peak()
        t, c = time.perf_counter(), _cpu()
        stdout, sys.stdout = sys.stdout, devnull  # the rich tables are not what is timed
        try:
            compare(cfg, tmp / f"report-{r}", "balanced")
        finally:
            sys.stdout = stdout
        compared.append(time.perf_counter() - t)
        cpu_c.append(_cpu() - c)
        peaks.append(_status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    s, c = statistics.median(searched), statistics.median(compared)
    ratio = c / s
    print(f"search_runs over {args.runs:,} runs: median {s:.2f} s  {[round(x, 2) for x in searched]}")
    print(f"arena-compare over the same runs:   median {c:.2f} s  {[round(x, 2) for x in compared]}")
    peak, load = max(peaks), os.getloadavg()[0]
    cs, cc = statistics.median(cpu_s), statistics.median(cpu_c)
    print(
        f"compare / search ratio: {ratio:.2f}   arena-compare peak RSS {peak:.0f} MB (this process held {min(before):.0f} MB before it)   load average {load:.2f}"
    )
    print(f"CPU seconds, figure workers included: search {cs:.2f}, compare {cc:.2f}, ratio {cc / cs:.2f}")
    figures = {"search_runs_s": s, "compare_s": c, "compare_search_ratio": ratio, "compare_peak_rss_mb": peak, "compare_search_cpu_ratio": cc / cs}
    for k, v in figures.items():
        print(json.dumps({"bench": "compare_scale", "figure": k, "value": round(v, 4), "runs": args.runs}))
    # One file per size: a 100,000-run measurement does not overwrite the default 10,000-run one.
    out = Path(__file__).with_name("results") / ("compare_scale.md" if args.runs == 10000 else f"compare_scale-{args.runs}.md")
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        f"# compare_scale\n\n`python bench/compare_scale.py --runs {args.runs} --repeats {args.repeats}`, {time.strftime('%Y-%m-%d')}\n\n"
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.2f}\n\n"
        f"| figure | median | all |\n|---|---|---|\n| MLflow search_runs, {args.runs:,} runs | {s:.2f} s | {', '.join(f'{x:.2f}' for x in searched)} |\n"
        f"| arena-compare, same runs | {c:.2f} s | {', '.join(f'{x:.2f}' for x in compared)} |\n| ratio | {ratio:.2f} | |\n"
        f"| arena-compare peak RSS (process; it held {min(before):.0f} MB before) | {peak:.0f} MB | {', '.join(f'{x:.0f}' for x in peaks)} |\n"
        f"| CPU seconds, search / compare (figure workers included) | {cs:.2f} / {cc:.2f} s, ratio {cc / cs:.2f} | |\n"
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
