"""Structured configs (type-checked by Hydra) and the semantic checks run before any MLflow run.

The dataclasses are stored in Hydra's ConfigStore under ``schema/<group>``; each YAML option in
``conf/<group>/`` extends its schema, so ``optim.lr=abc`` fails at composition and
``optim.lr=-1`` fails in :func:`validate`, both before anything is created.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from framework_arena.models import ACTIVATIONS, INITIALIZERS

FRAMEWORK_NAMES = ("torch", "tensorflow", "keras")
KERAS_BACKENDS = ("tensorflow", "torch", "jax")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
TRACKING_NAMES = ("local", "none", "server")
# Metrics a sweep can optimize, with the direction that makes sense for each.
OBJECTIVES = ("val_accuracy", "test_accuracy", "val_loss", "test_loss", "train_samples_per_s", "fit_time_s")
# Config sections that say where results go or how a sweep treats a trial, not what is trained:
# left out of the config hash.
NOT_HASHED = ("tracking", "arena", "platform")


@dataclass
class FrameworkConfig:
    name: str = MISSING
    backend: Optional[str] = None
    # torch.compile (torch, keras-on-torch) or XLA (tensorflow, keras-on-tensorflow); recorded as
    # the tag arena.compile. Keras on jax always runs under XLA.
    compile: bool = False


@dataclass
class MLPConfig:
    name: str = "mlp"
    hidden: List[int] = field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    dropout: float = 0.1
    init: str = "glorot_uniform"


@dataclass
class CNNConfig:
    name: str = "cnn"
    filters: List[int] = field(default_factory=lambda: [16, 32])
    kernel_size: int = 3
    pool_size: int = 2
    hidden: List[int] = field(default_factory=lambda: [64])
    activation: str = "relu"
    dropout: float = 0.1
    init: str = "glorot_uniform"


@dataclass
class LSTMConfig:
    name: str = "lstm"
    units: List[int] = field(default_factory=lambda: [64])
    dropout: float = 0.0
    init: str = "glorot_uniform"


@dataclass
class DigitsConfig:
    name: str = "digits"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = II("trainer.seed")


@dataclass
class SyntheticConfig:
    name: str = "synthetic"
    shape: List[int] = field(default_factory=lambda: [8, 8, 1])
    num_samples: int = 10000
    num_classes: int = 10
    noise: float = 0.3
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = II("trainer.seed")


@dataclass
class IdxConfig:
    name: str = "idx"
    path: Optional[str] = None
    limit: Optional[int] = None
    val_fraction: float = 0.1
    split_seed: int = II("trainer.seed")


@dataclass
class AdamConfig:
    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 0.01


@dataclass
class SGDConfig:
    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    threads: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 (mixed: bf16 compute, fp32 weights)
    warmup_steps: Optional[int] = None  # steps left out of train_samples_per_s; null: the first epoch
    inference_runs: int = 20  # timed batch-1 predictions for infer_latency_ms_p50/p95
    inference_batch_size: int = 1024  # the large batch of infer_samples_per_s


@dataclass
class TrackingConfig:
    name: str = "local"
    uri: Optional[str] = "sqlite:///mlflow.db"
    experiment: str = "framework-arena"
    run_name: Optional[str] = None  # default: <framework>[-<backend>]-<model>-<data>-s<seed>
    log_model: bool = True
    # An unreachable server fails a trial in about timeout_s * (retries + 1) plus a few seconds of
    # back-off, instead of MLflow's 120 s * 7 retries (MLFLOW_HTTP_REQUEST_TIMEOUT / _MAX_RETRIES).
    timeout_s: int = 10
    retries: int = 2
    log_every_n_steps: int = 0  # train_loss_running every n optimizer steps; 0: per epoch only
    system_metrics: bool = False  # MLflow's system/* metrics (CPU, memory; GPU with pynvml)


@dataclass
class PlatformConfig:
    name: str = "auto"  # auto | none | domino


@dataclass
class SweepConfig:
    objective: str = "val_accuracy"  # the metric the task returns to sweepers
    direction: str = "maximize"
    rerun: bool = False  # in a sweep, train again even when a FINISHED run has the same config_hash


@dataclass
class ArenaConfig:
    arena: SweepConfig = field(default_factory=SweepConfig)
    framework: FrameworkConfig = MISSING
    model: Any = MISSING
    data: Any = MISSING
    optim: Any = MISSING
    trainer: TrainerConfig = MISSING
    tracking: TrackingConfig = MISSING
    platform: PlatformConfig = field(default_factory=PlatformConfig)


def register_configs() -> None:
    """Stores the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="arena_schema", node=ArenaConfig)
    cs.store(group="schema", name="framework", node=FrameworkConfig)
    cs.store(group="schema", name="trainer", node=TrainerConfig)
    cs.store(group="schema", name="tracking", node=TrackingConfig)
    cs.store(group="schema", name="platform", node=PlatformConfig)
    for group, nodes in {
        "model": {"mlp": MLPConfig, "cnn": CNNConfig, "lstm": LSTMConfig},
        "data": {"digits": DigitsConfig, "synthetic": SyntheticConfig, "idx": IdxConfig},
        "optim": {"adam": AdamConfig, "adamw": AdamWConfig, "sgd": SGDConfig},
    }.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    from framework_arena.compare.settings import register as register_compare

    register_compare()


