"""What to do when an MLflow request fails: strict mode, the HTTP bounds, and the one guard.

Every MLflow call of arena goes through a :class:`Guard`, in the manner of MLflow's
``ExceptionSafeClass`` (``mlflow/utils/autologging_utils``): tracking never breaks training in
production, and always breaks a test. The policy, written once:

- the server did not answer (:func:`unreachable`): remember it, make no further request through
  this guard, and say where the results are kept instead (``kept``);
- strict mode (``ARENA_STRICT_TRACKING=1``, set by the tests): raise;
- otherwise: warn and go on.

Calls nothing can go on without (creating the run) use :meth:`Guard.required` instead, which turns
"unreachable" into :class:`~framework_arena.errors.TrackingUnavailable`, and a refusal of MLflow's
auth app (:func:`denied`: HTTP 401, wrong or missing credentials; 403, a permission missing on
the experiment) into :class:`~framework_arena.errors.AccessDenied`, each one line.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, TypeVar

from framework_arena.errors import AccessDenied, TrackingUnavailable
from framework_arena.secrets import redact_text

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The variables MLflow's client takes credentials and the server's CA from, named in the messages.
CREDENTIAL_VARS = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
CERT_VAR = "MLFLOW_TRACKING_SERVER_CERT_PATH"

#: tracking.<key> -> the MLflow client's environment variable (read at every request).
HTTP_SETTINGS = {"timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT", "retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES"}


def strict() -> bool:
    """Under test (``ARENA_STRICT_TRACKING=1``) tracking errors raise instead of being logged."""
    return os.environ.get("ARENA_STRICT_TRACKING", "") == "1"


def configure_http(tracking: Mapping[str, Any]) -> Callable[[], None]:
    """Applies ``tracking.timeout_s`` and ``tracking.retries`` to MLflow's HTTP client; returns the
    function that puts the previous values back.

    Set in this process's environment, so the trial's child (and a launcher's workers) inherit
    them. MLflow's defaults (120 s, 7 retries with exponential back-off) keep a trial hanging for
    many minutes when the server is gone; these make it fail in seconds. A caller whose process
    outlives the work (the Python API in a notebook) restores them: the user's own MLflow calls
    afterwards keep MLflow's defaults.
    """
    before = {var: os.environ.get(var) for var in HTTP_SETTINGS.values()}
    for key, var in HTTP_SETTINGS.items():
        if tracking.get(key) is not None:
            os.environ[var] = str(int(tracking[key]))

    def restore() -> None:
        for var, value in before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value

    return restore


@contextmanager
def http_settings(tracking: Mapping[str, Any]) -> Iterator[None]:
    """:func:`configure_http` for the block."""
    restore = configure_http(tracking)
    try:
        yield
    finally:
        restore()


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the server did not answer (refused, timed out, kept failing)."""
    import requests

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if isinstance(e, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError, ConnectionError, TimeoutError)):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    # MLflow re-raises some request failures as a bare MlflowException quoting the cause.
    return any(s in str(error) for s in ("Max retries exceeded", "Connection refused", "Read timed out"))


