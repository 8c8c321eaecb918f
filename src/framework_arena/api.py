"""The Python API: what ``arena``, ``arena -m`` and ``arena-compare`` do, callable from a notebook.

Configuration goes through Hydra's compose API with the same config tree and overrides as the
command line (never by patching ``sys.argv``), so a bad value raises the same
:class:`~framework_arena.errors.ConfigError`, with the same message, as ``arena`` prints. Results
are read back from what MLflow and the report hold, not from the process's memory.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from framework_arena.config import register_configs
from framework_arena.identity import job_records
from framework_arena.metric_names import current
from framework_arena.runner import TrialResult, run_trial
from framework_arena.trial import resolve_trial

if TYPE_CHECKING:
    import pandas as pd
    from omegaconf import DictConfig

__all__ = ["Comparison", "SweepResult", "TrialResult", "compare", "sweep", "train"]

CONF_MODULE = "framework_arena.conf"


def _register() -> None:
    from framework_arena.compare.settings import register as register_compare

    register_configs()
    register_compare()


def _compose(config_name: str, overrides: Sequence[str], hydra_config: bool = False) -> DictConfig:
    """The config ``arena`` (``config``) or ``arena-compare`` (``compare``) would run with."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    _register()
    GlobalHydra.instance().clear()  # a notebook may have initialized Hydra before
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3", job_name=f"arena-{config_name}"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra_config)


def train(overrides: Sequence[str] = ()) -> TrialResult:
    """Trains one trial exactly as ``arena <overrides>`` does: the same validation, child process
    and MLflow run.

    Args:
        overrides: Hydra overrides, e.g. ``["framework=keras", "framework.backend=torch", "trainer.epochs=3"]``.

    Returns:
        The :class:`~framework_arena.runner.TrialResult`: ``status``, ``run_id``, ``tracking_uri``,
        ``metrics`` (the last epoch's and the final figures), ``reason`` and ``message`` when it
        did not finish.

    Raises:
        ConfigError: a wrong value, before any run is created (the message ``arena`` prints).
    """
    return run_trial(resolve_trial(_compose("config", overrides)), list(overrides))


