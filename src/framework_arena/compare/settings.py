"""The ``arena-compare`` config: its schema and the checks run before anything is queried."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from framework_arena.config import PlatformConfig, TrackingConfig
from framework_arena.errors import ConfigError
from framework_arena.validation import expect

GROUP_BY = ("framework", "framework_model")


@dataclass
class SelectConfig:
    experiment: str = "framework-arena"
    sweep: Optional[str] = None
    filter: str = ""
    frameworks: List[str] = field(default_factory=list)
    max_runs: int = 100000


@dataclass
class BootstrapConfig:
    samples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class AggregateConfig:
    tau: float = 1.1  # performance profile: within tau of the best on a workload when ratio >= 1/tau
    include_partial: bool = False  # score workloads not every framework ran, among those who ran them


@dataclass
class ReportConfig:
    log_run: bool = True
    run_name: Optional[str] = None
    max_history_runs: int = 20


@dataclass
class CompareConfig:
    select: SelectConfig = field(default_factory=SelectConfig)
    group_by: str = "framework"
    target_accuracy: float = 0.9
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    tracking: TrackingConfig = MISSING
    platform: PlatformConfig = field(default_factory=PlatformConfig)
    ranking: Any = MISSING
    criteria: Any = MISSING


def register() -> None:
    ConfigStore.instance().store(name="compare_schema", node=CompareConfig)


def validate(cfg: Mapping[str, Any]) -> None:
    """Raises :class:`ConfigError` naming every wrong value; nothing has been queried yet."""
    from framework_arena.compare.criteria import CRITERIA

    p: list[str] = []
    expect(
        p,
        cfg["tracking"]["name"] != "none" and bool(cfg["tracking"].get("uri")),
        "tracking",
        cfg["tracking"]["name"],
        "to be local or server: a store to read the trials from",
    )
    expect(p, cfg["group_by"] in GROUP_BY, "group_by", cfg["group_by"], f"to be one of {', '.join(GROUP_BY)}")
    expect(p, 0.0 < cfg["target_accuracy"] <= 1.0, "target_accuracy", cfg["target_accuracy"], "to be a validation accuracy in (0, 1]")
    b = cfg["bootstrap"]
    expect(p, b["samples"] >= 0, "bootstrap.samples", b["samples"], "to be an integer >= 0 (0 switches the intervals off)")
    expect(p, 0.5 <= b["confidence"] < 1.0, "bootstrap.confidence", b["confidence"], "to be a probability in [0.5, 1)")
    tau = cfg["aggregate"]["tau"]
    expect(p, tau >= 1.0, "aggregate.tau", tau, "to be a factor >= 1: a framework is within tau of the best on a workload when best / value <= tau")
    expect(p, cfg["select"]["max_runs"] > 0, "select.max_runs", cfg["select"]["max_runs"], "to be an integer > 0")
    expect(p, cfg["report"]["max_history_runs"] >= 0, "report.max_history_runs", cfg["report"]["max_history_runs"], "to be an integer >= 0")
    weights = (cfg.get("ranking") or {}).get("weights") or {}
    expect(p, bool(weights), "ranking.weights", weights, "to give at least one criterion a weight (see conf/ranking/)")
    for key, w in weights.items():
        expect(p, key in CRITERIA, f"ranking.weights.{key}", w, f"to name a known criterion: {', '.join(CRITERIA)}")
        expect(p, isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0, f"ranking.weights.{key}", w, "to be a number >= 0")
    static = (cfg.get("criteria") or {}).get("static") or {}
    for key, entry in static.items():
        expect(
            p,
            key in CRITERIA and CRITERIA[key].kind == "static",
            f"criteria.static.{key}",
            key,
            "to name a static criterion: " + ", ".join(k for k, c in CRITERIA.items() if c.kind == "static"),
        )
        for fw, v in (entry.get("values") or {}).items():
            expect(p, isinstance(v, (int, float)) and not isinstance(v, bool), f"criteria.static.{key}.values.{fw}", v, "to be a number")
        for attr in ("source", "date"):
            expect(
                p, bool(entry.get(attr)), f"criteria.static.{key}.{attr}", entry.get(attr), "to be set: every static value says where and when it comes from"
            )
    if p:
        raise ConfigError(p)
