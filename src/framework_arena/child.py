"""The trial's child process: environment first, then the framework, then training.

Started by the runner as ``python -m framework_arena.child`` with the environment of
:func:`environment` (``KERAS_BACKEND``, thread counts, device visibility), so they are in place
before any framework is imported. A plain subprocess rather than ``multiprocessing``: it works the
same inside joblib's loky workers, Ray workers and submitit jobs, whose start methods and
``__main__`` modules a spawned ``multiprocessing`` child would inherit.

Protocol: the trial arrives as one JSON object on stdin (``cfg``, ``uri``, ``run_id``). Messages
go back as JSON lines on the original stdout: ``["begin", info]``, ``["epoch", epoch, logs]``,
then ``["result", summary]`` or ``["error", details]``. Anything the frameworks print is moved to
stderr so it cannot corrupt that channel.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import IO, Any, Mapping


def environment(cfg: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ``base`` plus what must be set before a framework is imported."""
    env = dict(base)
    threads = str(cfg["trainer"]["threads"])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[var] = threads
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter buries the progress bar
    fw = cfg["framework"]
    if fw["name"] == "keras":
        env["KERAS_BACKEND"] = fw["backend"]
        # Keras writes ~/.keras/keras.json on import; keep that out of the user's home.
        env.setdefault("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".cache", "framework-arena", "keras"))
        if fw["backend"] == "jax":
            # XLA reads its thread count only at start-up.
            flags = env.get("XLA_FLAGS", "")
            env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}".strip()
    if cfg["trainer"]["device"] == "cpu":
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
    """Forwards the callback contract to the run logger and the parent."""

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
    # no MLflow request runs in this process while it trains. The logger keeps a copy for the
    # offline save.
    def on_step_end(self, step: int, logs: Mapping[str, float]) -> None:
        logs = {k: float(v) for k, v in logs.items()}
        if self.logger:
            self.logger.keep(logs, step)
        self.conn.send(["step", step, logs])

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        logs = {k: float(v) for k, v in logs.items()}  # train_samples_per_s once past the warm-up
        if self.logger:
            self.logger.keep(logs, epoch)
        self.history.append({"epoch": epoch, **logs})
        self.conn.send(["epoch", epoch, logs])

    def on_train_end(self, logs: Mapping[str, float]) -> None:
        if self.logger:
            self.logger.on_train_end(logs)
        self.end_logs = dict(logs)


def _train(cfg: Mapping[str, Any], uri: str | None, run_id: str | None, conn: _Channel, offline_dir: str | None = None) -> dict[str, Any]:
    from framework_arena.trainers import get_trainer

    start = time.perf_counter()
    trainer_cls = get_trainer(cfg["framework"]["name"])  # imports the framework
    import_time = time.perf_counter() - start

    logger = None
    if run_id:
        from framework_arena.tracking import RunLogger

        logger = RunLogger(uri, run_id, offline_dir)
    try:
        summary = _trial(cfg, trainer_cls, import_time, logger, conn)
    except BaseException:
        if logger:
            logger.close(raise_if_lost=False)  # the trial's own error is the one to report
        raise
    if logger:
        logger.close()  # the server went away: raises TrackingUnavailable naming the folder that kept the results
    return summary


def _trial(cfg: Mapping[str, Any], trainer_cls: Any, import_time: float, logger: Any, conn: _Channel) -> dict[str, Any]:
    from framework_arena import data as data_mod
    from framework_arena import models
    from framework_arena.probe import shape_bug
    from framework_arena.trainers.base import TrainSettings

    if logger and cfg["tracking"].get("system_metrics"):
        logger.start_system_metrics()

    data = data_mod.load(cfg["data"], cfg["data"]["split_seed"])
    spec = models.build_spec(cfg["model"], data.input_shape, data.num_classes)
    tr = cfg["trainer"]
    optim = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False, **cfg["optim"]}
    settings = TrainSettings(
        tr["epochs"],
        tr["batch_size"],
        tr["seed"],
        tr["threads"],
        tr["device"],
        optim,
        warmup_steps=tr.get("warmup_steps"),
        precision=tr.get("precision", "fp32"),
        compile=bool(cfg["framework"].get("compile", False)),
        log_every_n_steps=int(cfg["tracking"].get("log_every_n_steps", 0)) if logger else 0,
    )
    trainer = trainer_cls(spec, models.init_weights(spec, tr["seed"]), settings, cfg["framework"].get("backend"))

    info: dict[str, Any] = dict(trainer.setup())
    info["num_params"] = trainer.build()
    if cfg["framework"]["name"] == "keras":
        info["backend"] = cfg["framework"]["backend"]
    if logger:  # facts about the framework as it ran, logged so that arena-compare reads only runs
        from framework_arena.facts import framework_facts

        fact_tags, fact_metrics = framework_facts(cfg["framework"]["name"], cfg["framework"].get("backend"))
        logger.set_tags(fact_tags)
        logger.log_metrics(fact_metrics, step=0)
    reporter = _Reporter(conn, logger)
    reporter.on_train_begin(info)
    trainer.fit(data, reporter)

    test_loss, test_accuracy = trainer.evaluate(data.test.x, data.test.y)
    inference = trainer.measure_inference(data.test.x if len(data.test.y) else data.train.x, tr.get("inference_runs", 20), tr.get("inference_batch_size", 1024))
    final = {
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "num_params": float(info["num_params"]),
        "import_time_s": import_time,
        "time_to_first_step_s": reporter.end_logs["time_to_first_step_s"],
        "compile_time_s": reporter.end_logs["compile_time_s"],
        **inference,
        "peak_rss_mb": _peak_rss_mb(),
    }
    gpu_mem = trainer.gpu_peak_mem_mb()
    if gpu_mem is not None:
        final["gpu_peak_mem_mb"] = gpu_mem
    epochs = tr["epochs"]
    summary: dict[str, Any] = {"metrics": {**reporter.history[-1], **reporter.end_logs, **final}, "info": info}
    if logger:
        logger.log_metrics(final, step=epochs)
        logger.log_learning_curves(reporter.history, f"{cfg['framework']['name']} {cfg['model']['name']} on {cfg['data']['name']}")
        if cfg["tracking"].get("log_model", True):
            example = data.test.x[:5]
            summary["model_uri"] = logger.log_model(trainer.export(), example, trainer.predict(example), step=epochs)
    # The debugging criterion, last: a failed call can leave a model unusable (Keras on JAX does).
    clarity, probe_message = shape_bug(trainer.predict, data.test.x[:5])
    summary["metrics"].update(clarity)
    if logger:
        logger.log_metrics(clarity, step=epochs)
        logger.log_text(probe_message, "debug_probe.txt")
    return summary


def main() -> None:
    """Entry point of the child process; exits 0 after sending a result, 1 after an error."""
    # Ctrl-C reaches the whole process group: the parent decides, and terminates us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _Channel(os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8"))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # framework prints go to stderr
    trial = json.load(sys.stdin)
    try:
        summary = _train(trial["cfg"], trial["uri"], trial["run_id"], channel, trial.get("offline_dir"))
    except BaseException as e:  # noqa: BLE001 - everything is reported, then the process fails
        from framework_arena.contracts import NonFiniteLossError

        reason = "nan_loss" if isinstance(e, NonFiniteLossError) else getattr(e, "arena_reason", "exception")
        channel.send(["error", {"reason": reason, "type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}])
        sys.exit(1)
    channel.send(["result", summary])


if __name__ == "__main__":
    main()
