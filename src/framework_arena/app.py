"""Hydra entry point ``arena``: one job = one trial; in a multirun, one child of the sweep's run."""

from __future__ import annotations

import logging
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from framework_arena.config import register_configs
from framework_arena.cores import parallel_trials
from framework_arena.errors import ConfigError, TrackingUnavailable
from framework_arena.interrupts import sigterm_interrupts
from framework_arena.phases import process_age_s
from framework_arena.phases import table as phases_table
from framework_arena.platform import TRIAL_STATS, write_stats
from framework_arena.runner import TrialInterrupted, TrialResult, run_trial
from framework_arena.secrets import redact_text
from framework_arena.sweep import context_for_job, job_started, record_job
from framework_arena.trial import resolve_trial, tracking_target

log = logging.getLogger("arena")

register_configs()


def _summary(result: TrialResult) -> str:
    m = result.metrics
    if result.status == "SKIPPED":
        return f"{result.run_name}: SKIPPED, {result.message} (arena.rerun=true trains it again)"
    lines = [f"{result.run_name}: {result.status} in {result.seconds:.1f} s"]
    if result.status == "FINISHED":
        lines.append(
            f"  val/accuracy {m['val/accuracy']:.4f}  test/accuracy {m['test/accuracy']:.4f}  "
            f"params {int(m['model/num_params']):,}  steady throughput "
            + (f"{m['speed/samples_per_s']:,.0f} samples/s" if "speed/samples_per_s" in m else "n/a (no step timed past the warm-up)")
        )
        if result.info.get("contended"):
            lines.append(f"  CONTENDED (arena.contended=true): {result.info['contended']}; arena-compare leaves its speed figures out")
    else:
        lines.append(f"  reason: {result.reason}: {result.message}")
    if result.cores_shared:
        lines.append(f"  cores {result.cores} SHARED with other trials (arena.cores_shared=true): lower trainer.threads or the launcher's n_jobs")
    if result.run_id:
        lines.append(f"  MLflow run {result.run_id} in {result.tracking_uri}")
        if result.tracking_uri and result.tracking_uri.startswith("sqlite:"):
            lines.append(f"  browse it: mlflow ui --backend-store-uri {result.tracking_uri}")
    return "\n".join(lines)


def _logs_to_stderr() -> None:
    """With JSON output, stdout carries only the JSON: Hydra's console log moves to stderr."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)


def _result_json(result: TrialResult) -> str:
    """The trial's result as one JSON line (``arena.json=true``): for scripts and CI gates."""
    import json

    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    fields = ("status", "run_name", "run_id", "tracking_uri", "reason", "message")
    phases = {**result.child_phases, **result.phases}
    return json.dumps({**{k: getattr(result, k) for k in fields}, "seconds": round(result.seconds, 3), "metrics": metrics, "phases": phases})


def _job() -> tuple[bool, int, list[str], str, int]:
    """(is this a multirun job, its number, its overrides, the sweep dir, trials its launcher runs
    at once on this host); outside Hydra: a single run."""
    try:
        hc = HydraConfig.get()
    except ValueError:  # called through the compose API, not as a Hydra app
        return False, 0, [], "", 1
    multirun = hc.mode == RunMode.MULTIRUN
    launcher = OmegaConf.to_container(hc.launcher, resolve=True) if multirun and hc.get("launcher") is not None else None
    parallel = parallel_trials(launcher) if multirun else 1  # type: ignore[arg-type]
    return multirun, int(hc.job.get("num", 0) or 0), list(hc.overrides.task), str(hc.sweep.dir), parallel


