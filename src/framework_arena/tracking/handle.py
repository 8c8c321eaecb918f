"""The launching side's handle on a run: creates it, files params, tags and texts, sets its status."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from mlflow.entities import RunStatus

from framework_arena.errors import TrackingUnavailable
from framework_arena.identity import flatten
from framework_arena.secrets import redact, redact_text
from framework_arena.tracking.policy import Guard
from framework_arena.tracking.store import ensure_experiment, metric_batch, open_client, param_batch, resolve_uri, tag_batch

STATUS = {"FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}
log = logging.getLogger(__name__)

MAX_PARAMS = 100  # MLflow accepts at most 100 params per batch


class RunHandle:
    """The launching process's handle on one MLflow run: a trial's, a sweep's parent run, a comparison's.

    Its methods raise what MLflow raises; the caller picks the policy through :attr:`guard`
    (``handle.guard.call("set tags", handle.set_tags, tags)``).

    Args:
        uri: tracking URI (a relative SQLite path is made absolute).
        experiment: experiment name, created once if missing.
        run_id: attach to an existing run instead of creating one with :meth:`start`.
        experiment_id: the experiment's id, when the caller knows it (no look-up).
    """

    def __init__(self, uri: str, experiment: str | None = None, run_id: str = "", experiment_id: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self.client = open_client(self.uri)
        self.run_id = run_id
        self.experiment = experiment or ("" if run_id or experiment_id else "framework-arena")  # named in a 403
        self.guard = Guard(self.uri, run_id)
        # Attached to a run, the experiment is looked up only if a search needs it: a job that
        # just files its record on the sweep's run makes no extra request.
        with self.guard.required("Nothing was trained.", self.experiment, "READ"):
            self._experiment_id = experiment_id or (None if run_id else ensure_experiment(self.client, experiment or "framework-arena"))

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self.client.get_run(self.run_id).info.experiment_id
        return self._experiment_id

    def start(self, run_name: str, tags: Mapping[str, str], cfg: Mapping[str, Any] | None = None, kept: str = "Nothing was trained.") -> str:
        """Creates the run with its tags, and with ``cfg`` as params and ``config.yaml``; returns its id.

        ``kept`` says what became of the work when the run cannot be created.

        MlflowClient.create_run skips MLflow's run context providers (user, source, and ours:
        Domino, SLURM): they are resolved here, as ``mlflow.start_run`` would.
        """
        from mlflow.tracking.context.registry import resolve_tags

        all_tags = redact({k: str(v) for k, v in resolve_tags(dict(tags)).items()})
        # Creating the run is the first write: a user who may only read is refused here, before training.
        with self.guard.required(kept, self.experiment, "EDIT"):
            run = self.client.create_run(self.experiment_id, run_name=redact_text(run_name), tags=all_tags)
        self.run_id = self.guard.run_id = run.info.run_id
        if cfg is not None:
            import yaml

            with self.filling(f"Run {self.run_id} was created but not trained."):
                self.log_params(dict(flatten(cfg)))
                self.client.log_text(self.run_id, yaml.safe_dump(redact(dict(cfg)), sort_keys=False), "config.yaml")
        return self.run_id

    @contextmanager
    def filling(self, kept: str) -> Iterator[None]:
        """Around the requests that fill a new run in: the server unreachable raises
        :class:`TrackingUnavailable` naming ``kept``; any other error ends the run FAILED (a
        half-made run must not stay RUNNING) and propagates."""
        try:
            with self.guard.required(kept, self.experiment, "EDIT"):
                yield
        except TrackingUnavailable:
            raise  # no further request: the server is gone
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM turned into it) while filling: the user stopped it
            self.guard.call("mark the run KILLED", self.end, "KILLED")
            log.warning("Run %s stopped while it was being filled: marked KILLED", self.run_id)
            raise
        except BaseException:
            self.end("FAILED")
            raise

    def log_params(self, params: Mapping[str, Any]) -> None:
        batch = param_batch(params)
        for i in range(0, len(batch), MAX_PARAMS):
            self.client.log_batch(self.run_id, params=batch[i : i + MAX_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.client.log_batch(self.run_id, metrics=metric_batch(metrics, step))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=tag_batch(tags))

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, redact_text(text), path)

    def log_artifacts(self, folder: str) -> None:
        self.client.log_artifacts(self.run_id, folder)

    def log_learning_curves(self, history: Sequence[Mapping[str, float]], title: str, offline_dir: str | None = None) -> None:
        """Logs ``plots/learning_curves.png`` through :attr:`guard`; kept in ``offline_dir/plots``
        when the server is lost (``arena-sync`` uploads it). A plot never breaks a trial."""
        from pathlib import Path

        from framework_arena.tracking.curves import learning_curves

        try:
            fig = learning_curves(history, title)
            self.guard.call("log the learning curves", self.client.log_figure, self.run_id, fig, "plots/learning_curves.png")
            if self.guard.lost is not None and offline_dir:
                (Path(offline_dir) / "plots").mkdir(parents=True, exist_ok=True)
                fig.savefig(Path(offline_dir) / "plots" / "learning_curves.png")
        except Exception as e:  # noqa: BLE001 - a plot never breaks a trial in production
            self.guard.failed("plot the learning curves", e)

    def end(self, status: str) -> None:
        """Sets the final status: ``FINISHED``, ``FAILED`` or ``KILLED``."""
        self.client.set_terminated(self.run_id, RunStatus.to_string(STATUS[status]))

    def get(self, run_id: str | None = None) -> Any:
        return self.client.get_run(run_id or self.run_id)

    def search(self, filter_string: str, max_results: int = 1000) -> list[Any]:
        """Runs of this experiment matching an MLflow filter, newest first."""
        return list(
            self.client.search_runs([self.experiment_id], filter_string=filter_string, order_by=["attributes.start_time DESC"], max_results=max_results)
        )

    def find_finished(self, config_hash: str) -> Any | None:
        """The newest FINISHED trial run of this experiment with ``config_hash``, or None."""
        runs = self.search(f"tags.`arena.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'", 1)
        return runs[0] if runs else None

    def runs(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """The runs with these ids, searched in batches rather than one request each."""
        found: dict[str, Any] = {}
        ids = list(dict.fromkeys(run_ids))
        for i in range(0, len(ids), 100):
            chunk = ", ".join(f"'{r}'" for r in ids[i : i + 100])
            found.update((run.info.run_id, run) for run in self.search(f"attributes.run_id IN ({chunk})"))
        return found
