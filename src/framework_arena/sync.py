"""``arena-sync``: brings the offline copies of runs (``arena-offline/<run_id>/``) into their runs.

A trial that lost its tracking server keeps what the store missed on disk (``tracking/offline``);
once the server answers again, ``arena-sync`` uploads it: every metric at its original step and
time, the plots, the model, the tags, and the run's final status. Run it twice and nothing
doubles.

Usage: ``arena-sync [PATH ...] [--tracking-uri URI]``; a PATH is a copy, or a folder searched
for copies (a sweep dir, Hydra's ``outputs/``, a Domino artifacts folder); default ``.``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from framework_arena.errors import TrackingUnavailable
from framework_arena.secrets import redact_text

log = logging.getLogger("arena.sync")


def main(argv: Sequence[str] | None = None) -> int:
    """Syncs every copy found; exits 0 when all are in their runs, 1 otherwise (one line each)."""
    parser = argparse.ArgumentParser(prog="arena-sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["."], help="offline copies, or folders holding arena-offline/ (default: .)")
    parser.add_argument("--tracking-uri", default=None, help="the store, when not the one each copy names")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[arena-sync] %(message)s")

    from framework_arena.tracking.offline import find, sync

    copies = find(args.paths)
    if not copies:
        log.error("No offline copy (arena-offline/<run_id>/ with metrics.json or outcome.json) under %s", ", ".join(args.paths))
        return 1
    failed = 0
    for folder in copies:
        try:
            done = sync(folder, args.tracking_uri)
        except TrackingUnavailable as e:
            log.error("%s", e)
            failed += 1
            continue
        except Exception as e:  # noqa: BLE001 - one copy's problem must not stop the others
            log.error("%s: %s", folder, redact_text(f"{type(e).__name__}: {e}"))
            failed += 1
            continue
        added = f"{done.metrics} metrics, {done.artifacts} artifacts, {'the model' if done.model else 'no model'}, {done.tags} tags"
        status = f"marked {done.status}" if done.status else "status unchanged"
        log.info("Run %s in %s: %s added; %s (from %s)", done.run_id, redact_text(done.uri), added, status, folder)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
