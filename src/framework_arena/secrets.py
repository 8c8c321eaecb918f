"""Secret redaction for everything arena logs: params, tags, config.yaml and error texts.

A value is replaced when its key looks like a credential, when it embeds a URL password, or
when it contains the value of an environment variable whose name looks like a credential
(``DOMINO_USER_API_KEY``, ``MLFLOW_TRACKING_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``...).
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

MARKER = "***REDACTED***"
SECRET_NAME = re.compile(r"(token|secret|passw(or)?d|pwd|api[_-]?key|apikey|credential|private[_-]?key|auth)", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+):(?P<password>[^@\s]+)@")
MIN_SECRET_LENGTH = 4  # shorter values ("1", "true") would redact half the config


NOT_SECRET = ("PWD", "OLDPWD")  # the shell's working directories, not passwords


def looks_secret(name: str) -> bool:
    return name not in NOT_SECRET and bool(SECRET_NAME.search(name))


def _secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if looks_secret(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)  # longest first: a secret containing another


def redact_text(text: str) -> str:
    """``text`` with URL passwords and the values of credential-like variables masked."""
    text = URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:{MARKER}@", text)
    for value in _secret_values():
        text = text.replace(value, MARKER)
    return text


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` (nested mappings and lists too) safe to log under ``key``."""
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, key) for v in value]
    if key and looks_secret(key.rsplit(".", 1)[-1]) and value not in (None, ""):
        return MARKER
    return redact_text(value) if isinstance(value, str) else value
