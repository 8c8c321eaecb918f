"""``arena-server``: a shared MLflow tracking server on PostgreSQL, with served artifacts.

One folder holds everything: ``postgres/`` (the database cluster, created once with ``initdb``),
``artifacts/`` (what ``mlflow server --artifacts-destination`` serves) and ``secrets.json`` (the
database password and the Flask secret key, generated once, mode 600). PostgreSQL listens on
loopback only and refuses to run as root, so as root its processes run as the ``postgres`` user.

    arena-server --dir ~/arena-server --port 5000               # no authentication
    MLFLOW_AUTH_ADMIN_PASSWORD=... arena-server --auth            # MLflow's basic-auth app
    ... arena-server --auth --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem   # HTTPS (uvicorn)

Trials then log with ``arena tracking=server tracking.uri=http://127.0.0.1:5000`` and, with
``--auth``, credentials from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``; over
HTTPS with a private CA, clients trust it through ``MLFLOW_TRACKING_SERVER_CERT_PATH``. Users and
their permissions: ``arena-server user|grant|permission`` (:mod:`framework_arena.accounts`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from framework_arena.ports import free_port

PG_USER = "mlflow"  # the database role MLflow connects as
DATABASES = ("mlflow", "mlflow_auth")  # runs and artifacts' metadata; basic-auth users
LEGACY_ADMIN_PASSWORD = "password1234"  # what old MLflow versions shipped; MLflow refuses it too
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ACCOUNT_COMMANDS = ("user", "grant", "permission")  # arena-server sub-commands, in framework_arena.accounts


class ServerError(RuntimeError):
    """The tracking server could not be set up or started; the message says what to do."""


def postgres_bindir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _as_postgres() -> pwd.struct_passwd | None:
    """The account PostgreSQL's processes run as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user: create one (useradd --system postgres) or run arena-server as a regular user"
        ) from None


def _blocked_for(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first ancestor of ``path`` that ``user`` cannot enter, or None."""
    groups = {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in reversed(path.resolve().parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid or st.st_mode & 0o001 or (st.st_gid in groups and st.st_mode & 0o010):
            continue
        return folder
    return None


class Postgres:
    """A PostgreSQL cluster in ``folder``, listening on 127.0.0.1 only (no Unix socket).

    Args:
        folder: where the cluster lives (``data/``, ``postgres.log``); created if missing.
        password: the password of the ``mlflow`` role, set when the cluster is created.
        bindir: the PostgreSQL binaries; default :func:`postgres_bindir`.
    """

    def __init__(self, folder: Path, password: str, bindir: Path | None = None) -> None:
        self.folder = Path(folder).absolute()
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.password = password
        self.port = 0
        bindir = bindir or postgres_bindir()
        if bindir is None:
            raise ServerError("PostgreSQL is not installed (no pg_ctl on PATH nor in /usr/lib/postgresql/*/bin): install it, e.g. apt-get install postgresql")
        self.bindir = bindir
        self.account = _as_postgres()

    def _run(self, *args: str, input: str | None = None) -> str:
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            input=input,
            capture_output=True,
            text=True,
            cwd=self.folder,
            user=self.account.pw_uid if self.account else None,
            group=self.account.pw_gid if self.account else None,
        )
        if proc.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise ServerError(f"{args[0]} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}\n{tail}".rstrip())
        return proc.stdout

    def init(self) -> bool:
        """Creates the cluster unless it exists; returns whether it was created."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.account:
            blocked = _blocked_for(self.folder, self.account)
            if blocked is not None:
                raise ServerError(
                    f"PostgreSQL runs as user 'postgres' (it refuses root), which cannot enter {blocked}: choose a --dir outside it (e.g. under /srv or /tmp) or run arena-server as a regular user"
                )
            os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)
        if (self.data / "PG_VERSION").exists():
            return False
        pwfile = self.folder / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.account:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale")
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# arena-server: loopback TCP only\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
        return True

    def start(self, port: int = 0) -> None:
        """Starts the server on ``port`` (a free one when 0) and creates the databases once."""
        self.port = port or free_port()
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}")
        import psycopg

        # autocommit: CREATE DATABASE cannot run in a transaction
        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, password=self.password, dbname="postgres", autocommit=True) as conn:
            for name in DATABASES:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        self.port = 0

    def url(self, database: str = "mlflow") -> str:
        """The SQLAlchemy URL of ``database`` (it holds the password: never log it)."""
        return f"postgresql+psycopg://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def version(self) -> str:
        return (self.data / "PG_VERSION").read_text().strip()


