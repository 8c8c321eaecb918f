"""Runs both conformance probes, probe_trainer.py (tests/test_conformance.py) and probe_layers.py
(tests/test_layers.py), in one fresh process for one framework variant: the framework is imported
once for both suites instead of once per suite (its import is most of a probe's time).

Usage: python probe_variant.py FRAMEWORK BACKEND|- TRAINER_MODELS_JSON LAYER_MODELS_JSON -> prints
one JSON line {"trainer": <probe_trainer.py's line>, "layers": <probe_layers.py's line>}.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys

here = os.path.dirname(os.path.abspath(__file__))
framework, backend, trainer_models, layer_models = sys.argv[1:5]
out = {}
for key, script, models_json in (("trainer", "probe_trainer.py", trainer_models), ("layers", "probe_layers.py", layer_models)):
    sys.argv = [script, framework, backend, models_json]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(os.path.join(here, script), run_name="__main__")
    out[key] = json.loads(printed.getvalue().strip().splitlines()[-1])
print(json.dumps(out))
