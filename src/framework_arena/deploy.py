"""The serving benchmark: each group's best model served by MLflow's own scoring server, timed.

``arena-compare deploy=true`` takes each group's best trial (highest ``val/accuracy``), downloads
its LoggedModel, starts ``mlflow models serve --env-manager local`` on it on a free loopback port,
and times it as a deploying user would call it: seconds to the first successful ``/ping``, p50 and
p95 latency over ``serve.requests`` sequential requests of 1 and of 64 rows, rows per second at
1,024 rows, the folder's size and its pinned requirements. The figures go to the trial's run as
``serve_*`` metrics (``tracking.serving``), so the ``deployment`` criterion reads them from runs.

Every server is started in a session of its own and stopped by its process group id (the
``mlflow`` CLI starts ``uvicorn`` as its child) in a ``finally``: on errors and Ctrl-C too. A
model that does not serve is reported with the tail of the server's log, after at most
``serve.startup_timeout_s``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from framework_arena.cores import thread_env
from framework_arena.interrupts import sigterm_interrupts
from framework_arena.ports import free_port

log = logging.getLogger("arena.deploy")

HOST = "127.0.0.1"  # loopback only: the benchmark never opens a port to the network
STOP_GRACE_S = 10.0
#: How each flavor's pyfunc answers a request (mlflow 3.17), said in the report.
FLAVOR_NOTES = {
    "mlflow.pytorch": "stock mlflow.pytorch flavor (module called under no_grad)",
    "mlflow.tensorflow": "stock mlflow.tensorflow flavor (SavedModel signature called)",
    "mlflow.keras": "stock mlflow.keras flavor (model.predict per request: a dataset and a progress bar each time)",
}


class ServeError(RuntimeError):
    """The model did not serve; the message ends with the server's log tail."""


@dataclass
class Served:
    """One group's serving benchmark: figures on success, the error and log tail otherwise."""

    group: str
    run_id: str
    model_id: str | None = None
    flavor: str = ""
    keras_backend: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    pids: list[int] = field(default_factory=list)  # the server processes it started (all stopped)


def scoring_env(base: Mapping[str, str], keras_backend: str | None) -> dict[str, str]:
    """The server's environment: this Python's ``bin`` first on PATH (``mlflow models serve`` runs
    ``uvicorn`` by name) and ``KERAS_BACKEND`` as the model recorded it (MLflow records it in
    ``MLmodel`` but does not apply it: a Keras-on-torch model would load on TensorFlow)."""
    env = dict(base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class ScoringServer:
    """``mlflow models serve`` on one model folder, on ``127.0.0.1:<free port>``, logging to ``log_path``."""

    def __init__(self, folder: Path, log_path: Path, keras_backend: str | None, threads: int = 1) -> None:
        self.folder, self.log_path, self.keras_backend = folder, log_path, keras_backend
        self.port = free_port(HOST)
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        exe = str(Path(sys.executable).with_name("mlflow"))
        cmd = [exe, "models", "serve", "-m", str(self.folder), "--env-manager", "local", "-h", HOST, "-p", str(self.port), "-w", "1"]
        env = {**scoring_env(os.environ, self.keras_backend), **thread_env(self.threads)}
        with open(self.log_path, "wb") as out:
            # A session of its own: the group id is this pid, and stop() ends uvicorn with it.
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from start to the first ``/ping`` answered 200; raises :class:`ServeError` on exit or timeout."""
        assert self.proc is not None
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            if self.proc.poll() is not None:
                raise ServeError(f"the scoring server exited with code {self.proc.returncode} before answering /ping.\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise ServeError(f"the scoring server did not answer /ping within serve.startup_timeout_s={timeout_s:g} s.\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminates the server's process group, then kills it after :data:`STOP_GRACE_S`."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                # uvicorn may outlive the CLI by a moment: the group is gone when killpg(0) fails.
                deadline = time.perf_counter() + wait
                while time.perf_counter() < deadline:
                    os.killpg(self.proc.pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "server log (last lines):\n" + "\n".join(text.splitlines()[-lines:])


class Client:
    """Sequential ``POST /invocations`` over one keep-alive connection, as a caller in a loop would."""

    def __init__(self, port: int, timeout_s: float) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)

    def predict(self, rows: np.ndarray) -> tuple[float, int]:
        """Seconds for one request with ``rows`` (the ``{"inputs": ...}`` form), and the rows answered."""
        body = json.dumps({"inputs": rows.tolist()})
        start = time.perf_counter()
        self.conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise ServeError(f"POST /invocations with {len(rows)} rows answered {response.status}: {payload[:500]!r}")
        return elapsed, len(json.loads(payload)["predictions"])

    def close(self) -> None:
        self.conn.close()


def rows_like(example: Sequence[Any], n: int) -> np.ndarray:
    """``n`` rows made of the model's own serving example (float32, the data's shape, scaled)."""
    base = np.asarray(example, dtype=np.float32)
    return np.resize(base, (n, *base.shape[1:])).astype(np.float32)


def time_requests(client: Client, example: Sequence[Any], settings: Mapping[str, Any]) -> dict[str, float]:
    """Latency p50/p95 at 1 and 64 rows over ``serve.requests`` requests each (after one warm-up),
    and rows per second over ``serve.throughput_requests`` requests of 1,024 rows."""
    figures: dict[str, float] = {}
    for n in (1, 64):
        rows = rows_like(example, n)
        client.predict(rows)  # warm-up: the first call traces or builds
        times = []
        for _ in range(int(settings["requests"])):
            seconds, answered = client.predict(rows)
            if answered != n:
                raise ServeError(f"POST /invocations with {n} rows answered {answered} predictions")
            times.append(seconds)
        figures[f"serve/latency_ms_p50_{n}row"] = float(np.percentile(times, 50) * 1e3)
        figures[f"serve/latency_ms_p95_{n}row"] = float(np.percentile(times, 95) * 1e3)
    rows = rows_like(example, 1024)
    client.predict(rows)
    total = sum(client.predict(rows)[0] for _ in range(int(settings["throughput_requests"])))
    figures["serve/rows_per_s_1024row"] = 1024 * int(settings["throughput_requests"]) / total
    return figures


def best_trial(trials: Sequence[Any]) -> Any:
    """The group's best trial: highest ``val/accuracy`` (the sweep objective), then the first."""
    return max(trials, key=lambda t: t.metrics.get("val/accuracy", float("-inf")))


