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
from dataclasses import dataclass
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
    (r"\b(3-Clause BSD|BSD[ -]3-Clause|New BSD|Modified BSD)( License)?", "BSD-3-Clause"),
    (r"\b(2-Clause BSD|BSD[ -]2-Clause|Simplified BSD)( License)?", "BSD-2-Clause"),
    (r"\bBSD License\b", "BSD"),
    (r"\bMIT License\b", "MIT"),
)
# A license text recognized by its opening words; the earliest match in a file wins, because a
# LICENSE file often appends the licenses of bundled code after the project's own.
_TEXTS = (
    (r"Apache License,?\s+Version 2\.0", "Apache-2.0"),
    (r"Permission is hereby granted, free of charge", "MIT"),
    (r"Boost Software License", "BSL-1.0"),
    (r"Mozilla Public License,?\s+[Vv]ersion 2\.0", "MPL-2.0"),
    (r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version (\d)", "LGPL-{}"),
    (r"GNU GENERAL PUBLIC LICENSE\s+Version (\d)", "GPL-{}"),
    (r"Permission to use, copy, modify, and(/or)? distribute this software for any purpose", "ISC"),
    (r"Redistribution and use in source and binary forms", "BSD"),  # 2- or 3-clause: see _recognize
)
_COMPOUND = re.compile(r"\s+AND\s+")
_TRAINERS = Path(__file__).resolve().parent / "trainers"


@dataclass(frozen=True)
class LicenseFacts:
    """What a framework's installed distribution says about its license.

    ``own`` is the framework's own license; ``bundled`` the other licenses the distribution declares
    (torch ships third-party code and declares ``Apache-2.0 AND ... AND MIT`` for the whole wheel,
    while its own LICENSE file is BSD-3-Clause); ``declared`` is that whole declaration.
    """

    dist: str
    own: str  # SPDX-like id, "unknown" when no rule identifies it
    source: str  # where ``own`` was read: License-Expression | License field | license classifier | LICENSE file
    bundled: tuple[str, ...]
    declared: str


def framework_facts(framework: str, backend: str | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """The run tags and metrics that describe ``framework`` as this process has it.

    The Keras back end changes neither fact today (Keras' own distribution and trainer); it is
    taken so that a back-end fact can join without changing the callers.

    Args:
        framework: ``torch``, ``tensorflow`` or ``keras``.
        backend: the Keras back end, or None.

    Returns:
        Tags ``arena.framework_dist`` (the installed distribution, e.g. ``tensorflow-cpu``),
        ``arena.license`` (the framework's own license, ``unknown`` when no distribution of the
        framework is found), ``arena.license_source`` (where it was read), ``arena.license_bundled``
        (the other licenses the distribution declares, comma-separated, when there are any) and
        ``arena.license_declared`` (the distribution's whole declaration); metrics
        ``facts/trainer_api_names`` and ``facts/trainer_lines`` (see :func:`code_size`), absent when the
        trainer's source is not on disk.
    """
    found = license_of(framework)
    tags = {"arena.license": "unknown"}
    if found is not None:
        tags = {"arena.framework_dist": found.dist, "arena.license": found.own, "arena.license_source": found.source}
        if found.bundled:
            tags["arena.license_bundled"] = ", ".join(found.bundled)
        if found.declared:
            tags["arena.license_declared"] = found.declared
    size = code_size(framework)
    metrics = {} if size is None else {"facts/trainer_api_names": float(size[1]), "facts/trainer_lines": float(size[0])}
    return tags, metrics


def normalize_license(text: str) -> str:
    """One spelling for the usual variants: ``Apache Software License`` -> ``Apache-2.0``."""
    for pattern, alias in _ALIASES:
        text = re.sub(pattern, alias, text)
    return text.strip()


def license_of(framework: str) -> LicenseFacts | None:
    """The license facts of the first installed distribution of ``framework``, None if none is.

    The own license is the first of, declared before recognized: a License-Expression naming one
    license (``MIT OR Apache-2.0`` counts as one: a choice, not bundled parts); a short License
    field; a single license classifier; a License field holding a full text, recognized by its
    opening words; the distribution's own top-level LICENSE file, recognized the same way. A
    License-Expression joining licenses with AND declares the whole distribution: its terms other
    than the own license are ``bundled`` (bundled code may share the own license too: ``declared``
    keeps the whole expression).
    """
    for name in DISTRIBUTIONS.get(framework, ()):
        try:
            return _read_license(name, md.distribution(name))
        except md.PackageNotFoundError:
            continue
    return None


def _read_license(name: str, dist: md.Distribution) -> LicenseFacts:
    meta = dist.metadata
    expression = normalize_license(meta.get("License-Expression") or "")
    field = (meta.get("License") or "").strip()
    field = "" if field.upper() in ("UNKNOWN", "NONE") else field  # what old setuptools wrote for "not set"
    short = normalize_license(field) if field and "\n" not in field and len(field) < 80 else ""
    classifiers = [normalize_license(c.split("::")[-1]) for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    # What the distribution declares comes before what a text is recognized as; files are read last.
    candidates = (
        lambda: (expression if expression and not _COMPOUND.search(expression) else "", "License-Expression"),
        lambda: (short, "License field"),
        lambda: (classifiers[0] if len(classifiers) == 1 else "", "license classifier"),
        lambda: (_recognize(field) if field and not short else "", "License field"),
        lambda: (_own_file_license(dist), "LICENSE file"),
    )
    own, source = next((found for candidate in candidates if (found := candidate())[0]), ("unknown", "no rule identified it"))
    terms = [t.strip("() ") for t in re.split(r"\s+(?:AND|OR)\s+", expression)] if _COMPOUND.search(expression) else []
    bundled = tuple(dict.fromkeys(t for t in terms if t and t != own))
    return LicenseFacts(name, own, source, bundled, expression or short or " AND ".join(classifiers))


def _recognize(text: str) -> str:
    """The license a text is, from its opening words (the earliest known one); "" if none."""
    found = [(m.start(), pattern, spdx, m) for pattern, spdx in _TEXTS if (m := re.search(pattern, text))]
    if not found:
        return ""
    _, _, spdx, match = min(found, key=lambda f: f[0])
    if spdx == "BSD":  # the third clause forbids using the authors' names to endorse
        return "BSD-3-Clause" if re.search(r"Neither the names? of", text[match.start() :]) else "BSD-2-Clause"
    return spdx.format(*match.groups()) if "{}" in spdx else spdx


def _own_file_license(dist: md.Distribution) -> str:
    """The license of the distribution's own top-level LICENSE file (not a bundled one's)."""
    listed = [f for f in dist.metadata.get_all("License-File") or [] if "/" not in f]
    for name in listed or ["LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING"]:
        for path in (f"licenses/{name}", name):  # metadata 2.4 puts them in licenses/; older wheels beside METADATA
            text = dist.read_text(path)
            if text:
                return _recognize(text[:20000])
    return ""


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
