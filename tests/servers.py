"""What the tests that start a real server (Datasette, `orchestrator serve`) share: a free
port, a GET that gives the status and body whatever the status, and whether a server
answers yet; and a PostgreSQL cluster of a test's own, to stop and start."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest


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


class PostgresCluster:
    """A PostgreSQL 15 cluster of the test's own (``initdb`` in a temporary folder, its own
    port, run as the ``postgres`` user when the tests run as root), which a test may stop
    and start again: the shared test server is never stopped."""

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self) -> None:
        if not (self.BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL binaries in {self.BIN}")
        self.folder = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(f"initdb -D {self.folder}/data -A trust -U postgres --no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: str) -> None:
        line = f"{self.BIN}/{command}"
        argv = ["su", "postgres", "-c", line] if os.geteuid() == 0 else ["sh", "-c", line]
        subprocess.run(argv, check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(f"pg_ctl -D {self.folder}/data -l {self.folder}/log -o '{options}' -w start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop it (``immediate``: as a crash, every connection cut at once)."""
        self._run(f"pg_ctl -D {self.folder}/data -m {mode} -w stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