def serve_one(uri: str, group: str, trial: Any, settings: Mapping[str, Any], folder: Path) -> Served:
    """Downloads, serves, times and stops one trial's model; logs the figures on its run."""
    from framework_arena.tracking.serving import fetch_model, log_serving, model_facts

    served = Served(group, trial.run_id)
    fetched = fetch_model(uri, trial.run_id, folder / "model")
    if fetched is None:
        served.error = "the run logged no model (tracking.log_model=false?)"
        return served
    served.model_id, model_dir = fetched
    facts = model_facts(model_dir)
    served.flavor = facts["loader_module"]
    served.keras_backend = facts["keras_backend"]
    if facts["serving_input"] is None:
        served.error = "the model has no serving_input_example.json to build requests from"
        return served
    server = ScoringServer(model_dir, folder / "server.log", facts["keras_backend"], int(settings["threads"]))
    client = None
    try:
        server.start()
        served.pids.append(server.pid or 0)
        startup = server.wait_ready(float(settings["startup_timeout_s"]))
        client = Client(server.port, float(settings["request_timeout_s"]))
        served.metrics = {"serve/startup_s": startup, **time_requests(client, facts["serving_input"]["inputs"], settings)}
    except (ServeError, OSError, http.client.HTTPException, ValueError, KeyError) as e:  # an answer we cannot read is a failure to serve
        served.error = str(e) if isinstance(e, ServeError) else f"{e!r}\n{server.log_tail()}"
    finally:
        if client is not None:
            client.close()
        server.stop()
        # The model was only a copy to serve: the report (and the comparison run's artifacts) keep the log, not the model again.
        shutil.rmtree(folder / "model", ignore_errors=True)
    if served.error:
        return served
    served.metrics.update({"serve/model_size_mb": facts["size_mb"], "serve/pinned_requirements": float(facts["pinned_requirements"])})
    tags = {"arena.serve_flavor": FLAVOR_NOTES.get(served.flavor, served.flavor)}
    if served.keras_backend:
        tags["arena.serve_keras_backend"] = served.keras_backend
    try:
        log_serving(uri, trial.run_id, served.model_id, served.metrics, tags)
    except Exception as e:  # noqa: BLE001 - the figures stay in the report; the run just lacks them
        log.warning("Could not log the serving figures on run %s: %s", trial.run_id, e)
    trial.metrics.update(served.metrics)  # the comparison in progress ranks on them too
    trial.tags.update(tags)
    return served


def serve_best(uri: str, groups: Mapping[str, Sequence[Any]], settings: Mapping[str, Any], out_dir: Path) -> list[Served]:
    """Serves and times each group's best trial, one server at a time; writes ``serving.json`` in ``out_dir``.

    Args:
        uri: the tracking URI the trials are in.
        groups: group name -> its trials (``compare.query.Trial``); the best one's ``metrics`` and
            ``tags`` get the ``serve_*`` figures.
        settings: ``serve.*`` (requests, throughput_requests, startup_timeout_s, request_timeout_s, threads).
        out_dir: the report's folder; each model and server log go to ``serving/<group>/``.
    """
    results: list[Served] = []
    with sigterm_interrupts():
        for group, trials in groups.items():
            trial = best_trial(trials)
            folder = out_dir / "serving" / group.replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            log.info("Serving %s's best model (run %s) through mlflow models serve...", group, trial.run_id)
            served = serve_one(uri, group, trial, settings, folder)
            if served.error:
                log.error("%s's model did not serve: %s", group, served.error)
            else:
                m = served.metrics
                log.info(
                    "%s: ready in %.1f s; p50 %.1f ms (1 row), %.1f ms (64 rows); %.0f rows/s at 1,024",
                    group,
                    m["serve/startup_s"],
                    m["serve/latency_ms_p50_1row"],
                    m["serve/latency_ms_p50_64row"],
                    m["serve/rows_per_s_1024row"],
                )
            results.append(served)
    (out_dir / "serving.json").write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")
    return results
