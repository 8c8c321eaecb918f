"""MLflow: the only package that imports it (besides the MLflow plugins).

The launching process (:class:`RunHandle`) creates the run, logs params, tags and the config, and
owns the final status, so a run ends FINISHED, FAILED or KILLED whatever happens to the child.
It also sends the training metrics the child reports over its pipe (:class:`MetricSender`), so
that no MLflow request runs in the training process while it trains. The child
(:class:`RunLogger`) logs the final figures, the learning curves and the model to that run id.

One module per job:

- ``policy``: strict mode, the HTTP timeout and retries, :func:`unreachable`, :func:`unavailable`,
  and :class:`Guard`, the one error policy every MLflow call goes through.
- ``store``: the tracking URI, the experiment and its tags, the metric/tag/param batches, the
  offline folder.
- ``handle``: :class:`RunHandle`, the launching side's run (a trial's, a sweep's, a comparison's).
- ``sender``: :class:`MetricSender`, the training metrics from the launching process.
- ``logger``: :class:`RunLogger`, the child's logger and its offline copy.
- ``curves``: the learning-curve figure. ``flavors``: the model in its MLflow flavor.
- ``reader``: :class:`Reader`, read-only access for ``arena-compare``.
- ``comparison``: :func:`log_comparison`, the comparison run ``arena-compare`` logs back.
"""

from framework_arena.tracking.comparison import log_comparison
from framework_arena.tracking.handle import RunHandle
from framework_arena.tracking.logger import RunLogger
from framework_arena.tracking.policy import Guard, configure_http, http_settings, strict, unavailable, unreachable
from framework_arena.tracking.reader import Reader
from framework_arena.tracking.sender import MetricSender
from framework_arena.tracking.store import ensure_experiment, offline_dir, resolve_uri

__all__ = [
    "Guard",
    "MetricSender",
    "Reader",
    "RunHandle",
    "RunLogger",
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
