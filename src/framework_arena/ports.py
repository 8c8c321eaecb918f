"""A free TCP port, for the servers the arena starts itself (arena-server's PostgreSQL and MLflow,
the serving benchmark's scoring servers)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (the OS picks it). Another process may take it before ours binds:
    callers start their server at once and fail clearly if it cannot listen."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
