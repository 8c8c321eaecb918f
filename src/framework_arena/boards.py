"""``python -m framework_arena.boards PARENT_RUN_ID``: a sweep's trials side by side in TensorBoard.

Downloads every trial's ``tensorboard/`` artifacts (``tracking.tensorboard``) of the sweep whose
parent run is PARENT_RUN_ID into ``--dest`` (one folder per trial, named after the run), then
prints the ``tensorboard --logdir`` command, or runs it with ``--launch``. Every trial writes the
same tags (``train/loss``, ``val/accuracy``, ...), so each chart holds all the sweep's trials.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Exits 0 when at least one trial's event files were downloaded, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m framework_arena.boards", description=__doc__.split("\n\n")[0])
    parser.add_argument("parent_run_id", help="the sweep's parent run id (the sweep summary prints it)")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    parser.add_argument("--dest", default=None, help="where to put the event files (default: ./arena-tensorboard/<parent run id>)")
    parser.add_argument("--launch", action="store_true", help="run tensorboard --logdir on them (Ctrl-C stops it)")
    args = parser.parse_args(argv)

    from framework_arena.tracking.boards import download_sweep_events

    dest = args.dest or os.path.join("arena-tensorboard", args.parent_run_id)
    folders = download_sweep_events(args.tracking_uri, args.parent_run_id, dest)
    if not folders:
        print(f"No trial of run {args.parent_run_id} has tensorboard/ artifacts (tracking.tensorboard=false?)", file=sys.stderr)
        return 1
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", dest]
    print(f"{len(folders)} trials' event files in {dest}; view them with:\n  {shlex.join(['tensorboard', '--logdir', dest])}")
    if args.launch:
        try:
            return subprocess.call(command)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
