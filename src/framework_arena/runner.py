"""One trial: validate, create the run, train in a spawned child, and always set a final status.

The parent never imports a framework. It watches the child through its stdout (progress bar, last
metrics; see ``child.py``) and through its exit code, so an exception, a NaN loss, a segfault or a kill of the child
ends the run FAILED, and SIGINT/SIGTERM to the trial end it KILLED. No run is left RUNNING.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from omegaconf import DictConfig
from tqdm.auto import tqdm

from framework_arena.child import environment
from framework_arena.cores import Allocation, allocate, pinned
from framework_arena.metric_names import current
from framework_arena.phases import Phases, as_metrics
from framework_arena.secrets import redact_text
from framework_arena.sweep import SweepContext
from framework_arena.trial import Trial, resolve_trial

log = logging.getLogger(__name__)

KILL_GRACE_S = 10.0  # how long a terminated child gets before SIGKILL


@dataclass
class TrialResult:
    """What a trial ended with; ``metrics`` holds the last epoch's and the final figures."""

    status: str  # FINISHED | FAILED | KILLED, or SKIPPED (a sweep found a FINISHED twin)
    run_name: str
    run_id: str | None = None
    tracking_uri: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # nan_loss | exception | crash | signal
    message: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # from the trainer: framework_version, device
    cores: list[int] = field(default_factory=list)  # the cores it ran on (arena.cores)
    cores_shared: bool = False  # other trials held some of them (arena.cores_shared)
    offline_dir: str | None = None  # set when the server lost part of the run: what it lacks is kept there (arena-sync)
    phases: dict[str, float] = field(default_factory=dict)  # the launcher's wall time by phase (phases.LAUNCHER)
    child_phases: dict[str, float] = field(default_factory=dict)  # the child's (phases.CHILD), overlapping the launcher's


class TrialInterrupted(BaseException):
    """SIGINT or SIGTERM reached the trial's process."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turns SIGINT/SIGTERM into :class:`TrialInterrupted` while the child runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        raise TrialInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _tags(trial: Trial, overrides: Sequence[str]) -> dict[str, str]:
    """The run's identity, set once at its creation (the child adds only what it measures)."""
    tags = {
        "arena.kind": "trial",
        "arena.framework": trial.framework,
        "arena.model": trial.model["name"],
        "arena.data": trial.data["name"],
        "arena.optim": trial.optim["name"],
        "arena.config_hash": trial.config_hash,
        "arena.overrides": " ".join(overrides),
        "mlflow.source.name": "arena",
    }
    if trial.backend:
        tags["arena.backend"] = trial.backend
    return tags


