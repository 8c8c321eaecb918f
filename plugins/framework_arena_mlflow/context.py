"""Run context providers: tag runs with the platform job that produced them.

Each stays silent outside its platform (``in_context`` is False), as MLflow's own providers do.
MLflow applies them in ``mlflow.tracking.context.registry.resolve_tags``, which
``framework_arena.tracking`` calls for every run it creates.
"""

from __future__ import annotations

import os

from mlflow.tracking.context.abstract_context import RunContextProvider

DOMINO_VARIABLES = {
    "DOMINO_PROJECT_OWNER": "domino.project_owner",
    "DOMINO_PROJECT_NAME": "domino.project_name",
    "DOMINO_RUN_ID": "domino.run_id",
    "DOMINO_RUN_NUMBER": "domino.run_number",
    "DOMINO_STARTING_USERNAME": "domino.starting_username",
    "DOMINO_HARDWARE_TIER_ID": "domino.hardware_tier_id",
}
SLURM_VARIABLES = {
    "SLURM_JOB_ID": "slurm.job_id",
    "SLURM_ARRAY_JOB_ID": "slurm.array_job_id",
    "SLURM_ARRAY_TASK_ID": "slurm.array_task_id",
    "SLURM_JOB_NODELIST": "slurm.job_nodelist",
    "SLURM_JOB_PARTITION": "slurm.job_partition",
}


def _tags(variables: dict[str, str]) -> dict[str, str]:
    return {tag: os.environ[var] for var, tag in variables.items() if os.environ.get(var)}


class DominoRunContextProvider(RunContextProvider):
    """Tags from a Domino Data Lab job's environment, under ``domino.``."""

    def in_context(self) -> bool:
        return bool(os.environ.get("DOMINO_RUN_ID"))

    def tags(self) -> dict[str, str]:
        return _tags(DOMINO_VARIABLES)


class SlurmRunContextProvider(RunContextProvider):
    """Tags from a SLURM job's environment, under ``slurm.``."""

    def in_context(self) -> bool:
        return bool(os.environ.get("SLURM_JOB_ID"))

    def tags(self) -> dict[str, str]:
        return _tags(SLURM_VARIABLES)