def train_job(cfg: DictConfig) -> float:
    """Trains one trial; returns its ``arena.objective`` (NaN when it failed) for sweepers.

    In a multirun every outcome is recorded (``sweep.record_job``), so the sweep's summary counts
    each job under its own status: INVALID, UNTRACKED (the server could not record it), FAILED,
    KILLED, SKIPPED or FINISHED.
    """
    multirun, job_num, overrides, sweep_dir, parallel = _job()
    record: dict[str, Any] = {"overrides": overrides}
    if multirun:
        job_started(sweep_dir, job_num, overrides)
    if cfg.arena.get("json"):
        _logs_to_stderr()
    try:
        trial = resolve_trial(cfg, parallel)  # validated and resolved once; the child gets exactly this
    except ConfigError as e:
        log.error("%s", e)
        if not multirun:
            sys.exit(2)
        invalid = {**record, "status": "INVALID", "message": str(e)}
        try:
            sweep = context_for_job(tracking_target(cfg), sweep_dir)
        except TrackingUnavailable as lost:  # the record goes to the sweep dir only
            log.error("%s", lost)
            sweep = None
        record_job(sweep, sweep_dir, job_num, invalid)
        if sweep is None and tracking_target(cfg)["name"] == "none":
            sys.exit(2)  # no sweep run, no summary: the exit status says it
        return math.nan  # contained: the other trials of the sweep still run
    try:
        sweep = context_for_job(trial.config["tracking"], sweep_dir) if multirun else None
    except TrackingUnavailable as e:  # the sweep's run cannot be reached: nothing was trained
        log.error("%s", e)
        record_job(None, sweep_dir, job_num, {**record, "status": "UNTRACKED", "message": str(e)})
        return math.nan
    # Before the trial: start-up, composition, validation. In a multirun the process ran other jobs first.
    launch_s = None if multirun else process_age_s()
    try:
        result = run_trial(trial, overrides, sweep, slot=job_num % parallel, launch_s=launch_s)
    except TrialInterrupted as e:
        log.error("Trial stopped by %s; its run is marked KILLED.", e)
        if multirun:
            record_job(sweep, sweep_dir, job_num, {**record, "status": "KILLED", "message": f"stopped by {e}"})
        sys.exit(128 + e.signum)
    except TrackingUnavailable as e:  # before anything was trained: the server cannot record it
        log.error("%s", e)
        if not multirun:
            sys.exit(1)
        record_job(sweep, sweep_dir, job_num, {**record, "status": "UNTRACKED", "message": str(e)})
        return math.nan
    log.info("%s", redact_text(_summary(result)))
    if (trial.config.get("arena") or {}).get("phases"):
        log.info("Where the trial's wall time went (phase/* metrics):\n%s", phases_table(result.phases, result.child_phases, sum(result.phases.values())))
    if trial.json:
        print(redact_text(_result_json(result)), flush=True)
    if sweep is None and result.status == "FINISHED":
        write_stats(trial.config["platform"], {k: result.metrics[k] for k in TRIAL_STATS if k in result.metrics})
    objective = trial.objective
    value = float(result.metrics.get(objective, math.nan)) if result.status in ("FINISHED", "SKIPPED") else math.nan
    if multirun:
        # A run the server could not complete is UNTRACKED whatever the training did: its
        # offline copy holds the rest until arena-sync brings it in.
        status = "UNTRACKED" if result.offline_dir else result.status
        record_job(
            sweep, sweep_dir, job_num, {**record, "status": status, "run_id": result.run_id, "message": result.message if status != "FINISHED" else None}
        )
    if result.status in ("FINISHED", "SKIPPED") and not result.offline_dir:
        return value
    if result.reason == "exception" and result.run_id:
        log.error("The full traceback is the run's error.txt artifact.")
    if multirun:
        return math.nan  # the sweep's summary reports it and sets the exit code
    sys.exit(1)


def compare_job(cfg: DictConfig) -> None:
    """``arena-compare``: ranks the frameworks from the trial runs MLflow holds (conf/compare.yaml)."""
    from framework_arena.compare import settings
    from framework_arena.compare.query import NothingToCompare
    from framework_arena.compare.rank import NoRanking
    from framework_arena.compare.run import compare as run_compare

    try:
        plain = settings.prepare(cfg)
    except ConfigError as e:
        log.error("%s", e)
        sys.exit(2)
    as_json = plain["report"]["format"] == "json"
    if as_json:
        _logs_to_stderr()
    choices = HydraConfig.get().runtime.choices
    output_dir = HydraConfig.get().runtime.output_dir
    try:
        with _own_folder(Path(output_dir) / "comparison") as folder, sigterm_interrupts():
            rep = run_compare(plain, folder, str(choices.get("ranking", "custom")))
    except (NothingToCompare, NoRanking, TrackingUnavailable) as e:  # TrackingUnavailable: also AccessDenied (401, 403), an unreadable store
        log.error("%s", e)
        sys.exit(1)
    except KeyboardInterrupt:
        # The comparison run is created last, from the written report (tracking.log_comparison),
        # and marked KILLED if the interrupt came while it was being filled.
        log.error("arena-compare interrupted: the report in %s may be incomplete; a comparison run it had started is marked KILLED.", output_dir)
        sys.exit(130)
    if as_json:
        from framework_arena.compare.frames import as_json as comparison_json

        print(comparison_json(rep, folder), flush=True)


@contextmanager
def _own_folder(folder: Path) -> Iterator[Path]:
    """``folder`` for this comparison alone, or ``folder-<pid>`` while another running comparison
    holds it (an explicit hydra.run.dir shared, or two started in the same microsecond): two
    comparisons must never write, and upload, each other's files. Rerunning into a folder
    nobody holds reuses it, as before."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel when this process ends
        except BlockingIOError:
            folder = folder.with_name(f"{folder.name}-{os.getpid()}")
        folder.mkdir(exist_ok=True)
        yield folder


# The console scripts. The task functions above stay importable by name, so a launcher that
# pickles them (joblib, Ray) and the Python API (framework_arena.api) run the very same jobs.
_train_app = hydra.main(version_base="1.3", config_path=None, config_name="config")(train_job)


def train() -> None:
    """``arena``: the Hydra app over :func:`train_job`. A single run then ends its process without
    the interpreter's teardown, which only unloads MLflow, Hydra and their imports: 4 to 5 s of a
    1-epoch trial's wall time on this 2-core machine (2026-11, loaded). Log handlers are flushed
    first. A multirun ends normally: its launcher's workers (joblib, Ray) stop in atexit hooks, and
    skipped they would outlive it holding its stdout (a caller reading to the end would wait for
    loky's 5-minute idle timeout). A multirun may come from the command line (``-m``) or from a
    config (``experiment=scaling`` sets ``hydra.mode``), so what decides is whether this process
    still has children once the app returned.
    """
    argv = sys.argv[1:]
    if any(a in ("-m", "--multirun") or a.startswith("hydra.mode=") for a in argv):
        _train_app()
        return
    code: Any = 0
    try:
        _train_app()
    except SystemExit as e:
        code = e.code
    import psutil

    if psutil.Process().children():  # a launcher's workers (a multirun set in a config): their atexit hooks stop them
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints the message and exits 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


compare = hydra.main(version_base="1.3", config_path=None, config_name="compare")(compare_job)
