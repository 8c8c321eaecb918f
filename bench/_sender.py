"""The launching process's side of tracking, for ``_worker.py``: a process of its own that
receives the child's messages on stdin and logs them with :class:`RunRelay`, as the runner does
while a trial trains.

Usage: python bench/_sender.py URI   (stdin: JSON lines ``["run", run_id]``, the child's messages
(``["step"|"epoch"|"metrics", n, logs]``, ``["tags", tags]``, ...), ``["close"]``; after each close it
prints one JSON line ``{"cpu_s": ...}``: the CPU seconds this process spent on that run.)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from framework_arena.tracking import RunHandle
from framework_arena.tracking.relay import RunRelay


def main(uri: str) -> None:
    relay, cpu = None, 0.0
    with tempfile.TemporaryDirectory(prefix="arena-bench-offline-") as offline:  # a lost server's copy: never, on a local store
        for line in sys.stdin:
            msg = json.loads(line)
            if msg[0] == "run":
                cpu = time.process_time()
                relay = RunRelay(RunHandle(uri, run_id=msg[1]), offline)
            elif msg[0] == "close" and relay is not None:
                relay.close()
                relay = None
                print(json.dumps({"cpu_s": time.process_time() - cpu}), flush=True)
            elif relay is not None:
                relay.handle_message(msg)


if __name__ == "__main__":
    main(sys.argv[1])