class ConfigError(ValueError):
    """One or more config values are wrong; the message names each key, value and expectation."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _expect(problems: list[str], ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        problems.append(f"Expected {key} {expected}. Received: {key}={value!r}")


def _check_positive_ints(problems: list[str], key: str, values: Any) -> None:
    _expect(problems, len(values) > 0 and all(v >= 1 for v in values), key, list(values), "to be a non-empty list of integers >= 1")


def _check_model(problems: list[str], model: Mapping[str, Any], data_shape_len: int | None) -> None:
    name = model.get("name")
    if "hidden" in model:
        if name == "mlp":
            _check_positive_ints(problems, "model.hidden", model["hidden"])
        else:
            _expect(problems, all(v >= 1 for v in model["hidden"]), "model.hidden", list(model["hidden"]), "to hold integers >= 1")
    if "activation" in model:
        _expect(problems, model["activation"] in ACTIVATIONS, "model.activation", model["activation"], f"in {ACTIVATIONS}")
    _expect(problems, 0.0 <= model.get("dropout", 0.0) < 1.0, "model.dropout", model.get("dropout"), "in [0, 1)")
    _expect(problems, model.get("init") in INITIALIZERS, "model.init", model.get("init"), f"in {INITIALIZERS}")
    if name == "cnn":
        _check_positive_ints(problems, "model.filters", model["filters"])
        k = model["kernel_size"]
        # Even kernels pad "same" differently in PyTorch and TensorFlow: keep the comparison fair.
        _expect(problems, k >= 1 and k % 2 == 1, "model.kernel_size", k, "to be an odd integer >= 1")
        _expect(problems, model["pool_size"] >= 1, "model.pool_size", model["pool_size"], ">= 1")
        if data_shape_len is not None and data_shape_len != 3:
            problems.append(
                f"Expected image data (data.shape of length 3: [height, width, channels]) for model=cnn. Received: a data.shape of length {data_shape_len}"
            )
    elif name == "lstm":
        _check_positive_ints(problems, "model.units", model["units"])


def _check_data(problems: list[str], data: Mapping[str, Any]) -> None:
    val = data.get("val_fraction", 0.0)
    test = data.get("test_fraction", 0.0)
    _expect(problems, 0.0 < val < 1.0, "data.val_fraction", val, "in (0, 1)")
    if "test_fraction" in data:
        _expect(problems, 0.0 < test < 1.0, "data.test_fraction", test, "in (0, 1)")
        _expect(problems, val + test < 0.9, "data.val_fraction + data.test_fraction", val + test, "< 0.9 (some data must be left to train on)")
    _expect(problems, data.get("split_seed", 0) >= 0, "data.split_seed", data.get("split_seed"), ">= 0")
    if data.get("name") == "synthetic":
        shape = list(data["shape"])
        _expect(
            problems,
            len(shape) in (2, 3) and all(d >= 1 for d in shape),
            "data.shape",
            shape,
            "to be [height, width, channels] or [steps, features] of integers >= 1",
        )
        _expect(problems, data["num_classes"] >= 2, "data.num_classes", data["num_classes"], ">= 2")
        _expect(
            problems,
            data["num_samples"] >= 10 * data["num_classes"],
            "data.num_samples",
            data["num_samples"],
            f">= 10 * data.num_classes ({10 * data['num_classes']})",
        )
        _expect(problems, data["noise"] >= 0.0, "data.noise", data["noise"], ">= 0")
    elif data.get("name") == "idx":
        from framework_arena.data import DataError, check_idx_path

        try:
            check_idx_path(data.get("path"))
        except DataError as e:
            problems.append(str(e))
        if data.get("limit") is not None:
            _expect(problems, data["limit"] >= 10, "data.limit", data["limit"], ">= 10 or null")


def _check_optim(problems: list[str], optim: Mapping[str, Any]) -> None:
    _expect(problems, optim.get("name") in ("adam", "adamw", "sgd"), "optim.name", optim.get("name"), "in ('adam', 'adamw', 'sgd')")
    _expect(problems, optim.get("lr", 0.0) > 0.0, "optim.lr", optim.get("lr"), "> 0")
    for key in ("beta1", "beta2"):
        if key in optim:
            _expect(problems, 0.0 <= optim[key] < 1.0, f"optim.{key}", optim[key], "in [0, 1)")
    if "eps" in optim:
        _expect(problems, optim["eps"] > 0.0, "optim.eps", optim["eps"], "> 0")
    if "weight_decay" in optim:
        _expect(problems, optim["weight_decay"] >= 0.0, "optim.weight_decay", optim["weight_decay"], ">= 0")
    if "momentum" in optim:
        _expect(problems, 0.0 <= optim["momentum"] < 1.0, "optim.momentum", optim["momentum"], "in [0, 1)")
        if optim.get("nesterov"):
            _expect(problems, optim["momentum"] > 0.0, "optim.momentum", optim["momentum"], "> 0 when optim.nesterov=true")


def _framework_package(framework: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (import name, extra) a framework choice needs, or None if it is already importable."""
    needed = {"torch": ("torch", "torch"), "tensorflow": ("tensorflow", "tensorflow")}
    if framework["name"] == "keras":
        if importlib.util.find_spec("keras") is None:
            return ("keras", "keras")
        needed_backend = {"tensorflow": ("tensorflow", "tensorflow"), "torch": ("torch", "torch"), "jax": ("jax", "jax")}
        pkg = needed_backend.get(framework.get("backend") or "")
    else:
        pkg = needed.get(framework["name"])
    if pkg and importlib.util.find_spec(pkg[0]) is None:
        return pkg
    return None


