#!/usr/bin/env bash
# Runs the framework shoot-out (conf/experiment/shootout.yaml) into ./mlflow.db, then opens
# ranks the frameworks with arena-compare and opens the MLflow UI on it all. Extra arguments go to arena, e.g.:
#   examples/shootout.sh trainer.epochs=3 hydra/launcher=joblib hydra.launcher.n_jobs=2
# Repeats for statistics: the experiment sweeps trainer.seed=0,1,2; for N seeds pass
#   'trainer.seed=range(0,N)'
set -euo pipefail
arena experiment=shootout "$@" || echo "Some trials failed: see the sweep summary above." >&2
# The ranking of the sweep just run (profile: ranking=balanced|speed|research|production|beginner);
# the report is the comparison run's report.html in the UI, and under outputs/compare/.
arena-compare select.sweep=latest
echo "Opening the MLflow UI on http://127.0.0.1:5000 (Ctrl-C to stop)"
exec mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000
