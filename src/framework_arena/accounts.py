"""``arena-server user|grant|permission``: the users of MLflow's basic-auth app and their
permissions on experiments, through its REST API (``mlflow.server.auth``).

An admin runs them against a running ``arena-server --auth``; the admin's credentials come from
the environment, as every MLflow client's do (``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``; on the server's host ``MLFLOW_AUTH_ADMIN_USERNAME`` /
``MLFLOW_AUTH_ADMIN_PASSWORD`` also work). A new password is read from stdin or prompted, never
taken from the command line (``ps`` shows it to everyone).

    arena-server user add alice --password-stdin < alice.pw
    arena-server user password alice                      # prompts
    arena-server grant alice team EDIT                    # READ, EDIT, MANAGE or NO_PERMISSIONS
    arena-server permission alice team                    # -> alice on experiment 'team': EDIT

Plain HTTP with ``requests``: MLflow is imported only under ``tracking/``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

import requests

PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")  # mlflow.server.auth.permissions
CERT_VAR = "MLFLOW_TRACKING_SERVER_CERT_PATH"


class AccountError(RuntimeError):
    """A user or permission request failed; the message says why in one line."""


class Accounts:
    """The basic-auth app of the MLflow server at ``uri``, as an admin sees it.

    Args:
        uri: the server (``https://`` verified with ``MLFLOW_TRACKING_SERVER_CERT_PATH`` when set).
        username, password: an admin's credentials.
    """

    def __init__(self, uri: str, username: str, password: str) -> None:
        self.uri = uri.rstrip("/")
        self.auth = (username, password)
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        self.verify: bool | str = os.environ.get(CERT_VAR) or not insecure

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(method, self.uri + path, auth=self.auth, verify=self.verify, timeout=30, **kwargs)
        except requests.exceptions.SSLError:
            raise AccountError(
                f"MLflow tracking server at {self.uri}: its TLS certificate is not trusted: set {CERT_VAR} to the file of the CA that signed it"
            ) from None
        except requests.RequestException as e:
            raise AccountError(f"MLflow tracking server at {self.uri} is unreachable: {type(e).__name__}") from None
        if response.status_code == 401:
            raise AccountError(
                f"MLflow tracking server at {self.uri} refused the credentials (HTTP 401; sent: user {self.auth[0]!r}): "
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an admin account"
            )
        if response.status_code == 403:
            raise AccountError(f"MLflow tracking server at {self.uri} refused user {self.auth[0]!r} (HTTP 403): managing users needs an admin account")
        if response.status_code != 200:
            try:
                detail = response.json().get("message", "")
            except ValueError:
                detail = response.text
            raise AccountError(
                f"MLflow tracking server at {self.uri} refused {method} {path} (HTTP {response.status_code}): {' '.join(str(detail).split())[:300]}"
            )
        try:
            return response.json()
        except ValueError:
            return {}

    def add_user(self, username: str, password: str, admin: bool = False) -> None:
        self._request("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})
        if admin:
            self._request("PATCH", "/api/2.0/mlflow/users/update-admin", json={"username": username, "is_admin": True})

    def set_password(self, username: str, password: str) -> None:
        self._request("PATCH", "/api/2.0/mlflow/users/update-password", json={"username": username, "password": password})

    def experiment_id(self, name: str) -> str:
        try:
            found = self._request("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
        except AccountError as e:
            if "HTTP 404" in str(e):
                raise AccountError(
                    f"No experiment named {name!r} on {self.uri}: its first trial creates it (arena tracking.experiment={name}), as does the MLflow UI"
                ) from None
            raise
        return str(found["experiment"]["experiment_id"])

    def grant(self, username: str, experiment: str, permission: str) -> None:
        """Gives ``username`` ``permission`` on the experiment named ``experiment`` (replacing any)."""
        body = {"username": username, "resource_type": "experiment", "resource_id": self.experiment_id(experiment), "permission": permission}
        self._request("POST", "/api/3.0/mlflow/users/permissions/grant", json=body)

    def permission(self, username: str, experiment: str) -> str:
        """The permission ``username`` has on ``experiment``, as the server resolves it for a request."""
        params = {"username": username, "resource_type": "experiment", "resource_id": self.experiment_id(experiment)}
        return str(self._request("GET", "/api/3.0/mlflow/users/permissions/get", params=params).get("permission", ""))


def admin_credentials() -> tuple[str, str]:
    """(username, password) of the admin from the environment; raises AccountError if absent."""
    username = os.environ.get("MLFLOW_TRACKING_USERNAME") or os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    if not password:
        raise AccountError("No admin credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an admin account of the server")
    return username, password


def _new_password(from_stdin: bool, username: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Again: ") != password:
            raise AccountError("The two passwords differ")
    if not password:
        raise AccountError("Expected a password. Received: an empty one")
    return password


def main(argv: list[str]) -> int:
    """``arena-server user add|password``, ``grant`` and ``permission``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="arena-server", description="Users and experiment permissions of arena-server --auth (admin credentials from the environment)."
    )
    parser.add_argument(
        "--uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000",
        help="the server (default: MLFLOW_TRACKING_URI, else http://127.0.0.1:5000)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    user = commands.add_parser("user", help="add a user or set a password").add_subparsers(dest="action", required=True)
    for action, text in (("add", "create a user"), ("password", "set a user's password")):
        sub = user.add_parser(action, help=text)
        sub.add_argument("username")
        sub.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin (default: prompt)")
        if action == "add":
            sub.add_argument("--admin", action="store_true", help="make the user an admin")
    grant = commands.add_parser("grant", help="grant a user a permission on an experiment")
    grant.add_argument("username")
    grant.add_argument("experiment", help="the experiment's name")
    grant.add_argument("permission", choices=PERMISSIONS, type=str.upper)
    show = commands.add_parser("permission", help="show a user's permission on an experiment")
    show.add_argument("username")
    show.add_argument("experiment")
    # --uri is accepted before or after the sub-command.
    for sub in (grant, show, *user.choices.values()):
        sub.add_argument("--uri", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    say = lambda msg: print(f"[arena-server] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        accounts = Accounts(args.uri, *admin_credentials())
        if args.command == "user" and args.action == "add":
            accounts.add_user(args.username, _new_password(args.password_stdin, args.username), args.admin)
            say(f"user {args.username!r} created on {accounts.uri}" + (" (admin)" if args.admin else ""))
        elif args.command == "user":
            accounts.set_password(args.username, _new_password(args.password_stdin, args.username))
            say(f"password of {args.username!r} set on {accounts.uri}")
        elif args.command == "grant":
            accounts.grant(args.username, args.experiment, args.permission)
            say(f"{args.username} on experiment {args.experiment!r}: {args.permission}")
        else:
            print(f"{args.username} on experiment {args.experiment!r}: {accounts.permission(args.username, args.experiment)}")
    except AccountError as e:
        say(f"error: {e}")
        return 1
    return 0
