"""Shared fixtures: a real temporary MLflow store per test, real Hydra composition, real training."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

# Tracking errors must fail tests, never be swallowed (see tracking.strict).
os.environ["ARENA_STRICT_TRACKING"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# Before MLflow is imported: its telemetry client exports a session id into os.environ at import
# and unsets it when re-initialized, which the environment check below reports as a leak.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

#: (framework, backend) pairs that can run here; jax only where it is installed.
FRAMEWORKS: list[tuple[str, str | None]] = [("torch", None), ("tensorflow", None), ("keras", "tensorflow"), ("keras", "torch")]
if importlib.util.find_spec("jax") is not None:
    FRAMEWORKS.append(("keras", "jax"))


def framework_overrides(framework: str, backend: str | None) -> list[str]:
    return [f"framework={framework}"] + ([f"framework.backend={backend}"] if backend else [])


def framework_id(fb: tuple[str, str | None]) -> str:
    return fb[0] + (f"-{fb[1]}" if fb[1] else "")


def compose(overrides: Sequence[str] = ()):
    """Composes the real config tree as ``arena`` would, with ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from framework_arena.config import register_configs

    register_configs()
    with initialize_config_module(config_module="framework_arena.conf", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


#: The variables that steer a later ``arena`` process or MLflow call: a test must not leave them
#: changed. (Libraries set others on import, e.g. scikit-learn's KMP_*: harmless, not ours.)
STEERING = ("MLFLOW_", "ARENA_", "HYDRA_", "KERAS_", "TF_", "XLA_", "OMP_", "MKL_", "CUDA_", "DOMINO_", "SLURM_", "PATH", "PYTHONPATH")


@pytest.fixture(autouse=True)
def environment_left_as_found():
    """Fails a test whose code changed a steering variable in ``os.environ`` and did not put it back.

    A leaked variable changes every later test: MLflow's ``set_tracking_uri`` exports
    ``MLFLOW_TRACKING_URI``, so one in-process call sent the next ``arena`` subprocess's runs to
    another test's store (CI went red on exactly that). ``monkeypatch`` restores before this runs.
    """
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    keys = {k for k in set(before) | set(after) if k.startswith(STEERING)}
    leaked = sorted(k for k in keys if before.get(k) != after.get(k))
    for k in leaked:  # put back, so one leak fails one test, not every later one
        if k in before:
            os.environ[k] = before[k]
        else:
            del os.environ[k]
    assert not leaked, f"the test left these environment variables changed: {leaked}"


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store in a temporary folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_arena(args: Sequence[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the installed ``arena`` console script as a user would (``env`` adds variables)."""
    exe = Path(sys.executable).with_name("arena")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def run_compare(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs the installed ``arena-compare`` console script as a user would."""
    exe = Path(sys.executable).with_name("arena-compare")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


#: A small real shoot-out: every framework family, two seeds, two epochs (throughput needs epoch 2),
#: two trials at a time (hydra/launcher=parallel: joblib) to keep CI short.
SHOOTOUT_OVERRIDES = ["framework=torch,tensorflow,keras", "trainer.seed=0,1", "trainer.epochs=2", "tracking.tensorboard=true"]
SHOOTOUT_ARGS = ["-m", *SHOOTOUT_OVERRIDES, "hydra/launcher=parallel"]


@pytest.fixture(scope="session")
def shootout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``mlflow.db`` holds one finished shoot-out sweep, shared by the tests of a session.

    Tests may add comparison runs to it, each under its own ``report.run_name``; nothing else.
    """
    folder = tmp_path_factory.mktemp("shootout")
    proc = run_arena(SHOOTOUT_ARGS, folder, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder


@pytest.fixture(scope="session")
def variant_probes() -> Callable[[str], dict[str, Any]]:
    """Both conformance probes (tests/probe_variant.py) of every framework variant, run once per
    session for tests/test_conformance.py and tests/test_layers.py; returns a look-up by variant
    (``framework_id``) that fails the asking test with that variant's error.

    One process per variant (Keras fixes its back end at the first import), two at a time: a probe
    is mostly its single-threaded imports, so this halves the wait on two cores; the probes
    compare numbers, not speed.
    """
    from layer_models import LAYER_MODELS
    from trainer_models import MODELS

    probe = Path(__file__).with_name("probe_variant.py")

    def run(fb: tuple[str, str | None]) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, str(probe), fb[0], fb[1] or "-", json.dumps(MODELS), json.dumps(LAYER_MODELS)]
        return subprocess.run(args, capture_output=True, text=True, timeout=900)  # pytest-timeout guards the whole setup too

    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(map(framework_id, FRAMEWORKS), pool.map(run, FRAMEWORKS)))

    def lookup(variant: str) -> dict[str, Any]:
        proc = procs[variant]
        assert proc.returncode == 0, f"{variant}: " + proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return lookup


def require_postgres() -> None:
    """Skips a test without PostgreSQL on a developer's machine; fails it under CI, which installs it."""
    from framework_arena.server import postgres_bindir

    if postgres_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get install postgresql) so that CI runs this test")
        pytest.skip("PostgreSQL is not installed (no pg_ctl on PATH nor in /usr/lib/postgresql/*/bin); CI installs it")


def require_module(name: str, how: str):
    """Imports an optional dependency (Ray, submitit, Optuna, Playwright): skips without it on a
    developer's machine; fails under CI (``CI`` set), which installs every extra, so that no test
    is skipped there in silence. Returns the module."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not importable under CI ({e}): {how}")
        pytest.skip(f"{name} is not installed: {how}")
