"""The resolved trial: one frozen, typed description built once on the launching side.

:func:`resolve_trial` turns a composed config into a :class:`Trial`: validated, the thread count
and the platform's tracking target resolved, every default filled (by the schemas in
``config.py``, their only home). What the child process receives, what is hashed into
``arena.config_hash`` and what is logged as params and ``config.yaml`` is this one object, so no
process resolves a fact a second time.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from framework_arena import cores, identity, platform, validation
from framework_arena.metric_names import current_name
from framework_arena.names import label
from framework_arena.shards import read_manifest


def resolve_threads(threads: int, parallel: int = 1) -> int:
    """``trainer.threads=0`` means this trial's share of the cores it may use: the affinity cut
    to the cgroup quota, divided by the ``parallel`` trials the launcher runs at once (cores.py)."""
    if threads > 0:
        return threads
    return cores.share(parallel)


def resolve_uri(uri: str) -> str:
    """Makes a relative ``sqlite:///x.db`` absolute, so child processes and later runs agree."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + os.path.abspath(uri[len(prefix) :])
    return uri


def plain(cfg: Any) -> dict[str, Any]:
    """A composed config as a plain dict, interpolations resolved, Hydra's own node left out."""
    from omegaconf import DictConfig, OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else copy.deepcopy(dict(cfg))
    container.pop("hydra", None)
    return container  # type: ignore[return-value]


def tracking_target(cfg: Any) -> dict[str, Any]:
    """The ``tracking`` section where results really go: the platform's (Domino's) URI and
    experiment name applied, a relative SQLite path made absolute."""
    section = plain(cfg)
    out = platform.tracking_for(section.get("platform") or {}, section["tracking"])
    if out.get("uri"):
        out["uri"] = resolve_uri(str(out["uri"]))
    return out


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class Trainer:
    epochs: int
    batch_size: int
    seed: int
    threads: int  # a real count here: trainer.threads=0 is resolved
    device: str
    precision: str
    warmup_steps: int | None
    inference_runs: int
    inference_batch_size: int


@dataclass(frozen=True)
class Tracking:
    name: str  # local | none | server
    uri: str | None  # absolute for SQLite; the platform's own URI on Domino
    experiment: str
    run_name: str | None
    log_model: bool
    plots: bool
    timeout_s: int
    retries: int
    log_every_n_steps: int
    system_metrics: bool
    tensorboard: bool
    register: bool
    registered_model: str | None

    @property
    def enabled(self) -> bool:
        return self.name != "none"


@dataclass(frozen=True)
class Trial:
    """One trial, resolved. ``model``, ``data`` and ``optim`` differ by kind and stay read-only
    mappings; :attr:`config` is the whole resolved config, the one that is hashed and logged."""

    framework: str
    backend: str | None  # Keras' back end; None for the other frameworks
    compile: bool
    model: Mapping[str, Any]
    data: Mapping[str, Any]
    optim: Mapping[str, Any]
    trainer: Trainer
    tracking: Tracking
    platform: str  # the job mode in force: none | domino (auto is resolved)
    objective: str
    direction: str
    rerun: bool
    json: bool  # print the result as one JSON line
    config: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``torch``, ``tensorflow`` or ``keras-<backend>``."""
        return label(self.framework, self.backend)

    @property
    def run_name(self) -> str:
        return identity.run_name(self.config)

    @property
    def config_hash(self) -> str:
        return identity.config_hash(self.as_dict())  # plain data: the hash of what arena always hashed

    def as_dict(self) -> dict[str, Any]:
        """The resolved config as plain, mutable data (params, ``config.yaml``, notes)."""
        return _thawed(self.config)

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @classmethod
    def from_config(cls, resolved: Mapping[str, Any]) -> Trial:
        """A trial from an already resolved config (:func:`resolve_trial`'s output, or the child's copy)."""
        fw, tr, tk, arena = resolved["framework"], resolved["trainer"], resolved["tracking"], resolved.get("arena") or {}
        return cls(
            framework=fw["name"],
            backend=fw.get("backend") if fw["name"] == "keras" else None,
            compile=bool(fw.get("compile", False)),
            model=_frozen(resolved["model"]),
            data=_frozen(resolved["data"]),
            optim=_frozen(resolved["optim"]),
            trainer=Trainer(**{k: tr[k] for k in Trainer.__dataclass_fields__}),
            tracking=Tracking(**{k: tk[k] for k in Tracking.__dataclass_fields__}),
            platform=(resolved.get("platform") or {}).get("name", "none"),
            objective=current_name(arena.get("objective", "val/accuracy")),
            direction=arena.get("direction", "maximize"),
            rerun=bool(arena.get("rerun", False)),
            json=bool(arena.get("json", False)),
            config=_frozen(resolved),
        )

    @classmethod
    def from_json(cls, text: str) -> Trial:
        return cls.from_config(json.loads(text))


def resolve_trial(cfg: Any, parallel: int = 1) -> Trial:
    """Validates a composed config and resolves it into the one :class:`Trial` every process uses.

    Args:
        cfg: the composed config (a DictConfig from Hydra, or a plain mapping of the same shape).
        parallel: trials the launcher runs at once on this host (``cores.parallel_trials``):
            ``trainer.threads=0`` resolves to one trial's share of the cores.

    Raises:
        ConfigError: naming every wrong value, before anything is created.
    """
    resolved = plain(cfg)
    validation.validate(resolved)
    resolved["trainer"]["threads"] = resolve_threads(resolved["trainer"]["threads"], parallel)
    data = resolved["data"]
    if data["name"] == "shards" and data.get("num_samples") is None:
        # The rows trained on, from the manifest, so that the run logs its size (data.num_samples)
        # as an in-memory run does and arena-compare reads the scaling curve from runs only.
        data["num_samples"] = read_manifest(data["path"]).rows("train")
    if "platform" in resolved:
        resolved["tracking"] = tracking_target(resolved)
        resolved["platform"] = {"name": platform.active(resolved["platform"])}
    return Trial.from_config(resolved)