def validate(cfg: Mapping[str, Any]) -> None:
    """Checks every value that Hydra's types cannot; raises :class:`ConfigError` listing them all.

    Args:
        cfg: the resolved trial config (a plain dict or a DictConfig).
    """
    problems: list[str] = []
    fw = cfg["framework"]
    _expect(problems, fw["name"] in FRAMEWORK_NAMES, "framework.name", fw["name"], f"in {FRAMEWORK_NAMES}")
    if fw["name"] == "keras":
        _expect(problems, fw.get("backend") in KERAS_BACKENDS, "framework.backend", fw.get("backend"), f"in {KERAS_BACKENDS} for framework=keras")
    elif fw.get("backend") is not None:
        problems.append(
            f"Expected framework.backend=null: only framework=keras has back ends. Received: framework.backend={fw['backend']!r} with framework={fw['name']}"
        )
    if not problems:
        missing = _framework_package(fw)
        if missing:
            problems.append(
                f"framework={fw['name']}{' framework.backend=' + fw['backend'] if fw.get('backend') else ''} needs the "
                f"'{missing[0]}' package, which is not installed. Install it with: pip install \"framework-arena[{missing[1]}]\""
            )
    data = cfg["data"]
    _check_data(problems, data)
    shape_len = len(data["shape"]) if data.get("name") == "synthetic" else 3
    _check_model(problems, cfg["model"], shape_len)
    _check_optim(problems, cfg["optim"])
    tr = cfg["trainer"]
    _expect(problems, tr["epochs"] >= 1, "trainer.epochs", tr["epochs"], ">= 1")
    _expect(problems, tr["batch_size"] >= 1, "trainer.batch_size", tr["batch_size"], ">= 1")
    _expect(problems, tr["seed"] >= 0, "trainer.seed", tr["seed"], ">= 0")
    _expect(problems, tr["threads"] >= 0, "trainer.threads", tr["threads"], ">= 0 (0 uses every core)")
    _expect(problems, tr["device"] in DEVICES, "trainer.device", tr["device"], f"in {DEVICES}")
    if tr["device"] == "cuda" and not gpu_visible():
        problems.append(
            "Expected a visible NVIDIA (or ROCm) GPU for trainer.device=cuda: no driver device found "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}). Received: trainer.device='cuda'; "
            "use trainer.device=auto or cpu"
        )
    _expect(problems, tr.get("precision", "fp32") in PRECISIONS, "trainer.precision", tr.get("precision"), f"in {PRECISIONS}")
    warmup = tr.get("warmup_steps")
    _expect(problems, warmup is None or warmup >= 0, "trainer.warmup_steps", warmup, ">= 0, or null for the whole first epoch")
    _expect(problems, tr.get("inference_runs", 20) >= 1, "trainer.inference_runs", tr.get("inference_runs"), ">= 1")
    _expect(problems, tr.get("inference_batch_size", 1024) >= 1, "trainer.inference_batch_size", tr.get("inference_batch_size"), ">= 1")
    _check_compile(problems, fw)
    sw = cfg.get("arena", {})
    if sw:
        _expect(problems, sw["objective"] in OBJECTIVES, "arena.objective", sw["objective"], f"in {OBJECTIVES}")
        _expect(problems, sw["direction"] in ("maximize", "minimize"), "arena.direction", sw["direction"], "in ('maximize', 'minimize')")
    if "platform" in cfg:
        from framework_arena.platform import PLATFORMS

        _expect(problems, cfg["platform"]["name"] in PLATFORMS, "platform.name", cfg["platform"]["name"], f"in {PLATFORMS}")
    tk = cfg["tracking"]
    _expect(problems, tk["name"] in TRACKING_NAMES, "tracking.name", tk["name"], f"in {TRACKING_NAMES}")
    _expect(problems, tk.get("log_every_n_steps", 0) >= 0, "tracking.log_every_n_steps", tk.get("log_every_n_steps"), ">= 0 (0: per epoch only)")
    if tk["name"] != "none":
        _expect(problems, bool(tk.get("uri")), "tracking.uri", tk.get("uri"), "to be set (or MLFLOW_TRACKING_URI) with tracking=" + str(tk["name"]))
        _expect(problems, bool(tk.get("experiment")), "tracking.experiment", tk.get("experiment"), "to be a non-empty name")
    _expect(problems, tk.get("timeout_s", 1) >= 1, "tracking.timeout_s", tk.get("timeout_s"), ">= 1 (seconds per HTTP request)")
    _expect(problems, tk.get("retries", 0) >= 0, "tracking.retries", tk.get("retries"), ">= 0")
    if tk["name"] == "server" and tk.get("uri"):
        _expect(
            problems,
            str(tk["uri"]).startswith(("http://", "https://")),
            "tracking.uri",
            tk["uri"],
            "to be an http(s):// URL of an MLflow server for tracking=server",
        )
    if not problems:
        _check_model_fits_data(problems, cfg)
    if problems:
        raise ConfigError(problems)


