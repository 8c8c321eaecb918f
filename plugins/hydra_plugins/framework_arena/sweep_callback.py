"""The sweep callback, on by default through conf/config.yaml (``hydra.callbacks.arena_sweep``).

Thin on purpose: Hydra imports every module under ``hydra_plugins`` when it scans for plugins,
so MLflow is imported only when a multirun actually starts. The sweep's state lives on the
:class:`~framework_arena.sweep.Sweep` this callback holds, as Hydra's own callbacks keep theirs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from framework_arena.sweep import Sweep


class SweepCallback(Callback):
    """One MLflow parent run per multirun; a summary and the exit status when it ends."""

    def __init__(self) -> None:
        self.sweep: Sweep | None = None  # None with tracking=none

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from framework_arena.errors import TrackingUnavailable
        from framework_arena.sweep import Sweep
        from framework_arena.trial import tracking_target

        # Only what is resolvable now: hydra.sweep.subdir, e.g., needs a job number.
        hydra_cfg = {
            "overrides": {"task": list(config.hydra.overrides.task)},
            "launcher": {"_target_": OmegaConf.select(config, "hydra.launcher._target_", default="")},
            "sweeper": {"_target_": OmegaConf.select(config, "hydra.sweeper._target_", default="")},
            "sweep": {"dir": str(config.hydra.sweep.dir)},
        }
        trial_cfg = {k: OmegaConf.to_container(config[k], resolve=True) for k in ("tracking", "arena", "platform")}
        trial_cfg["tracking"] = tracking_target(trial_cfg)  # where each trial's resolve_trial sends its run
        try:
            self.sweep = Sweep.start(trial_cfg, hydra_cfg)
        except TrackingUnavailable as e:
            _fail(e)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.sweep is None:
            return
        from framework_arena.errors import TrackingUnavailable

        try:
            failed = self.sweep.finish(config.arena.direction, config.arena.objective, OmegaConf.to_container(config.platform, resolve=True))
        except TrackingUnavailable as e:
            _fail(e)
        if failed:
            # Hydra has no exit status for a sweep with failed jobs; without this it exits 0.
            print(f"{failed} trial(s) of the sweep did not finish: see the summary above.", file=sys.stderr)
            sys.exit(1)


def _fail(error: BaseException) -> NoReturn:
    # Hydra turns a callback's exception into a warning (and would launch every job anyway).
    print(f"[arena][ERROR] - {error}", file=sys.stderr)
    sys.exit(1)
