"""The GPU path in one run: every framework that can use the GPU, fp32 and bf16, compile off and on.

    python bench/gpu.py                      # on a GPU machine: under 5 minutes, prints the figures
    python bench/gpu.py --device cpu --smoke # anywhere: the same script on tiny data (tests)

Each case is a real trial (``runner.run_trial``, a fresh child process, ``tracking=none``) on
synthetic 28x28x1 images with the cnn model, so the figures are the ones a trial logs:
steady ``speed/samples_per_s`` (first epoch excluded), ``speed/time_to_first_step_s``,
``speed/compile_time_s``, ``infer/latency_ms_p50``/``p95`` (batch 1), ``infer/samples_per_s``,
``memory/gpu_peak_mb`` and ``memory/peak_rss_mb``. A case whose framework build cannot use the GPU here
(tensorflow-cpu, jax without CUDA) is reported as skipped with the trainer's reason. Results go to
``bench/results/gpu-<device>.md`` with the machine's description, and one JSON line per case
ends the output.
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

from _common import RESULTS, machine, write_results  # noqa: E402

# (label, overrides): torch first, the framework most likely to have a GPU build.
CASES = [
    ("torch fp32", ["framework=torch"]),
    ("torch bf16", ["framework=torch", "trainer.precision=bf16"]),
    ("torch bf16 compile", ["framework=torch", "trainer.precision=bf16", "framework.compile=true"]),
    ("keras-torch fp32", ["framework=keras", "framework.backend=torch"]),
    ("keras-torch bf16", ["framework=keras", "framework.backend=torch", "trainer.precision=bf16"]),
    ("keras-jax fp32", ["framework=keras", "framework.backend=jax"]),
    ("keras-jax bf16", ["framework=keras", "framework.backend=jax", "trainer.precision=bf16"]),
    ("tensorflow fp32", ["framework=tensorflow"]),
    ("tensorflow xla", ["framework=tensorflow", "framework.compile=true"]),
    ("keras-tensorflow fp32", ["framework=keras", "framework.backend=tensorflow"]),
]
FIGURES = (
    "speed/samples_per_s",
    "speed/time_to_first_step_s",
    "speed/compile_time_s",
    "infer/latency_ms_p50",
    "infer/latency_ms_p95",
    "infer/samples_per_s",
    "memory/gpu_peak_mb",
    "memory/peak_rss_mb",
)
SMOKE_CASES = ("torch fp32", "torch bf16", "keras-torch fp32")


def compose(overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from framework_arena.config import register_configs

    register_configs()
    with initialize_config_module(config_module="framework_arena.conf", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="trainer.device of every case (default cuda)")
    ap.add_argument("--smoke", action="store_true", help="tiny data, one epoch... and three cases: checks the script")
    ap.add_argument("--cases", help="comma-separated labels to run (default: all)")
    ap.add_argument("--out", type=Path, help="the Markdown results file (default bench/results/gpu-<device>.md)")
    args = ap.parse_args()
    if args.device == "cuda":
        from framework_arena.validation import gpu_visible

        if not gpu_visible():
            sys.exit("bench/gpu.py: no GPU is visible here (see `nvidia-smi`); run with --device cpu --smoke to check the script")
        print(
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], capture_output=True, text=True
            ).stdout.strip()
        )
    from framework_arena.runner import run_trial

    if args.smoke:
        size = [
            "data.num_samples=600",
            "trainer.epochs=2",
            "trainer.batch_size=64",
            "trainer.threads=1",
            "trainer.inference_runs=5",
            "trainer.inference_batch_size=128",
            "model=mlp",
        ]
    else:
        size = ["data.num_samples=60000", "trainer.epochs=3", "trainer.batch_size=256", "model=cnn"]
    wanted = args.cases.split(",") if args.cases else (SMOKE_CASES if args.smoke else [c[0] for c in CASES])
    mach = machine()
    rows, lines, start = [], [], time.perf_counter()
    for label, overrides in CASES:
        if label not in wanted:
            continue
        ov = [*overrides, "data=synthetic", "data.shape=[28,28,1]", *size, f"trainer.device={args.device}", "tracking=none"]
        print(f"== {label}", file=sys.stderr, flush=True)
        try:
            result = run_trial(compose(ov), ov)
        except Exception as e:  # noqa: BLE001 - e.g. an extra that is not installed: report and go on
            result = None
            reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        if result is not None and result.status == "FINISHED":
            row = {"case": label, "status": "FINISHED", **{k: round(result.metrics[k], 3) for k in FIGURES if k in result.metrics}}
        else:
            reason = reason if result is None else (result.message or result.status).splitlines()[0]
            row = {"case": label, "status": "SKIPPED", "reason": reason[:300]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    header = "| case | " + " | ".join(FIGURES) + " |"
    lines = [header, "|" + "---|" * (len(FIGURES) + 1)]
    for r in rows:
        cells = [f"{r[k]:,}" if k in r else "-" for k in FIGURES] if r["status"] == "FINISHED" else [f"skipped: {r['reason']}"] + [""] * (len(FIGURES) - 1)
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    setup = f"{'smoke: ' if args.smoke else ''}{' '.join(size)} data=synthetic data.shape=[28,28,1] trainer.device={args.device}; took {time.perf_counter() - start:.0f} s."
    print("\n" + "\n".join(lines) + "\n" + setup)
    out = args.out or RESULTS / f"gpu-{args.device}.md"
    command = "python bench/gpu.py" + (f" --device {args.device}" if args.device != "cuda" else "") + (" --smoke" if args.smoke else "")
    write_results(out, f"GPU path ({args.device})", command, mach, ["## Results", "", setup, "", *lines], rows, os.getloadavg())
    print(f"results: {out}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
