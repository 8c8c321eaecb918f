#!/usr/bin/env bash
# A Domino job: the framework shoot-out as one sweep, tracked in the project's experiment.
#   Domino > Jobs > Run:  bash examples/domino/job.sh
#   fewer trials:         FRAMEWORKS=torch,keras SEEDS=0 bash examples/domino/job.sh trainer.epochs=3
# Extra arguments are Hydra overrides. Domino provides DOMINO_* and MLFLOW_TRACKING_URI.
set -euo pipefail

# The environment image may already hold the project; install it from this checkout otherwise.
command -v arena >/dev/null || pip install --quiet -e "$(cd "$(dirname "$0")/../.." && pwd)[all]"

arena -m platform=domino \
  "framework=${FRAMEWORKS:-torch,tensorflow,keras}" \
  "trainer.seed=${SEEDS:-0,1,2}" \
  "$@"
