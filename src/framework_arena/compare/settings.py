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
REPORT_FORMATS = ("text", "json")


@dataclass
class SelectConfig:
    experiment: str = "framework-arena"
    sweep: Optional[str] = None
    filter: str = ""
    frameworks: List[str] = field(default_factory=list)
    max_runs: int = 100000
    include_contended: bool = False  # keep runs tagged arena.contended=true in the speed criteria (compare/trust.py)


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
    format: str = "text"  # text: tables on the terminal; json: the ranking and criteria as JSON on stdout
    log_run: bool = True
    run_name: Optional[str] = None
    max_history_runs: int = 20
    plot_workers: int = 2  # processes drawing the figures of a comparison of 1000 runs or more (0: drawn in this process)
    promote: bool = False  # alias "champion" on the winner's best model (registered if it is not yet)
    registered_model: Optional[str] = None  # where to register it then; default <experiment>-<group>-<model>


@dataclass
class ServeConfig:
    """The serving benchmark (``deploy=true``): bounds on every wait and loop."""

    requests: int = 30  # sequential requests timed at 1 row and at 64 rows (after one warm-up each)
    throughput_requests: int = 3  # requests of 1,024 rows for rows/s
    startup_timeout_s: float = 120.0  # from start to the first /ping answered
    request_timeout_s: float = 30.0
    threads: int = 1  # OMP/TF thread counts in the server: one core per server, as a small replica


@dataclass
class CompareConfig:
    select: SelectConfig = field(default_factory=SelectConfig)
    group_by: str = "framework"
    target_accuracy: float = 0.9
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    deploy: bool = False  # serve each group's best model through mlflow models serve and time it (deploy.py)
    serve: ServeConfig = field(default_factory=ServeConfig)
    tracking: TrackingConfig = MISSING
    platform: PlatformConfig = field(default_factory=PlatformConfig)
    ranking: Any = MISSING
    criteria: Any = MISSING


def register() -> None:
    ConfigStore.instance().store(name="compare_schema", node=CompareConfig)


def prepare(cfg: Any) -> dict[str, Any]:
    """The composed ``arena-compare`` config as the plain, validated dict the comparison runs on:
    the store resolved as trials resolve it (Domino's URI and experiment name), shared by the
    command and :func:`framework_arena.api.compare`. Raises :class:`ConfigError`."""
    from omegaconf import OmegaConf

    from framework_arena.trial import tracking_target

    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    plain.pop("hydra", None)
    plain["tracking"] = tracking_target(plain)
    if plain["select"]["experiment"] == cfg.tracking.experiment:  # the default: the platform's name for it (Domino)
        plain["select"]["experiment"] = plain["tracking"]["experiment"]
    validate(plain)
    return plain


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
    expect(p, cfg["report"].get("format", "text") in REPORT_FORMATS, "report.format", cfg["report"].get("format"), f"to be one of {', '.join(REPORT_FORMATS)}")
    expect(p, cfg["report"]["max_history_runs"] >= 0, "report.max_history_runs", cfg["report"]["max_history_runs"], "to be an integer >= 0")
    expect(
        p,
        cfg["report"].get("plot_workers", 0) >= 0,
        "report.plot_workers",
        cfg["report"].get("plot_workers"),
        "to be an integer >= 0 (0 draws the figures in this process)",
    )
    sv = cfg.get("serve") or {}
    for key in ("requests", "throughput_requests", "threads"):
        expect(p, sv.get(key, 1) >= 1, f"serve.{key}", sv.get(key), "to be an integer >= 1")
    for key in ("startup_timeout_s", "request_timeout_s"):
        expect(p, sv.get(key, 1) > 0, f"serve.{key}", sv.get(key), "to be seconds > 0")
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
    # criteria.article: the rows and the verdict thresholds (issue 20; compare/verdicts.py owns them).
    from framework_arena.compare.verdicts import check as check_article

    check_article(p, (cfg.get("criteria") or {}).get("article") or {})
    if p:
        raise ConfigError(p)