@dataclass
class SweepResult:
    """A multirun as MLflow holds it: the parent run and one :class:`TrialResult` per job, in job order."""

    parent_run_id: str | None
    tracking_uri: str | None
    trials: list[TrialResult]
    failed: int  # jobs that did not finish: FAILED, KILLED or INVALID (a SKIPPED twin had finished before)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def sweep(overrides: Sequence[str] = ()) -> SweepResult:
    """Runs a multirun as ``arena -m <overrides>`` does, through Hydra's own sweeper, launcher and
    callbacks (the parent run, resume, the summary): ``hydra/launcher=joblib`` and the others work.

    Returns:
        The parent run's id and each job's result read back from MLflow; a sweep with failed jobs
        returns them (``failed`` > 0) instead of exiting as the command does.

    Raises:
        ConfigError: a wrong value in a job that is not part of a sweep's contained failures.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from framework_arena import app
    from framework_arena.trial import tracking_target

    _register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3", job_name="arena"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        # `arena -m` adds hydra.mode=MULTIRUN: the jobs read it (HydraConfig) to join the sweep's run.
        overrides = [*overrides, "hydra.mode=MULTIRUN"]
        cfg = hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False)
        sweep_dir = str(cfg.hydra.sweep.dir)
        overrides.append(f"hydra.sweep.dir={sweep_dir}")  # the multirun composes again: keep its ${now:} folder ours
        try:
            # The real multirun, with arena's own task function: the same jobs `arena -m` runs.
            hydra.multirun(config_name="config", task_function=app.train_job, overrides=overrides, with_log_configuration=False)
        except SystemExit as e:  # the sweep callback's exit status for failed jobs
            if e.code not in (0, 1, None):
                raise
    return _sweep_result(tracking_target({k: cfg[k] for k in ("tracking", "platform")}), sweep_dir)


def _sweep_result(tracking: dict[str, Any], sweep_dir: str) -> SweepResult:
    if tracking.get("name") == "none" or not tracking.get("uri"):
        return SweepResult(None, None, [], 0)
    from framework_arena.tracking import RunHandle

    handle = RunHandle(tracking["uri"], tracking["experiment"])
    quoted = sweep_dir.replace("'", "\\'")
    parents = handle.search(f"tags.`arena.kind` = 'sweep' and tags.`arena.sweep_dir` = '{quoted}'", 1)
    if not parents:
        return SweepResult(None, handle.uri, [], 0)
    parent = parents[0]
    records = job_records(parent.data.tags)
    runs = handle.runs([r["run_id"] for _, r in records if r.get("run_id")])
    trials = []
    for _, rec in records:
        run = runs.get(rec.get("run_id") or "")
        trials.append(
            TrialResult(
                status=rec["status"],
                run_name=run.info.run_name if run is not None else " ".join(rec.get("overrides", [])),
                run_id=rec.get("run_id"),
                tracking_uri=handle.uri,
                metrics=current(run.data.metrics) if run is not None else {},
                reason=run.data.tags.get("arena.failure_reason") if run is not None else None,
                message=rec.get("message"),
            )
        )
    failed = sum(t.status in ("FAILED", "KILLED", "INVALID") for t in trials)
    return SweepResult(parent.info.run_id, handle.uri, trials, failed)


@dataclass
class Comparison:
    """What ``arena-compare`` produced, as DataFrames read from the report it wrote.

    Attributes:
        ranking: one row per framework: ``rank``, ``tied``, ``framework``, ``score``, its interval, ``runs``.
        criteria: one row per criterion and framework: value, display, interval, score, notes.
        verdicts: one row per article row: the article's words, our evidence, the verdict.
        runs: the runs compared, with their workload.
        workloads: one row per workload, criterion and framework: the seed median, the ratio to the best there.
        run_id: the comparison run (None with ``report.log_run=false``).
        folder: the report's folder (``report.html``, ``report.md``, the CSV files, ``plots/``).
    """

    ranking: pd.DataFrame
    criteria: pd.DataFrame
    verdicts: pd.DataFrame
    runs: pd.DataFrame
    workloads: pd.DataFrame
    run_id: str | None
    folder: Path
    profile: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"

    def _repr_html_(self) -> str:
        """Jupyter's view: the ranking, the verdicts and the criteria plot, without scripts."""
        import base64

        parts = [f"<h4>framework-arena: ranking ({html.escape(self.profile)})</h4>", self.ranking.to_html(index=False)]
        if len(self.verdicts):
            parts += ["<h4>The article beside our measurements</h4>", self.verdicts[["article row", "verdict"]].to_html(index=False, escape=True)]
        plot = self.folder / "plots" / "criteria.png"
        if plot.exists():
            data = base64.b64encode(plot.read_bytes()).decode("ascii")
            parts.append(f"<img style='max-width:100%' alt='measured criteria' src='data:image/png;base64,{data}'>")
        parts.append(
            f"<p>Full report: <code>{html.escape(str(self.report_path))}</code>"
            + (f"; comparison run <code>{self.run_id}</code>" if self.run_id else "")
            + "</p>"
        )
        return "\n".join(parts)


def compare(overrides: Sequence[str] = (), *, out_dir: str | Path | None = None) -> Comparison:
    """Ranks the frameworks as ``arena-compare <overrides>`` does, and returns the result as DataFrames.

    Args:
        overrides: the same overrides as the command, e.g. ``["select.sweep=latest", "ranking=speed"]``.
        out_dir: where the report goes (default: ``outputs/compare/<date>/<time>/comparison``, as the command).

    Raises:
        ConfigError: a wrong value, before anything is read.
        NothingToCompare, NoRanking: nothing to rank (the command's exit status 1).
    """
    from omegaconf import OmegaConf

    from framework_arena.compare import frames, settings
    from framework_arena.compare.run import compare as run_compare

    cfg = _compose("compare", overrides, hydra_config=True)
    profile = str(cfg.hydra.runtime.choices.get("ranking", "custom"))
    plain = settings.prepare(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    folder = (
        Path(out_dir)
        if out_dir is not None
        else Path("outputs", "compare", time.strftime("%Y-%m-%d"), time.strftime("%H-%M-%S-") + f"{time.time() % 1:.6f}"[2:], "comparison")
    )
    rep = run_compare(plain, folder, profile, quiet=True)
    tables = frames.frames(rep, folder)
    return Comparison(tables["ranking"], tables["criteria"], tables["verdicts"], tables["runs"], tables["workloads"], rep.run_id, folder, profile)
