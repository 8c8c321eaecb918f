"""Structured configs of ``arena``, type-checked by Hydra.

The dataclasses are stored in Hydra's ConfigStore under ``schema/<group>``; each YAML option in
``conf/<group>/`` extends its schema, so ``optim.lr=abc`` fails at composition and
``optim.lr=-1`` fails in :func:`framework_arena.validation.validate`, both before anything is
created. The defaults live here; the YAML options only name what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING


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
    activation: str = "relu"  # relu | tanh | sigmoid | gelu (exact, erf-based, in every framework)
    dropout: float = 0.1  # after each hidden layer, in [0, 1)
    init: str = "glorot_uniform"  # glorot_uniform | he_uniform | lecun_uniform; biases start at zero


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
    dropout: float = 0.0  # after the last LSTM layer
    init: str = "glorot_uniform"


@dataclass
class LayerListConfig:
    # model=custom, resnet, transformer: the layers in order (framework_arena/layerlist.py lists the
    # kinds and their arguments); the logits layer is added from the data's class count.
    name: str = "custom"
    layers: List[Any] = field(default_factory=list)
    init: str = "glorot_uniform"


@dataclass
class DigitsConfig:
    name: str = "digits"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = II("trainer.seed")  # stratified split; set a number to keep one split across seeds


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
class SequencesConfig:
    # Token sequences whose label depends on the tokens' content and order (framework_arena/sequences.py).
    name: str = "sequences"
    num_samples: int = 4000
    length: int = 16
    vocab_size: int = 16  # tokens 0-3 are the markers the label depends on
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = II("trainer.seed")


@dataclass
class IdxConfig:
    name: str = "idx"
    path: Optional[str] = None
    limit: Optional[int] = None  # only the first N training and test images (quick runs)
    val_fraction: float = 0.1
    split_seed: int = II("trainer.seed")


@dataclass
class ShardsConfig:
    name: str = "shards"
    path: Optional[str] = None  # a folder made by `arena-data make` (framework_arena/shard_writer.py)
    # Input-pipeline workers: DataLoader num_workers, Keras PyDataset workers; tf.data: AUTOTUNE.
    # 0 reads batches in the training process: a batch is a slice of a memory map, cheaper than a
    # worker's hand-over. Measured on 2 cores (bench/input_pipeline.py --quick), streamed/in-memory
    # throughput with 0 workers vs 2: torch 0.85 vs 0.38, keras 0.86 vs 0.77. Raise it when reading
    # is costly (a slow disk, a GPU that waits on the host).
    workers: int = 0
    # Train on the first N training rows only (scaling sweeps grow N on one dataset). None: every row;
    # the launcher fills in the manifest's count, so each run logs the rows it trained on.
    num_samples: Optional[int] = None


@dataclass
class AdamConfig:
    # Written out in full: PyTorch and Keras disagree on Adam's default epsilon (1e-8 vs 1e-7).
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
    threads: int = 0  # 0: every core this process may use; the same count for every framework
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (mixed: bf16 compute, fp32 weights)
    warmup_steps: Optional[int] = None  # steps left out of speed/samples_per_s; null: the first epoch
    inference_runs: int = 20  # timed batch-1 predictions for infer/latency_ms_p50/p95
    inference_batch_size: int = 1024  # the large batch of infer/samples_per_s


@dataclass
class TrackingConfig:
    name: str = "local"
    uri: Optional[str] = "sqlite:///mlflow.db"
    experiment: str = "framework-arena"
    run_name: Optional[str] = None  # default: <framework>[-<backend>]-<model>-<data>-s<seed>
    log_model: bool = True
    # plots/learning_curves.png per trial; false saves a short trial the plot's import and drawing
    # (the phase/plots_s figure, about 1 s on 2 cores); the choice is a param like every key here.
    plots: bool = True
    # An unreachable server fails a trial in about timeout_s * (retries + 1) plus a few seconds of
    # back-off, instead of MLflow's 120 s * 7 retries (MLFLOW_HTTP_REQUEST_TIMEOUT / _MAX_RETRIES).
    timeout_s: int = 10
    retries: int = 2
    log_every_n_steps: int = 0  # train/loss_running every n optimizer steps; 0: per epoch only
    system_metrics: bool = False  # MLflow's system/* metrics (CPU, memory; GPU with pynvml)
    # TensorBoard event files (scalars, weight histograms, graph) as the trial's tensorboard/ artifacts,
    # written by the framework's own tool at epoch ends (trainers/events.py). Off by default: its cost is
    # over the 1.03 overhead target for every framework (bench/overhead.py --quick, quiet 2 cores,
    # 2026-12-01: tensorboard_cost_ratio torch 1.039, tensorflow 1.171, keras 1.060; plus 0.14-0.23 s
    # once per trial to open the writer and trace the graph; tensorboard/write_s, tensorboard/fit_write_s).
    tensorboard: bool = False
    register: bool = False  # register each trial's model in the Model Registry
    registered_model: Optional[str] = None  # default: <experiment>-<framework>[-<backend>]-<model>


@dataclass
class PlatformConfig:
    name: str = "auto"  # auto | none | domino


@dataclass
class SweepConfig:
    objective: str = "val/accuracy"  # the metric the task returns to sweepers: one of names.OBJECTIVES
    direction: str = "maximize"
    rerun: bool = False  # in a sweep, train again even when a FINISHED run has the same config_hash
    json: bool = False  # print the trial's result as one JSON line on stdout (logs go to stderr)
    phases: bool = False  # print where the trial's wall time went (its phase/* metrics) as a table at the end


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
        "model": {"mlp": MLPConfig, "cnn": CNNConfig, "lstm": LSTMConfig, "layers": LayerListConfig},
        "data": {"digits": DigitsConfig, "synthetic": SyntheticConfig, "idx": IdxConfig, "shards": ShardsConfig, "sequences": SequencesConfig},
        "optim": {"adam": AdamConfig, "adamw": AdamWConfig, "sgd": SGDConfig},
    }.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
