"""What the tests that start a real server (Datasette, `orchestrator serve`) share: a free
port, a GET that gives the status and body whatever the status, and whether a server
answers yet."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """The status and body of a GET, an HTTP error's included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_status(url: str, timeout: float = 5) -> int | None:
    """The status of a GET, or None while nothing answers (not started, or refused)."""
    try:
        return http_get(url, timeout)[0]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
