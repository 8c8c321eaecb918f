"""Facts about the framework a trial ran on, which the trial logs so that compare reads only runs.

A comparison may run years later, on a machine where a framework is not installed or where the
trainers have changed since: the license and the size of the trainer that ran belong to the run.
The trial's child process calls :func:`framework_facts` (the framework is installed there); it
reads the installed distribution's metadata and this package's own trainer source, and imports
neither MLflow nor a framework.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
from pathlib import Path

#: Distributions that provide each framework, in the order they are looked for.
DISTRIBUTIONS = {"torch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "keras": ("keras",)}
#: The trainer's source files for each framework, in framework_arena/trainers/.
TRAINER_FILES = {"torch": ("torch.py",), "tensorflow": ("tensorflow.py", "_tf_optim.py"), "keras": ("keras.py",)}
#: The names a framework's API is reached through in its trainer (``import torch.nn as nn`` ...).
FRAMEWORK_ROOTS = {"torch": ("torch", "nn", "F"), "tensorflow": ("tf",), "keras": ("keras",)}

# The same license written several ways in metadata: one spelling, so reports and article agree.
_ALIASES = (
    (r"Apache( Software)?( License)?,?( Version)? ?2(\.0)?|Apache Software License", "Apache-2.0"),
    (r"\bBSD License\b", "BSD"),
    (r"\bMIT License\b", "MIT"),
)
_TRAINERS = Path(__file__).resolve().parent / "trainers"


def framework_facts(framework: str, backend: str | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """The run tags and metrics that describe ``framework`` as this process has it.

    The Keras back end changes neither fact today (Keras' own distribution and trainer); it is
    taken so that a back-end fact can join without changing the callers.

    Args:
        framework: ``torch``, ``tensorflow`` or ``keras``.
        backend: the Keras back end, or None.

    Returns:
        Tags ``arena.framework_dist`` (the installed distribution, e.g. ``tensorflow-cpu``) and
        ``arena.license`` (its license, ``unknown`` when no distribution of the framework is
        found); metrics ``trainer_api_names`` and ``trainer_lines`` (see :func:`code_size`), absent
        when the trainer's source is not on disk.
    """
    found = license_of(framework)
    tags = {"arena.license": "unknown"} if found is None else {"arena.framework_dist": found[0], "arena.license": found[1]}
    size = code_size(framework)
    metrics = {} if size is None else {"trainer_api_names": float(size[1]), "trainer_lines": float(size[0])}
    return tags, metrics


def license_of(framework: str) -> tuple[str, str] | None:
    """(distribution, license text) of the first installed distribution of ``framework``."""
    for dist in DISTRIBUTIONS.get(framework, ()):
        try:
            meta = md.metadata(dist)
        except md.PackageNotFoundError:
            continue
        text = meta.get("License-Expression") or ""
        if not text:
            short = (meta.get("License") or "").strip()
            text = short if short and "\n" not in short and len(short) < 80 else ""
        if not text:
            text = " AND ".join(c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::"))
        for pattern, alias in _ALIASES:
            text = re.sub(pattern, alias, text)
        return dist, text or "unknown"
    return None


def code_size(framework: str) -> tuple[int, int] | None:
    """(logical lines, distinct framework API names) of the trainer implementing ``framework``.

    Logical lines: the lines of statements, docstrings excluded, a compound statement counted by
    its header. API names: dotted names rooted at the framework (``torch.*``, ``nn.*``, ``tf.*``,
    ``keras.*``), a name counted only when no longer one extends it. None if a source file is
    missing (an install without sources).
    """
    lines: set[tuple[str, int]] = set()
    apis: set[str] = set()
    for name in TRAINER_FILES.get(framework, ()):
        path = _TRAINERS / name
        if not path.exists():
            return None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
            and isinstance(n.body[0].value.value, str)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and not (isinstance(node, ast.Expr) and id(node.value) in docstrings):
                lines.update(
                    (name, ln)
                    for ln in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                    if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try)) or ln == node.lineno
                )
            if isinstance(node, ast.Attribute):
                dotted = ast.unparse(node)
                if dotted.split(".")[0] in FRAMEWORK_ROOTS[framework] and "(" not in dotted and "[" not in dotted:
                    apis.add(dotted)
    return len(lines), len({a for a in apis if not any(b.startswith(a + ".") for b in apis)})