def unreadable(error: BaseException) -> str | None:
    """The database's own words when ``error`` means the store's database cannot be read or
    written (locked by another process, not a database, a folder without permission), else None."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if type(e).__name__ in ("OperationalError", "DatabaseError") and type(e).__module__.startswith(("sqlite3", "sqlalchemy")):
            return " ".join(str(getattr(e, "orig", None) or e).split())[:200]
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    for words in ("database is locked", "file is not a database", "unable to open database file", "attempt to write a readonly database"):
        if words in str(error):
            return words
    return None


def denied(error: BaseException) -> int | None:
    """401 or 403 when ``error`` is the server refusing the credentials or the permission, else None.

    MLflow raises an ``MlflowException`` whose ``error_code`` maps back to the HTTP status
    (UNAUTHENTICATED, PERMISSION_DENIED); the text is the fallback for a wrapped one.
    """
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        status = getattr(e, "get_http_status_code", lambda: None)()
        if status in (401, 403):
            return int(status)
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    for status in (401, 403):
        if f"error code {status} != 200" in str(error):
            return status
    return None


def access_denied(uri: str, error: BaseException, experiment: str = "", permission: str = "", kept: str = "") -> AccessDenied:
    """The one-line :class:`AccessDenied` for ``error`` (see :func:`denied`); never quotes a secret.

    Args:
        uri: the server, named in the message.
        experiment, permission: what the refused request needed (403), e.g. ``team`` and ``EDIT``.
        kept: what became of the work ("Nothing was trained.").
    """
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    if denied(error) == 401:
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            sent = "the token in MLFLOW_TRACKING_TOKEN"
        elif user:
            sent = f"user {user!r} with the password in MLFLOW_TRACKING_PASSWORD"
        else:
            sent = "no credentials"
        text = f"MLflow tracking server at {uri} refused the credentials (HTTP 401; sent: {sent}): set {CREDENTIAL_VARS} to an account of this server."
    else:
        who = f"user {user!r}" if user else "this client"
        need = permission or "more"
        text = f"MLflow tracking server at {uri} refused {who} (HTTP 403): {need} permission on experiment {experiment!r} is needed and missing"
        if not experiment:
            text = f"MLflow tracking server at {uri} refused {who} (HTTP 403): {need} permission on the experiment is needed and missing"
        elif permission:
            text += f" (an admin grants it: arena-server grant {user or '<user>'} {experiment} {permission})"
        text += "."
    return AccessDenied(redact_text(text + (f" {kept}" if kept else "")))


def unavailable(uri: str, error: BaseException, kept: str = "") -> TrackingUnavailable:
    """The :class:`TrackingUnavailable` error for ``uri``, with the settings that bounded the wait."""
    settings = ", ".join(f"tracking.{k}={os.environ[v]}" for k, v in HTTP_SETTINGS.items() if v in os.environ)
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        cause = f"its TLS certificate is not trusted: set {CERT_VAR} to the file of the CA that signed it (or to the certificate itself)"
    elif "Connection refused" in text:
        cause = "connection refused"
    elif "timed out" in text or "timeout" in text.lower():
        cause = "no answer in time"
    elif "too many" in text and "error responses" in text:
        cause = "it kept answering with server errors"
    else:
        cause = " ".join(text.split())[:300]
    return TrackingUnavailable(
        redact_text(f"MLflow tracking server at {uri} is unreachable: {cause} ({settings or 'MLflow defaults'})." + (f" {kept}" if kept else ""))
    )


class Guard:
    """The error policy for the MLflow requests of one store (and, usually, one run).

    Args:
        uri: the tracking URI, named in every message (redacted).
        run_id: the run the requests are about, named in the messages when set.
        kept: where the results are kept once the server is lost, added to that warning
            (e.g. "this trial's results go to <folder>").
        raising: whether an error that is not "unreachable" raises: None (the default) leaves it
            to strict mode; True always (the caller must see it); False never (at exit, nobody
            is left to raise to).

    Attributes:
        lost: the error that showed the server unreachable; from then on :meth:`call` makes no
            request.
    """

    def __init__(self, uri: str, run_id: str = "", kept: str = "", raising: bool | None = None) -> None:
        self.uri = uri
        self.run_id = run_id
        self.kept = kept
        self.raising = raising
        self.lost: BaseException | None = None

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)`` under the policy; None when it failed or was not made.

        Args:
            what: the request in words, for the messages ("log the model").
        """
        if self.lost is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the policy decides; see the module docstring
            self.failed(what, e)
            return None

    def failed(self, what: str, error: Exception) -> None:
        """Applies the policy to ``error``, raised by ``what``: remembers, raises or warns."""
        run = f" for run {self.run_id}" if self.run_id else ""
        if unreachable(error):
            self.lost = error
            kept = f": {self.kept}" if self.kept else ""
            log.warning("%s", redact_text(f"MLflow tracking server at {self.uri} is unreachable (could not {what}); no further requests{run}{kept}"))
            return
        if self.raising or (self.raising is None and strict()):
            raise error
        log.warning("%s", redact_text(f"Could not {what}{run}: {error}"))

    @contextmanager
    def required(self, kept: str, experiment: str = "", permission: str = "") -> Iterator[None]:
        """Around requests nothing can go on without: "unreachable" becomes
        :class:`TrackingUnavailable` naming ``uri`` and ``kept`` (what became of the work), a
        refusal (401, 403) :class:`AccessDenied` naming ``experiment`` and the ``permission``
        the requests need (READ, EDIT); any other error propagates as it is."""
        try:
            yield
        except Exception as e:
            if isinstance(e, TrackingUnavailable):
                raise
            if denied(e):
                raise access_denied(self.uri, e, experiment, permission, kept) from e
            cause = unreadable(e)
            if cause is not None:  # a store on disk: no server to wait for, the file itself is the problem
                raise TrackingUnavailable(redact_text(f"MLflow store {self.uri} cannot be read: {cause}." + (f" {kept}" if kept else ""))) from e
            if not unreachable(e):
                raise
            self.lost = e
            raise unavailable(self.uri, e, kept) from e
