"""The semantic checks run on a composed trial config before any MLflow run exists.

Hydra's types catch ``optim.lr=abc`` at composition; :func:`validate` catches what types cannot
(``optim.lr=-1``, a CNN on 2-D data, a missing framework package), all at once, each named by its
key, the value received and what was expected.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any, Mapping

from framework_arena.data import DataError, check_idx_path, memory_needed
from framework_arena.errors import ConfigError
from framework_arena.layerlist import framework_limits
from framework_arena.machine import memory_available
from framework_arena.metric_names import current_name
from framework_arena.models import build_spec
from framework_arena.names import (
    ACTIVATIONS,
    DEVICES,
    FRAMEWORKS,
    INITIALIZERS,
    KERAS_BACKENDS,
    LAYER_LIST_MODELS,
    MODEL_KINDS,
    OBJECTIVES,
    OPTIMIZERS,
    PLATFORMS,
    PRECISIONS,
    TRACKING_NAMES,
    label,
)
from framework_arena.shards import read_manifest

__all__ = ["ConfigError", "expect", "gpu_visible", "validate"]


def expect(problems: list[str], ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        problems.append(f"Expected {key} {expected}. Received: {key}={value!r}")


def _check_positive_ints(problems: list[str], key: str, values: Any) -> None:
    expect(problems, len(values) > 0 and all(v >= 1 for v in values), key, list(values), "to be a non-empty list of integers >= 1")


def _check_model(problems: list[str], model: Mapping[str, Any], data_shape_len: int | None) -> None:
    name = model.get("name")
    expect(problems, name in MODEL_KINDS, "model.name", name, f"in {MODEL_KINDS}")
    if name in LAYER_LIST_MODELS:
        layers = model.get("layers")
        expect(problems, bool(layers), "model.layers", layers, f"to be a non-empty list of layers for model={name}")
    if "hidden" in model:
        if name == "mlp":
            _check_positive_ints(problems, "model.hidden", model["hidden"])
        else:
            expect(problems, all(v >= 1 for v in model["hidden"]), "model.hidden", list(model["hidden"]), "to hold integers >= 1")
    if "activation" in model:
        expect(problems, model["activation"] in ACTIVATIONS, "model.activation", model["activation"], f"in {ACTIVATIONS}")
    expect(problems, 0.0 <= model.get("dropout", 0.0) < 1.0, "model.dropout", model.get("dropout"), "in [0, 1)")
    expect(problems, model.get("init") in INITIALIZERS, "model.init", model.get("init"), f"in {INITIALIZERS}")
    if name == "cnn":
        _check_positive_ints(problems, "model.filters", model["filters"])
        k = model["kernel_size"]
        # Even kernels pad "same" differently in PyTorch and TensorFlow: keep the comparison fair.
        expect(problems, k >= 1 and k % 2 == 1, "model.kernel_size", k, "to be an odd integer >= 1")
        expect(problems, model["pool_size"] >= 1, "model.pool_size", model["pool_size"], ">= 1")
        if data_shape_len is not None and data_shape_len != 3:
            problems.append(
                f"Expected image data (data.shape of length 3: [height, width, channels]) for model=cnn. Received: a data.shape of length {data_shape_len}"
            )
    elif name == "lstm":
        _check_positive_ints(problems, "model.units", model["units"])


def _check_data(problems: list[str], data: Mapping[str, Any]) -> None:
    if data.get("name") == "shards":
        try:
            rows = read_manifest(data.get("path")).rows("train")
        except DataError as e:
            problems.append(str(e))
            rows = None
        n = data.get("num_samples")
        if n is not None and rows is not None:
            expect(problems, 1 <= n <= rows, "data.num_samples", n, f"between 1 and the dataset's {rows:,} training rows (or null: every row)")
        expect(problems, data.get("workers", 0) >= 0, "data.workers", data.get("workers"), ">= 0 (0: batches are read in the training process)")
        return
    val = data.get("val_fraction", 0.0)
    test = data.get("test_fraction", 0.0)
    expect(problems, 0.0 < val < 1.0, "data.val_fraction", val, "in (0, 1)")
    if "test_fraction" in data:
        expect(problems, 0.0 < test < 1.0, "data.test_fraction", test, "in (0, 1)")
        expect(problems, val + test < 0.9, "data.val_fraction + data.test_fraction", val + test, "< 0.9 (some data must be left to train on)")
    expect(problems, data.get("split_seed", 0) >= 0, "data.split_seed", data.get("split_seed"), ">= 0")
    if data.get("name") == "synthetic":
        shape = list(data["shape"])
        expect(
            problems,
            len(shape) in (2, 3) and all(d >= 1 for d in shape),
            "data.shape",
            shape,
            "to be [height, width, channels] or [steps, features] of integers >= 1",
        )
        expect(problems, data["num_classes"] >= 2, "data.num_classes", data["num_classes"], ">= 2")
        expect(
            problems,
            data["num_samples"] >= 10 * data["num_classes"],
            "data.num_samples",
            data["num_samples"],
            f">= 10 * data.num_classes ({10 * data['num_classes']})",
        )
        expect(problems, data["noise"] >= 0.0, "data.noise", data["noise"], ">= 0")
    elif data.get("name") == "sequences":
        expect(problems, data["length"] >= 2, "data.length", data["length"], ">= 2 (a sequence holds the markers A and B)")
        expect(problems, 5 <= data["vocab_size"] < 2**24, "data.vocab_size", data["vocab_size"], "in [5, 2**24) (4 marker tokens and some filler)")
        expect(problems, data["num_samples"] >= 40, "data.num_samples", data["num_samples"], ">= 40")
    elif data.get("name") == "idx":
        try:
            check_idx_path(data.get("path"))
        except DataError as e:
            problems.append(str(e))
        if data.get("limit") is not None:
            expect(problems, data["limit"] >= 10, "data.limit", data["limit"], ">= 10 or null")


def _check_optim(problems: list[str], optim: Mapping[str, Any]) -> None:
    expect(problems, optim.get("name") in OPTIMIZERS, "optim.name", optim.get("name"), f"in {OPTIMIZERS}")
    expect(problems, optim.get("lr", 0.0) > 0.0, "optim.lr", optim.get("lr"), "> 0")
    for key in ("beta1", "beta2"):
        if key in optim:
            expect(problems, 0.0 <= optim[key] < 1.0, f"optim.{key}", optim[key], "in [0, 1)")
    if "eps" in optim:
        expect(problems, optim["eps"] > 0.0, "optim.eps", optim["eps"], "> 0")
    if "weight_decay" in optim:
        expect(problems, optim["weight_decay"] >= 0.0, "optim.weight_decay", optim["weight_decay"], ">= 0")
    if "momentum" in optim:
        expect(problems, 0.0 <= optim["momentum"] < 1.0, "optim.momentum", optim["momentum"], "in [0, 1)")
        if optim.get("nesterov"):
            expect(problems, optim["momentum"] > 0.0, "optim.momentum", optim["momentum"], "> 0 when optim.nesterov=true")


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
    expect(problems, fw["name"] in FRAMEWORKS, "framework.name", fw["name"], f"in {FRAMEWORKS}")
    if fw["name"] == "keras":
        expect(problems, fw.get("backend") in KERAS_BACKENDS, "framework.backend", fw.get("backend"), f"in {KERAS_BACKENDS} for framework=keras")
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
    shape_len = len(_sample_shape(data) or (0, 0, 0))
    _check_model(problems, cfg["model"], shape_len)
    _check_optim(problems, cfg["optim"])
    tr = cfg["trainer"]
    expect(problems, tr["epochs"] >= 1, "trainer.epochs", tr["epochs"], ">= 1")
    expect(problems, tr["batch_size"] >= 1, "trainer.batch_size", tr["batch_size"], ">= 1")
    expect(problems, tr["seed"] >= 0, "trainer.seed", tr["seed"], ">= 0")
    expect(problems, tr["threads"] >= 0, "trainer.threads", tr["threads"], ">= 0 (0 uses every core)")
    expect(problems, tr["device"] in DEVICES, "trainer.device", tr["device"], f"in {DEVICES}")
    if tr["device"] == "cuda" and not gpu_visible():
        problems.append(
            "Expected a visible NVIDIA (or ROCm) GPU for trainer.device=cuda: no driver device found "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}). Received: trainer.device='cuda'; "
            "use trainer.device=auto or cpu"
        )
    expect(problems, tr.get("precision", "fp32") in PRECISIONS, "trainer.precision", tr.get("precision"), f"in {PRECISIONS}")
    warmup = tr.get("warmup_steps")
    expect(problems, warmup is None or warmup >= 0, "trainer.warmup_steps", warmup, ">= 0, or null for the whole first epoch")
    expect(problems, tr.get("inference_runs", 20) >= 1, "trainer.inference_runs", tr.get("inference_runs"), ">= 1")
    expect(problems, tr.get("inference_batch_size", 1024) >= 1, "trainer.inference_batch_size", tr.get("inference_batch_size"), ">= 1")
    _check_compile(problems, fw)
    sw = cfg.get("arena", {})
    if sw:
        expect(
            problems, current_name(sw["objective"]) in OBJECTIVES, "arena.objective", sw["objective"], f"in {OBJECTIVES} (or its flat name, e.g. val_accuracy)"
        )
        expect(problems, sw["direction"] in ("maximize", "minimize"), "arena.direction", sw["direction"], "in ('maximize', 'minimize')")
    if "platform" in cfg:
        expect(problems, cfg["platform"]["name"] in PLATFORMS, "platform.name", cfg["platform"]["name"], f"in {PLATFORMS}")
    tk = cfg["tracking"]
    expect(problems, tk["name"] in TRACKING_NAMES, "tracking.name", tk["name"], f"in {TRACKING_NAMES}")
    expect(problems, tk.get("log_every_n_steps", 0) >= 0, "tracking.log_every_n_steps", tk.get("log_every_n_steps"), ">= 0 (0: per epoch only)")
    if tk["name"] != "none":
        expect(problems, bool(tk.get("uri")), "tracking.uri", tk.get("uri"), "to be set (or MLFLOW_TRACKING_URI) with tracking=" + str(tk["name"]))
        expect(problems, bool(tk.get("experiment")), "tracking.experiment", tk.get("experiment"), "to be a non-empty name")
    if tk["name"] != "none" and tk.get("tensorboard", False):
        expect(
            problems,
            importlib.util.find_spec("tensorboard") is not None,
            "tracking.tensorboard",
            True,
            "false when the tensorboard package is not installed (pip install tensorboard)",
        )
    expect(problems, tk.get("timeout_s", 1) >= 1, "tracking.timeout_s", tk.get("timeout_s"), ">= 1 (seconds per HTTP request)")
    expect(problems, tk.get("retries", 0) >= 0, "tracking.retries", tk.get("retries"), ">= 0")
    expect(
        problems,
        not tk.get("register") or bool(tk.get("log_model")),
        "tracking.register",
        tk.get("register"),
        "false when tracking.log_model=false (no model to register)",
    )
    if tk["name"] == "server" and tk.get("uri"):
        expect(
            problems,
            str(tk["uri"]).startswith(("http://", "https://")),
            "tracking.uri",
            tk["uri"],
            "to be an http(s):// URL of an MLflow server for tracking=server",
        )
    if not problems:
        _check_model_fits_data(problems, cfg)
        _check_fits_memory(problems, data)
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
    """Builds the spec against the data's sample shape, so e.g. too much pooling or a conv2d after
    flatten fails up front, and refuses a layer the chosen framework cannot build exactly."""
    data = cfg["data"]
    vocab = data["vocab_size"] if data["name"] == "sequences" else None
    try:
        spec = build_spec(cfg["model"], _sample_shape(data) or (8, 8, 1), 10, vocab)
    except ValueError as e:
        problems.append(str(e))
        return
    framework = cfg["framework"]
    problems.extend(framework_limits(spec.layers, spec.shapes, label(framework["name"], framework.get("backend"))))


def _sample_shape(data: Mapping[str, Any]) -> tuple[int, ...] | None:
    """One sample's shape, known before loading; None when the data is not readable (reported apart)."""
    if data.get("name") == "shards":
        try:
            return read_manifest(data.get("path")).sample_shape
        except DataError:
            return None
    if data.get("name") == "sequences":
        return (int(data["length"]),)
    return {"digits": (8, 8, 1), "idx": (28, 28, 1)}.get(data["name"]) or tuple(data["shape"])


def _check_fits_memory(problems: list[str], data: Mapping[str, Any]) -> None:
    """Refuses an in-memory dataset larger than the memory left, before any run: it would die inside the trial."""
    needed = memory_needed(data)
    if needed is None:
        return
    available = memory_available()
    if needed > available:
        key, value = ("data.num_samples", data["num_samples"]) if data["name"] in ("synthetic", "sequences") else ("data.path", data.get("path"))
        problems.append(
            f"Expected data={data['name']} to fit in memory: {key}={value!r} needs about {needed:,} bytes ({needed / 2**30:.1f} GiB: the arrays "
            f"and their split copies), {available:,} bytes ({available / 2**30:.1f} GiB) are available. Stream it from disk instead: "
            f"`arena-data make {data['name']} ... --out DIR`, then `arena data=shards data.path=DIR`"
        )
