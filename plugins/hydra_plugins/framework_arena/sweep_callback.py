"""The sweep callback, on by default through conf/config.yaml (``hydra.callbacks.arena_sweep``).

Thin on purpose: Hydra imports every module under ``hydra_plugins`` when it scans for plugins,
so MLflow is imported only when a multirun actually starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class SweepCallback(Callback):
    """One MLflow parent run per multirun; a summary and the exit status when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from framework_arena.sweep import start

        # Only what is resolvable now: hydra.sweep.subdir, e.g., needs a job number.
        hydra_cfg = {
            "overrides": {"task": list(config.hydra.overrides.task)},
            "launcher": {"_target_": OmegaConf.select(config, "hydra.launcher._target_", default="")},
            "sweeper": {"_target_": OmegaConf.select(config, "hydra.sweeper._target_", default="")},
            "sweep": {"dir": str(config.hydra.sweep.dir)},
        }
        from framework_arena.platform import tracking_for

        trial_cfg = {k: OmegaConf.to_container(config[k], resolve=True) for k in ("tracking", "arena", "platform")}
        trial_cfg["tracking"] = tracking_for(trial_cfg["platform"], trial_cfg["tracking"])
        from framework_arena.errors import TrackingUnavailable

        try:
            start(trial_cfg, hydra_cfg)
        except TrackingUnavailable as e:
            # Hydra turns a callback's exception into a warning and launches every job anyway.
            print(f"[arena][ERROR] - {e}", file=sys.stderr)
            sys.exit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from framework_arena.sweep import finish

        try:
            failed = finish(config.arena.direction, config.arena.objective, OmegaConf.to_container(config.platform, resolve=True))
        except Exception as e:
            from framework_arena.sweep import URI_ENV
            from framework_arena.tracking import unavailable, unreachable

            if not unreachable(e):
                raise
            print(f"[arena][ERROR] - {unavailable(os.environ.get(URI_ENV, ''), e, 'The sweep summary was not recorded.')}", file=sys.stderr)
            sys.exit(1)
        if failed:
            # Hydra has no exit status for a sweep with failed jobs; without this it exits 0.
            print(f"{failed} trial(s) of the sweep did not finish: see the summary above.", file=sys.stderr)
            sys.exit(1)