def gpu_visible() -> bool:
    """Whether the OS shows an NVIDIA or ROCm GPU to this process, without importing a framework.

    The trainers still check that their framework's build can use it.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    nvidia = "/proc/driver/nvidia/gpus"
    return (os.path.isdir(nvidia) and bool(os.listdir(nvidia))) or os.path.exists("/dev/nvidia0") or os.path.exists("/dev/kfd")


def _check_compile(problems: list[str], fw: Mapping[str, Any]) -> None:
    compile_ = fw.get("compile", False)
    if not isinstance(compile_, bool):
        problems.append(f"Expected framework.compile to be true or false. Received: framework.compile={compile_!r}")
        return
    uses_torch = fw["name"] == "torch" or (fw["name"] == "keras" and fw.get("backend") == "torch")
    if compile_ and uses_torch:
        # TorchInductor generates C++ (CPU) or Triton code and builds it with the system compiler.
        cxx = os.environ.get("CXX") or "g++"
        if not (shutil.which(cxx) or shutil.which("c++") or shutil.which("clang++")):
            problems.append(
                f"Expected a C++ compiler on PATH ({cxx}, c++ or clang++) for framework.compile=true with torch: "
                "torch.compile builds the code it generates. Received: framework.compile=true; "
                "install one (e.g. apt-get install g++) or use framework.compile=false"
            )


def _check_model_fits_data(problems: list[str], cfg: Mapping[str, Any]) -> None:
    """Builds the spec against the data's sample shape, so e.g. too much pooling fails up front."""
    from framework_arena.models import build_spec

    data = cfg["data"]
    shape = {"digits": (8, 8, 1), "idx": (28, 28, 1)}.get(data["name"]) or tuple(data["shape"])
    try:
        build_spec(cfg["model"], shape, 10)
    except ValueError as e:
        problems.append(str(e))


def resolve_threads(threads: int) -> int:
    """``trainer.threads=0`` means every core this process may use."""
    if threads > 0:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A stable hash of what a trial trains (everything but where results go)."""
    payload = {k: v for k, v in cfg.items() if k not in NOT_HASHED}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys for nested mappings: ``{"optim": {"lr": 1e-3}}`` gives ``("optim.lr", 0.001)``."""
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{dotted}.")
        else:
            yield dotted, value


def run_name(cfg: Mapping[str, Any]) -> str:
    """``<framework>[-<backend>]-<model>-<data>-s<seed>``, or ``tracking.run_name`` when set."""
    if cfg["tracking"].get("run_name"):
        return str(cfg["tracking"]["run_name"])
    fw = cfg["framework"]
    backend = f"-{fw['backend']}" if fw["name"] == "keras" and fw.get("backend") else ""
    return f"{fw['name']}{backend}-{cfg['model']['name']}-{cfg['data']['name']}-s{cfg['trainer']['seed']}"
