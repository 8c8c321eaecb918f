"""Hydra entry points: ``arena`` (one job = one trial)."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from framework_arena.config import ConfigError, register_configs
from framework_arena.runner import TrialInterrupted, TrialResult, run_trial

log = logging.getLogger("arena")

register_configs()


def _summary(result: TrialResult) -> str:
    m = result.metrics
    lines = [f"{result.run_name}: {result.status} in {result.seconds:.1f} s"]
    if result.status == "FINISHED":
        lines.append(
            f"  val_accuracy {m['val_accuracy']:.4f}  test_accuracy {m['test_accuracy']:.4f}  "
            f"params {int(m['num_params']):,}  steady throughput "
            + (f"{m['train_samples_per_s']:,.0f} samples/s" if "train_samples_per_s" in m else "n/a (1 epoch)")
        )
    else:
        lines.append(f"  reason: {result.reason}: {result.message}")
    if result.run_id:
        lines.append(f"  MLflow run {result.run_id} in {result.tracking_uri}")
        if result.tracking_uri and result.tracking_uri.startswith("sqlite:"):
            lines.append(f"  browse it: mlflow ui --backend-store-uri {result.tracking_uri}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=None, config_name="config")
def train(cfg: DictConfig) -> float:
    """Trains one trial; returns the final ``val_accuracy`` for sweepers to maximize."""
    try:
        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # called outside a Hydra app, e.g. through the compose API
        overrides = []
    try:
        result = run_trial(cfg, overrides)
    except ConfigError as e:
        log.error("%s", e)
        sys.exit(2)
    except TrialInterrupted as e:
        log.error("Trial stopped by %s; its run is marked KILLED.", e)
        sys.exit(128 + e.signum)
    log.info("%s", _summary(result))
    if result.status != "FINISHED":
        if result.reason == "exception" and result.run_id:
            log.error("The full traceback is the run's error.txt artifact.")
        sys.exit(1)
    return float(result.metrics["val_accuracy"])
