"""The launching process's side of tracking, for ``_worker.py``: a process of its own that
receives the child's messages on stdin and sends them with :class:`MetricSender`, as the runner
does while a trial trains.

Usage: python bench/_sender.py URI   (stdin: JSON lines ``["run", run_id]``, ``["step"|"epoch",
n, logs]``, ``["close"]``; after each close it prints one JSON line ``{"cpu_s": ...}``: the CPU
seconds this process spent on that run.)
"""

from __future__ import annotations

import json
import sys
import time

from framework_arena.tracking import MetricSender


def main(uri: str) -> None:
    sender, cpu = None, 0.0
    for line in sys.stdin:
        msg = json.loads(line)
        if msg[0] == "run":
            cpu = time.process_time()
            sender = MetricSender(uri, msg[1])
        elif msg[0] in ("step", "epoch") and sender is not None:
            sender.add(msg[2], msg[1])
        elif msg[0] == "close" and sender is not None:
            sender.close()
            sender = None
            print(json.dumps({"cpu_s": time.process_time() - cpu}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
