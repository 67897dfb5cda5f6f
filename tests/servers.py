"""What the tests that start a real server (Datasette, `orchestrator serve`, a PostgreSQL
cluster of their own) share: a free port, a GET that gives the status and body whatever the
status, whether a server answers yet, and a cluster to stop, start again or freeze."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
    """A PostgreSQL cluster of the test's own (never the shared test server), for tests
    that stop or freeze the server."""

    def __init__(self, folder: Path, port: int, bin_dir: Path, as_user: dict[str, Any]) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._bin = bin_dir
        self._as_user = as_user

    def _pg_ctl(self, *args: Any, check: bool = True) -> None:
        subprocess.run(
            [self._bin / "pg_ctl", "-D", self.data, *args],
            check=check,
            capture_output=True,
            **self._as_user,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", self.folder / "log", "-w", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop it (``immediate``: as a crash, every connection cut at once)."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        found = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The fields after the command's closing parenthesis: state, then ppid.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    found.append(int(stat.parent.name))
        return found

    def signal(self, number: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A new cluster (initdb, pg_ctl) on a free port of 127.0.0.1, trusting local users;
    stopped and removed after. Runs as user postgres when the tests run as root. Skips
    without PostgreSQL's binaries, unless ``$ORCHESTRATOR_REQUIRE_POSTGRES=1``."""
    import pytest

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        message = "no PostgreSQL binaries (apt-get install postgresql)"
        if os.environ.get("ORCHESTRATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    bin_dir = Path(found[-1]).parent
    as_user: dict[str, Any] = {}
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-cluster-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = {"user": "postgres", "group": "postgres", "env": {"PATH": os.environ["PATH"]}}
        shutil.chown(folder, "postgres", "postgres")
    cluster = PostgresCluster(folder, free_port(), bin_dir, as_user)
    try:
        subprocess.run(
            [bin_dir / "initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust", "-N"],
            check=True,
            capture_output=True,
            **as_user,
        )
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.signal(signal.SIGCONT)  # a test that froze it and failed
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