class TrackingServer:
    """``mlflow server`` on a :class:`Postgres` cluster, with served artifacts and optional basic auth.

    Args:
        folder: holds ``postgres/``, ``artifacts/``, ``secrets.json`` and, with auth, ``basic_auth.ini``.
        host, port: where MLflow listens (port 0: a free one).
        auth: MLflow's basic-auth app; the admin password comes from ``MLFLOW_AUTH_ADMIN_PASSWORD``.
        workers: uvicorn worker processes.
        backend_uri: another backend store instead of PostgreSQL (e.g. ``sqlite:///...``).
        allowed_hosts: MLflow's ``--allowed-hosts`` (Host headers accepted beyond localhost and private IPs).
        tls_cert, tls_key: PEM certificate (chain) and private key: uvicorn serves HTTPS with them.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 5000,
        auth: bool = False,
        workers: int = 2,
        backend_uri: str | None = None,
        allowed_hosts: str | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
    ) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.host, self.port, self.auth, self.workers = host, port, auth, workers
        self.backend_uri = backend_uri
        self.allowed_hosts = allowed_hosts
        if (tls_cert is None) != (tls_key is None):
            raise ServerError("HTTPS needs both --tls-cert and --tls-key (PEM files)")
        self.tls = (Path(tls_cert).expanduser().absolute(), Path(tls_key).expanduser().absolute()) if tls_cert and tls_key else None
        self.artifacts = self.folder / "artifacts"
        self.postgres: Postgres | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.created = False

    @property
    def uri(self) -> str:
        return f"{'https' if self.tls else 'http'}://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}:{self.port}"

    def _secrets(self) -> dict[str, str]:
        path = self.folder / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        values = {"postgres_password": secrets.token_urlsafe(24), "flask_secret_key": secrets.token_urlsafe(32)}
        path.touch(mode=0o600)
        path.write_text(json.dumps(values, indent=2) + "\n")
        return values

    def _auth_env(self, database_uri: str) -> dict[str, str]:
        ini = self.folder / "basic_auth.ini"
        ini.touch(mode=0o600)  # it holds the database password
        ini.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {database_uri}\n"
            f"admin_username = {os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME', 'admin')}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        return {"MLFLOW_AUTH_CONFIG_PATH": str(ini)}

    def start(self, log: IO[bytes] | None = None, timeout: float = 120.0) -> None:
        """Starts PostgreSQL (unless ``backend_uri``) and ``mlflow server``; returns once it answers.

        Args:
            log: where MLflow's output goes (default: this process's stdout and stderr).
            timeout: seconds to wait for ``/health``.
        """
        if self.auth:
            password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
            if len(password) < 12 or password == LEGACY_ADMIN_PASSWORD:
                raise ServerError("--auth needs the admin password in MLFLOW_AUTH_ADMIN_PASSWORD: at least 12 characters, not MLflow's old default")
        for path in self.tls or ():
            if not path.is_file():
                raise ServerError(f"Expected --tls-cert and --tls-key to be PEM files. Received: {path} (no such file)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # the postgres user must enter it; the secrets inside are 600
        self.artifacts.mkdir(exist_ok=True)
        keys = self._secrets()
        env = {**os.environ, "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or keys["flask_secret_key"]}
        # MLflow's GenAI job runner (seven huey processes) serves nothing a training sweep uses.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        try:
            self._start(env, keys, log, timeout)
        except BaseException:
            self.stop()  # no PostgreSQL left running behind a failed start
            raise

    def _start(self, env: dict[str, str], keys: dict[str, str], log: IO[bytes] | None, timeout: float) -> None:
        backend = self.backend_uri
        if backend is None:
            self.postgres = Postgres(self.folder / "postgres", keys["postgres_password"])
            self.created = self.postgres.init()
            self.postgres.start()
            backend = self.postgres.url("mlflow")
        if self.auth:
            env.update(self._auth_env(self.postgres.url("mlflow_auth") if self.postgres else f"sqlite:///{self.folder / 'basic_auth.db'}"))
        # The store URI goes through the environment, not argv: it holds the database password.
        env["MLFLOW_BACKEND_STORE_URI"] = backend
        self.port = self.port or free_port(self.host)
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--artifacts-destination",
            str(self.artifacts),
        ]
        if self.auth:
            cmd += ["--app-name", "basic-auth"]
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", self.allowed_hosts]
        if self.tls:  # MLflow's server runs on uvicorn, which serves TLS itself
            cmd += ["--uvicorn-opts", shlex.join(["--ssl-certfile", str(self.tls[0]), "--ssl-keyfile", str(self.tls[1])])]
        # A session of its own: stop() ends uvicorn and its workers together.
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True)
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"mlflow server exited with code {self.proc.returncode} before answering on {self.uri}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2, context=self._health_context()) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise ServerError(f"mlflow server did not answer on {self.uri}/health within {timeout:.0f} s")

    def _health_context(self) -> ssl.SSLContext | None:
        # Our own server on our own port: whether it is up, not whom to trust (clients verify).
        if not self.tls:
            return None
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def stop(self) -> None:
        """Stops MLflow, then PostgreSQL (safe to call twice)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self.postgres is not None:
            self.postgres.stop()

    def __enter__(self) -> TrackingServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``arena-server``: starts PostgreSQL and ``mlflow server``; Ctrl-C stops both.

    ``arena-server user|grant|permission ...`` manage the basic-auth app's users instead
    (:func:`framework_arena.accounts.main`).
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ACCOUNT_COMMANDS:
        from framework_arena.accounts import main as accounts_main

        return accounts_main(argv)
    parser = argparse.ArgumentParser(
        prog="arena-server",
        description="A shared MLflow tracking server on PostgreSQL, with served artifacts (Ctrl-C stops it). "
        "Users and permissions: arena-server {user,grant,permission} --help.",
    )
    parser.add_argument("--dir", default="arena-server", help="folder for the database cluster, artifacts and generated secrets (default: ./arena-server)")
    parser.add_argument("--host", default="127.0.0.1", help="interface MLflow binds to (default 127.0.0.1; 0.0.0.0 for a team, with --auth)")
    parser.add_argument(
        "--allowed-hosts",
        default=None,
        help="Host headers MLflow accepts besides localhost and private IPs, e.g. mlflow.example.com (MLflow's --allowed-hosts)",
    )
    parser.add_argument("--port", type=int, default=5000, help="MLflow's port (default 5000)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--auth",
        action="store_true",
        help="MLflow's basic-auth app; admin password from MLFLOW_AUTH_ADMIN_PASSWORD (user: MLFLOW_AUTH_ADMIN_USERNAME, default admin)",
    )
    parser.add_argument(
        "--tls-cert", default=None, help="PEM certificate (chain): serve HTTPS; clients trust a private CA with MLFLOW_TRACKING_SERVER_CERT_PATH"
    )
    parser.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)

    say = lambda msg: print(f"[arena-server] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        server = TrackingServer(
            args.dir, args.host, args.port, args.auth, args.workers, allowed_hosts=args.allowed_hosts, tls_cert=args.tls_cert, tls_key=args.tls_key
        )
    except ServerError as e:
        say(f"error: {e}")
        return 1
    if args.auth and not server.tls and args.host not in LOOPBACK:
        say(f"WARNING: --auth on {args.host} without TLS: passwords travel in clear over HTTP; serve HTTPS with --tls-cert and --tls-key")
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except ServerError as e:
        say(f"error: {e}")
        return 1
    pg = server.postgres
    say(f"PostgreSQL {pg.version} {'created' if server.created else 'reused'} in {pg.folder} (127.0.0.1:{pg.port}, databases {', '.join(DATABASES)})")
    say(f"MLflow server on {server.uri}, artifacts served from {server.artifacts}" + (", basic auth on" if args.auth else ", no authentication"))
    say("Point trials at it:")
    if args.auth:
        say("  export MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>")
    if server.tls:
        say(f"  export MLFLOW_TRACKING_SERVER_CERT_PATH=<the CA file that signed {server.tls[0].name}, or that file itself>")
    say(f"  arena tracking=server tracking.uri={server.uri}")
    say("Ctrl-C stops MLflow and PostgreSQL.")
    while not stop["now"] and server.proc is not None and server.proc.poll() is None:
        time.sleep(0.5)
    code = server.proc.returncode if server.proc is not None and server.proc.poll() is not None else 0
    say("stopping")
    server.stop()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