def _classify_exit(exitcode: int | None) -> tuple[str, str, str]:
    """(status, reason, message) for a child that ended without reporting a result."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode in (signal.SIGTERM, signal.SIGINT):
            return "KILLED", "signal", f"the trial's process was stopped by {name}"
        return "FAILED", "crash", f"the trial's process died from {name} (a crash or an out-of-memory kill)"
    return "FAILED", "crash", f"the trial's process exited with code {exitcode} without a result"


class _Progress:
    """A per-epoch progress bar fed by the child's messages."""

    def __init__(self, name: str, epochs: int) -> None:
        self.bar = tqdm(total=epochs, desc=name, unit="epoch", leave=True, dynamic_ncols=True)

    def epoch(self, logs: Mapping[str, float]) -> None:
        self.bar.set_postfix(loss=f"{logs['train/loss']:.4f}", val_acc=f"{logs['val/accuracy']:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _messages(proc: subprocess.Popen[bytes]) -> Iterator[list[Any]]:
    """The child's JSON-line messages until it closes its end (it exited or died)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    while True:
        # A timeout, so that a signal handler gets to run even while the child is silent.
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _watch(
    proc: subprocess.Popen[bytes],
    progress: _Progress,
    result: TrialResult,
    relay: Any = None,
    phases: Phases | None = None,
    on_timed: Callable[[list[dict[str, float]]], None] | None = None,
) -> dict[str, Any] | None:
    """Relays the child's messages until it exits; returns its summary, or None.

    ``relay`` (a :class:`~framework_arena.tracking.relay.RunRelay`) logs what the child reports:
    metrics, tags, texts, artifacts, its saved model; ``on_timed`` gets the epochs' logs once
    the child has timed everything it times (the learning curves are drawn then, beside the
    child's model export, never beside its timing); ``phases`` closes ``child`` at the child's
    last message and ``exit`` when it has exited.
    """
    phases = phases or Phases()
    history: list[dict[str, float]] = []
    summary = None
    for msg in _messages(proc):
        if msg[0] == "epoch":
            history.append({"epoch": msg[1], **msg[2]})
            result.metrics.update(msg[2])
            progress.epoch(msg[2])
        if msg[0] == "begin" and relay is not None:
            # What the child logged before training (its start tags, facts, model summaries) is
            # in the store now, and the child waits for this line before it trains: none of this
            # process's logging runs on the trial's cores while it is timed (contention.py). A
            # 0.1 s fit was flagged contended by it, other work 10-24% of its cores.
            relay.sender.flush()
            _send(proc, {"logged": True})
            _close_stdin(proc)
        if msg[0] == "model" and relay is not None:
            phases.mark("child")
            relay.handle_message(msg)
            phases.mark("model_upload")
        elif relay is not None and relay.handle_message(msg):
            pass
        elif msg[0] == "timed" and on_timed is not None and history:
            phases.mark("child")
            on_timed(history)
            phases.mark("plots")
        elif msg[0] == "result":
            summary = msg[1]
            result.child_phases = dict(summary.pop("phases", {}))
            phases.mark("child")
        elif msg[0] == "error":
            err = msg[1]
            result.status, result.reason = "FAILED", err["reason"]
            result.message = f"{err['type']}: {err['message']}"
            result.traceback = err["traceback"]
            result.child_phases = dict(err.get("phases", {}))
            phases.mark("child")
    _close_stdin(proc)  # a child that ended before its "begin" never got the "logged" line
    # The rest of the child's life after its last message is its exit; a child that died without one spent it all as the child.
    phases.mark("exit" if "child" in phases.seconds else "child")
    proc.wait()
    phases.mark("exit")
    return summary


def run_trial(
    cfg: Trial | DictConfig | Mapping[str, Any], overrides: Sequence[str] = (), sweep: SweepContext | None = None, slot: int = 0, launch_s: float | None = None
) -> TrialResult:
    """Runs one trial in a fresh child process and tracks it.

    Args:
        cfg: the resolved :class:`~framework_arena.trial.Trial`, or a composed config (``framework``,
            ``model``, ``data``, ``optim``, ``trainer``, ``tracking``) to resolve here.
        overrides: the command-line overrides, recorded as a tag.
        sweep: the multirun this trial belongs to: its run becomes a child of the sweep's run,
            and it is skipped when a FINISHED run with the same config hash exists.
        slot: which share of the cores to try first (``cores.allocate``): a parallel job's number
            modulo the trials running at once.
        launch_s: the seconds this process spent before the trial (start-up, composition): the
            ``launch`` phase; None where the process ran other jobs before (a multirun).

    Returns:
        The trial's result; raises :class:`~framework_arena.errors.ConfigError` before creating
        anything when a value is wrong, and :class:`TrialInterrupted` after marking the run KILLED.
    """
    phases = Phases()
    if launch_s is not None:
        phases.add("launch", launch_s)
    trial = cfg if isinstance(cfg, Trial) else resolve_trial(cfg)
    from framework_arena.tracking import http_settings

    # The trial's cores, held until it ends (released by the kernel if this process dies); the
    # server's timeouts for this process and the child, fail-fast when it is gone, for the trial only.
    with (
        allocate(trial.trainer.threads, slot) as allocation,
        pinned(allocation.cores),  # this process's work for the trial stays off a parallel trial's cores
        http_settings(trial.config["tracking"] if trial.tracking.enabled else {}),
    ):
        return _run(trial, overrides, sweep, allocation, phases)


def _run(trial: Trial, overrides: Sequence[str], sweep: SweepContext | None, allocation: Allocation, phases: Phases) -> TrialResult:
    # The child's files for the run (its visuals, its saved model) wait here until they are logged
    # (or copied offline); removed once the trial has ended, whatever way.
    outbox = tempfile.mkdtemp(prefix="arena-trial-") if trial.tracking.enabled else None
    try:
        return _run_with(trial, overrides, sweep, allocation, phases, outbox)
    finally:
        if outbox is not None:
            shutil.rmtree(outbox, ignore_errors=True)


def _run_with(trial: Trial, overrides: Sequence[str], sweep: SweepContext | None, allocation: Allocation, phases: Phases, outbox: str | None) -> TrialResult:
    name = trial.run_name
    result = TrialResult(status="RUNNING", run_name=name, cores=allocation.cores, cores_shared=allocation.shared)

    run = None
    offline = None
    relay = None
    start = time.perf_counter()
    progress = _Progress(redact_text(name), trial.trainer.epochs)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with _signals_raise():
            # The child first, so that it imports its framework, loads the data and builds the
            # model while this process opens the store and creates the run; a tracked child waits
            # for the second line (the run exists) before it trains. It never opens the store:
            # what it logs comes back as messages (child.py).
            started_at = time.time()  # the child's clock agrees: its child_start phase is measured from here
            proc = subprocess.Popen(
                [sys.executable, "-m", "framework_arena.child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment(trial, os.environ),
            )
            _send(proc, {"trial": trial.as_dict(), "cores": allocation.cores, "started_at": started_at, "outbox": outbox})
        # Outside the handler, as before the child existed: Ctrl-C while the run is being filled
        # marks it KILLED (RunHandle.filling); a run that could not be created is not this
        # trial's (``run`` stays None: nothing to finish), and the child is stopped below.
        if trial.tracking.enabled:
            from framework_arena.tracking import RunHandle, offline_dir
            from framework_arena.tracking.relay import RunRelay, warm_up

            handle = RunHandle(trial.tracking.uri, trial.tracking.experiment)
            tags = _tags(trial, overrides)
            if sweep is not None:
                twin = None if trial.rerun else handle.find_finished(tags["arena.config_hash"])
                if twin is not None:  # resume: this exact trial already finished in this experiment
                    _stop(proc)
                    result.status, result.run_id, result.tracking_uri = "SKIPPED", twin.info.run_id, handle.uri
                    result.metrics = current(twin.data.metrics)
                    result.message = f"run {twin.info.run_id} already FINISHED with config_hash {tags['arena.config_hash']}"
                    phases.mark("run_create")
                    result.phases = phases.seconds
                    return result
                tags.update({"mlflow.parentRunId": sweep.parent_run_id, "arena.sweep_id": sweep.sweep_id})
            tags.update(allocation.tags())
            result.run_id = handle.start(name, tags, trial.as_dict())
            run, result.tracking_uri = handle, handle.uri
            offline = offline_dir(result.run_id)
            relay = RunRelay(handle, offline, trial.tracking.system_metrics)
            phases.mark("run_create")
            # Before the child trains (it waits for the line below), and only while it is not ready to.
            warm_up(trial.tracking.plots, trial.tracking.log_model, stop=lambda: _has_spoken(proc))
            phases.mark("warm_up")
        else:
            phases.mark("run_create")  # untracked: the child's start, as the phase's place in the order
        with _signals_raise():
            if run is not None:
                _send(proc, {"run_id": result.run_id})  # its stdin stays open for the "logged" line (_watch)
            else:
                _close_stdin(proc)
            title = f"{trial.framework} {trial.model['name']} on {trial.data['name']}"
            on_timed = (lambda history: run.log_learning_curves(history, title, offline)) if run is not None and trial.tracking.plots else None
            summary = _watch(proc, progress, result, relay, phases, on_timed)
    except TrialInterrupted as e:
        _stop(proc)
        _close(relay, quiet=True)
        result.status, result.reason, result.message = "KILLED", "signal", f"stopped by {e}"
        result.seconds = time.perf_counter() - start
        _finish(run, result, trial, sweep, offline, phases)
        raise
    except BaseException as e:  # our own bug or the OS: still never leave the run RUNNING
        _stop(proc)
        _close(relay, quiet=True)
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C while the run was being created, outside the handler
            result.status, result.reason, result.message = "KILLED", "signal", "stopped by SIGINT"
        else:
            result.status, result.reason, result.message = "FAILED", "exception", f"arena failed while running the trial: {e!r}"
        _finish(run, result, trial, sweep, offline, phases)
        raise
    finally:
        progress.close()
    try:
        _close(relay)
        phases.mark("metrics_flush")
    except Exception as e:  # strict mode: a request MLflow refused; the run still gets a status
        result.status, result.reason, result.message = "FAILED", "exception", f"arena could not send the metrics: {e!r}"
        _finish(run, result, trial, sweep, offline, phases)
        raise
    result.seconds = time.perf_counter() - start
    if summary is not None and proc.returncode == 0 and relay is not None and relay.lost is not None:
        # Trained to the end; the store missed part of it, which the relay kept on disk (arena-sync).
        from framework_arena.tracking import unavailable

        kept = relay.keep_offline()
        result.metrics.update(summary["metrics"])
        result.info = summary.get("info", {})
        error = unavailable(run.uri, relay.lost, f"Nothing trained is lost: {kept} are saved in {offline}")
        result.status, result.reason, result.message = "FAILED", error.arena_reason, f"{type(error).__name__}: {error}"
    elif summary is not None and proc.returncode == 0:
        result.status = "FINISHED"
        result.metrics.update(summary["metrics"])
        result.info = summary.get("info", {})
        _link_model(run, result, relay.model_id if relay is not None else None, trial)
    elif result.status == "RUNNING":
        result.status, result.reason, result.message = _classify_exit(proc.returncode)
    _finish(run, result, trial, sweep, offline, phases)
    return result


def _has_spoken(proc: subprocess.Popen[bytes] | None) -> bool:
    """Whether the child has written to its channel (a tracked child's first message is ``ready``,
    sent when it waits for the run; an end of input, if it died, counts too)."""
    return proc is None or proc.stdout is None or bool(select.select([proc.stdout.fileno()], [], [], 0)[0])


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    """Ends the child's input: it expects no more lines (a child still waiting for one exits)."""
    if proc.stdin is not None and not proc.stdin.closed:
        with suppress(BrokenPipeError):
            proc.stdin.close()


def _send(proc: subprocess.Popen[bytes], message: Mapping[str, Any]) -> None:
    """One JSON line to the child's stdin (child.py reads them one at a time)."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # the child ended already (an error in its start): its messages and exit code say why


def _link_model(run: Any, result: TrialResult, model_id: str | None, trial: Trial) -> None:
    """Links every final metric to the trial's LoggedModel, once all have arrived (the child's and
    the ones this process sent), and registers it with ``tracking.register=true``."""
    if run is None or not model_id:
        return
    from framework_arena.names import label
    from framework_arena.tracking.models import default_registered_name, link_final_metrics, register

    run.guard.call("link the final metrics to the model", link_final_metrics, run.client, result.run_id, model_id)
    if trial.tracking.register:
        name = trial.tracking.registered_model or default_registered_name(
            str(trial.tracking.experiment), label(trial.framework, trial.backend), trial.model["name"]
        )
        version = run.guard.call("register the model", register, run.client, model_id, name, result.run_id, {"arena.run_name": result.run_name})
        if version is not None:
            run.guard.call("tag the registered version", run.set_tags, {"arena.registered_model": f"{name}/{version.version}"})


def _close(relay: Any, quiet: bool = False) -> None:
    """Sends the last metrics (and keeps the offline copy of a lost server's run) before the run's
    status is set; ``quiet`` while another error is on its way (a metrics error must not hide it)."""
    if relay is None:
        return
    try:
        relay.close()
    except Exception as e:  # noqa: BLE001 - only strict mode raises here
        if not quiet:
            raise
        log.warning("Could not send the last metrics of run %s: %s", relay.run_id, e)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _finish(run: Any, result: TrialResult, trial: Trial, sweep: SweepContext | None, offline: str | None, phases: Phases) -> None:
    """Records the run's description, why a trial did not finish and where its time went
    (``phase/*``), then sets its final status.

    Every request goes through the run's guard (tracking.policy): a failed description or tag
    never keeps the run from its status; a lost server does, and then the message says so.
    """
    if run is None:
        phases.mark("finish")
        result.phases = phases.seconds
        return
    guard = run.guard
    tags = _note(run, result, trial, sweep)
    if result.status != "FINISHED":
        tags.update({"arena.failure_reason": result.reason or "unknown", "arena.error": result.message or ""})
    if tags:
        guard.call("record the run's description and outcome", run.set_tags, tags)
    if result.status != "FINISHED" and result.traceback:
        guard.call("log error.txt", run.log_text, result.traceback, "error.txt")
    phases.mark("finish")
    result.phases = phases.seconds
    figures = as_metrics({**result.child_phases, **result.phases, "total": sum(result.phases.values())})
    guard.call("record where the time went", run.log_metrics, figures)
    guard.call(f"mark the run {result.status}", run.end, result.status)
    if (guard.lost is not None or result.reason == "tracking") and offline:
        _keep_outcome(run, result, tags, offline)


def _keep_outcome(run: Any, result: TrialResult, tags: Mapping[str, str], offline: str) -> None:
    """The server lost part of the run (the child's results, or its final status): writes the
    outcome beside the child's offline copy, and says how ``arena-sync`` brings both in."""
    from framework_arena.tracking.offline import write_outcome

    # reason "tracking": the child trained to the end and kept everything; only the store missed it.
    status = "FINISHED" if result.reason == "tracking" else result.status
    write_outcome(offline, run.uri, str(result.run_id), status, {} if status == "FINISHED" else tags)
    result.offline_dir = offline
    state = "stays RUNNING" if run.guard.lost is not None else f"is marked {result.status}"
    log.error(
        "Run %s %s in %s: the server was unreachable, so part of it is kept in %s. Once the server answers, "
        "`arena-sync %s` uploads it into the run and marks it %s.",
        result.run_id,
        state,
        redact_text(run.uri),
        offline,
        offline,
        status,
    )


def _note(run: Any, result: TrialResult, trial: Trial, sweep: SweepContext | None) -> dict[str, str]:
    """The run's description (``mlflow.note.content``): config and result in a few Markdown lines."""
    from framework_arena.notes import NOTE_TAG, trial_note

    parent = sweep.parent_run_id if sweep is not None else None
    note = run.guard.call(
        "write the run's description",
        lambda: trial_note(
            trial.config,
            result.metrics,
            result.status,
            parent,
            experiment_id=run.experiment_id,
            framework_version=result.info.get("framework_version"),
            message=result.message,
        ),
    )
    return {NOTE_TAG: note} if note is not None else {}
