"""The trial's child process: environment first, then the framework, then training.

Started by the runner as ``python -m framework_arena.child`` with the environment of
:func:`environment` (``KERAS_BACKEND``, thread counts, device visibility), so they are in place
before any framework is imported. A plain subprocess rather than ``multiprocessing``: it works the
same inside joblib's loky workers, Ray workers and submitit jobs, whose start methods and
``__main__`` modules a spawned ``multiprocessing`` child would inherit.

Protocol: a JSON line arrives on stdin at once: ``trial`` (the :class:`~framework_arena.trial.Trial`'s
config; nothing is resolved or validated again here), ``cores``, ``started_at`` and ``outbox``
(the launcher's scratch folder for this trial's files; absent or null when untracked). So this
process imports its framework, loads the data and builds the model while the launcher opens the
store and creates the run. A tracked trial then waits for a second line (the run exists) before
it trains: until then nobody reads what it sends, and a full pipe would block a training step
inside the timed loop. After its ``begin`` message it waits for a third (what it sent so far is
logged), so that the launcher's work for it does not run on its cores while it trains. It never
opens the store itself: what it logs goes back as messages
(:class:`~framework_arena.outbox.Outbox`), with the training metrics and the result, as JSON
lines on the original stdout (:data:`framework_arena.contracts.MESSAGES`). Anything the
frameworks print is moved to stderr so it cannot corrupt that channel.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import IO, TYPE_CHECKING, Any, Mapping

from framework_arena.phases import Phases

if TYPE_CHECKING:
    from framework_arena.trial import Trial


def environment(trial: Trial, base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ``base`` plus what must be set before a framework is imported."""
    from framework_arena.cores import thread_env

    env = {**base, **thread_env(trial.trainer.threads)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter buries the progress bar
    if trial.framework == "keras":
        env["KERAS_BACKEND"] = str(trial.backend)
        # Keras writes ~/.keras/keras.json on import; keep that out of the user's home.
        env.setdefault("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".cache", "framework-arena", "keras"))
        if trial.backend == "jax":
            # XLA reads its thread count only at start-up.
            flags = env.get("XLA_FLAGS", "")
            env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={trial.trainer.threads}".strip()
    if trial.trainer.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class _Channel:
    """JSON lines to the parent, one whole line per message."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def send(self, message: list[Any]) -> None:
        self.stream.write(json.dumps(message) + "\n")
        self.stream.flush()


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


class _Reporter:
    """Forwards the callback contract to the parent, and the start and end figures to the run's outbox."""

    def __init__(self, conn: _Channel, logger: Any) -> None:
        self.conn = conn
        self.logger = logger
        self.history: list[dict[str, float]] = []
        self.end_logs: dict[str, float] = {}

    def on_train_begin(self, info: Mapping[str, Any]) -> None:
        if self.logger:
            self.logger.on_train_begin(info)
        self.conn.send(["begin", dict(info)])

    # Step and epoch metrics go to the parent, which sends them to MLflow (tracking.MetricSender):
    # no MLflow request runs in this process.
    def on_step_end(self, step: int, logs: Mapping[str, float]) -> None:
        self.conn.send(["step", step, {k: float(v) for k, v in logs.items()}])

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        logs = {k: float(v) for k, v in logs.items()}  # speed/epoch_samples_per_s once past the warm-up
        self.history.append({"epoch": epoch, **logs})
        self.conn.send(["epoch", epoch, logs])

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        if self.logger:
            self.logger.on_train_end(logs)
        self.end_logs = dict(logs)


def _await_line(stdin: IO[str]) -> None:
    """Waits for the launcher's next line: the run exists (the second line), or what this process
    sent before training is logged (the third). An end of input without it: the launcher could
    not create the run, or is stopping this process."""
    if not stdin.readline():
        raise SystemExit(1)


def _train(trial: Trial, outbox: str | None, conn: _Channel, cores: list[int] | None = None, phases: Phases | None = None) -> dict[str, Any]:
    """Trains the trial; ``outbox``: the launcher's folder for the run's files, None when untracked."""
    from framework_arena.trainers import get_trainer

    phases = phases or Phases()
    start = time.perf_counter()
    trainer_cls = get_trainer(trial.framework)  # imports the framework
    import_time = time.perf_counter() - start
    phases.mark("import")
    summary = _trial(trial, trainer_cls, import_time, outbox, conn, cores or _affinity(), phases)
    summary["phases"] = phases.seconds
    return summary


def _settings(trial: Trial, tracked: bool) -> Any:
    """The trainer's settings, straight from the resolved trial (its schemas filled every default)."""
    from framework_arena.trainers.base import TrainSettings

    tr = trial.trainer
    return TrainSettings(
        tr.epochs,
        tr.batch_size,
        tr.seed,
        tr.threads,
        tr.device,
        dict(trial.optim),
        warmup_steps=tr.warmup_steps,
        precision=tr.precision,
        compile=trial.compile,
        log_every_n_steps=trial.tracking.log_every_n_steps if tracked else 0,
        input_workers=int(trial.data.get("workers", 0)),
        streamed=trial.data["name"] == "shards",
    )


def _affinity() -> list[int]:
    from framework_arena.cores import affinity

    return affinity()


def _trial(trial: Trial, trainer_cls: Any, import_time: float, outbox: str | None, conn: _Channel, cores: list[int], phases: Phases) -> dict[str, Any]:
    from framework_arena import data as data_mod
    from framework_arena import machine, models
    from framework_arena.contention import Meter
    from framework_arena.probe import shape_bug

    if trial.data["name"] == "shards":
        from framework_arena import shards

        data = shards.load(trial.data)
    else:
        data = data_mod.load(trial.data, trial.data["split_seed"])
    phases.mark("data")
    spec = models.build_spec(trial.model, data.input_shape, data.num_classes, data.vocab_size)
    tr = trial.trainer
    trainer = trainer_cls(spec, models.init_weights(spec, tr.seed), _settings(trial, trial.tracking.enabled), trial.backend)

    info: dict[str, Any] = dict(trainer.setup())
    info["num_params"] = trainer.build()
    phases.mark("build")
    logger = None
    if outbox is not None:  # what this process logs goes to the launcher, which logs it (outbox.py)
        from framework_arena.outbox import Outbox

        conn.send(["ready", {}])  # the launcher stops warming up and lets this process train (tracking.relay.warm_up)
        _await_line(sys.stdin)
        logger = Outbox(conn.send, outbox)
    visuals = None
    if logger:  # model summaries now; TensorBoard events at epoch ends, logged with finish()
        from framework_arena.visuals import TrialVisuals

        visuals = TrialVisuals(trainer, spec, trial.tracking.tensorboard, outbox)
    if logger:  # facts about the framework as it ran, logged so that arena-compare reads only runs
        from framework_arena.facts import framework_facts

        fact_tags, fact_metrics = framework_facts(trial.framework, trial.backend)
        logger.set_tags(fact_tags)
        logger.log_metrics(fact_metrics, step=0)
    reporter = _Reporter(conn, logger)
    reporter.on_train_begin(info)
    if logger:  # until the launcher has logged the above, its work would run on these cores beside fit
        _await_line(sys.stdin)
    phases.mark("tracking_start" if logger else "build")
    meter = Meter(cores, tr.threads, gpu=str(info.get("device", "cpu")).lower().startswith(("cuda", "gpu")))
    meter.start()
    trainer.fit(data, visuals.wrap(reporter, logger) if visuals else reporter)
    contention, contention_tags = meter.stop()  # over fit as a whole (contention.py)
    phases.mark("training")
    machine_tags = machine.tags(cores, trial.framework, trial.backend, str(info.get("device", "cpu")))
    if logger:
        logger.set_tags({**contention_tags, **machine_tags})
    info.update({"contended": contention_tags.get("arena.contended_reason", ""), "machine": machine_tags["arena.machine"]})

    input_figures = _input_bound(trainer, data, reporter.end_logs, logger) if data.streamed else {}

    test_loss, test_accuracy = trainer.evaluate(data.test.x, data.test.y)
    phases.mark("evaluation")
    inference = trainer.measure_inference(data.test.x if len(data.test.y) else data.train.x, tr.inference_runs, tr.inference_batch_size)
    phases.mark("inference")
    conn.send(["timed", {}])  # nothing is timed from here on: the launcher draws the learning curves meanwhile
    # Logged here, once: model/num_params went with on_train_begin and the start-up times with on_train_end.
    final = {
        "test/loss": test_loss,
        "test/accuracy": test_accuracy,
        "speed/import_time_s": import_time,
        **inference,
        "memory/peak_rss_mb": _peak_rss_mb(),
        **contention,
        **input_figures,
    }
    gpu_mem = trainer.gpu_peak_mem_mb()
    if gpu_mem is not None:
        final["memory/gpu_peak_mb"] = gpu_mem
    last_epoch = {k: v for k, v in reporter.history[-1].items() if k != "epoch"}  # "epoch" is the step, not a metric
    summary: dict[str, Any] = {"metrics": {**last_epoch, **reporter.end_logs, "model/num_params": float(info["num_params"]), **final}, "info": info}
    if logger:
        logger.log_metrics(final, step=tr.epochs)
        visuals.finish(logger, (data.test.x if len(data.test.y) else data.train.x)[:1], step=tr.epochs)
        phases.mark("final_logging")
        if trial.tracking.log_model:
            example = data.test.x[:5]
            from framework_arena.identity import flatten
            from framework_arena.names import label

            name = f"{label(trial.framework, trial.backend)}-{trial.model['name']}"
            params = dict(flatten(trial.as_dict()))
            # Saved here, logged by the launcher as the run's LoggedModel, which then links every final metric to it.
            logger.log_model(trainer.export(), example, trainer.predict(example), step=tr.epochs, name=name, params=params)
            phases.mark("model_logging")
    # The debugging criterion, last: a failed call can leave a model unusable (Keras on JAX does).
    clarity, probe_message = shape_bug(trainer.predict, data.test.x[:5])
    summary["metrics"].update(clarity)
    if logger:
        logger.log_metrics(clarity, step=tr.epochs)
        logger.log_text(probe_message, "debug_probe.txt")
    phases.mark("probe")
    return summary


#: Training that reaches this share of its input pipeline's own throughput is waiting on input.
INPUT_BOUND_SHARE = 0.8


def _input_bound(trainer: Any, data: Any, end_logs: Mapping[str, float], logger: Any) -> dict[str, float]:
    """The streamed input pipeline's throughput alone, beside training's, and the ``arena.input_bound`` tag.

    Returns:
        ``input/samples_per_s`` and ``input/share`` (training throughput / input throughput;
        near 1: the steps waited for batches).
    """
    input_rate = trainer.measure_input(data.train)
    train_rate = end_logs.get("speed/samples_per_s")
    figures = {"input/samples_per_s": input_rate}
    if train_rate is not None and input_rate > 0:
        figures["input/share"] = train_rate / input_rate
        if logger:
            logger.set_tags({"arena.input_bound": str(figures["input/share"] >= INPUT_BOUND_SHARE).lower()})
    return figures


def main() -> None:
    """Entry point of the child process; exits 0 after sending a result, 1 after an error."""
    # Ctrl-C reaches the whole process group: the parent decides, and terminates us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _Channel(os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8"))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # framework prints go to stderr
    message = json.loads(sys.stdin.readline())
    phases = Phases()
    # From the launcher's clock at the start of this process: the interpreter's start-up and the trial's arrival.
    phases.add("child_start", time.time() - message.get("started_at", time.time()))
    cores = message.get("cores") or []
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)  # before the framework starts its thread pools
    try:
        from framework_arena.trial import Trial

        trial = Trial.from_config(message["trial"])
        summary = _train(trial, message.get("outbox"), channel, cores, phases)
    except BaseException as e:  # noqa: BLE001 - everything is reported, then the process fails
        from framework_arena.contracts import NonFiniteLossError

        reason = "nan_loss" if isinstance(e, NonFiniteLossError) else getattr(e, "arena_reason", "exception")
        error = {"reason": reason, "type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc(), "phases": phases.seconds}
        channel.send(["error", error])
        _exit(1)
    channel.send(["result", summary])
    _exit(0)


def _exit(code: int) -> None:
    """Ends the process without the interpreter's teardown.

    Everything is logged and sent by now; the teardown only unloads the framework, MLflow and
    their imports, which took 3 to 10 s of a 1-epoch torch trial's wall time here (the
    ``exit`` phase, 2026-11, a loaded 2-core machine). No atexit hook of this process has work
    left: it makes no MLflow request and starts no fluent run.
    """
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
