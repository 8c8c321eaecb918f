"""MLflow: the only package that imports it (besides the MLflow plugins).

The launching process (:class:`RunHandle`) creates the run, logs params, tags and the config, and
owns the final status, so a run ends FINISHED, FAILED or KILLED whatever happens to the child.
It also logs everything the child reports over its pipe (:class:`~framework_arena.tracking.relay.RunRelay`:
training metrics through :class:`MetricSender`, tags, texts, artifacts, the saved model), so
that the training process never opens the store (``framework_arena/outbox.py``); the child
imports MLflow only to save its model in the flavor's format (``flavors``).

One module per job:

- ``policy``: strict mode, the HTTP timeout and retries, :func:`unreachable`, :func:`unavailable`,
  and :class:`Guard`, the one error policy every MLflow call goes through.
- ``store``: the tracking URI, the experiment and its tags, the metric/tag/param batches, the
  offline folder.
- ``handle``: :class:`RunHandle`, the launching side's run (a trial's, a sweep's, a comparison's).
- ``sender``: :class:`MetricSender`, the training metrics from the launching process.
- ``relay``: :class:`RunRelay`, what the child reports, logged; the offline copy.
- ``models``: the LoggedModel from the child's saved folder, its linked metrics, the registry.
- ``offline``: ``arena-sync``, the offline copy brought back.
- ``curves``: the learning-curve figure. ``flavors``: the model in its MLflow flavor.
- ``reader``: :class:`Reader`, read-only access for ``arena-compare``.
- ``comparison``: :func:`log_comparison`, the comparison run ``arena-compare`` logs back.
"""

import importlib
from typing import Any

#: Each public name and the module that defines it. Imported on first use (PEP 562): importing
#: MLflow costs about 3.5 s of CPU here, and the launcher needs ``http_settings`` (no MLflow)
#: before it starts the trial's child, which should not wait for that import (runner.py).
_HOMES = {
    "log_comparison": "comparison",
    "RunHandle": "handle",
    "RunRelay": "relay",
    "Guard": "policy",
    "configure_http": "policy",
    "http_settings": "policy",
    "strict": "policy",
    "unavailable": "policy",
    "unreachable": "policy",
    "Reader": "reader",
    "MetricSender": "sender",
    "ensure_experiment": "store",
    "offline_dir": "store",
    "resolve_uri": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # once: later look-ups do not come here
    return value


__all__ = [
    "Guard",
    "MetricSender",
    "Reader",
    "RunHandle",
    "RunRelay",
    "configure_http",
    "http_settings",
    "ensure_experiment",
    "log_comparison",
    "offline_dir",
    "resolve_uri",
    "strict",
    "unavailable",
    "unreachable",
]
