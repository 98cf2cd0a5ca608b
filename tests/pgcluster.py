"""A throwaway PostgreSQL cluster on a free loopback port (for the tests and benchmarks/worker.py)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster (as the postgres user when run as root: the server refuses root) and yield its DSN."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    assert initdb and pg_ctl, "PostgreSQL is not installed (apt-get install postgresql)"
    root = tempfile.mkdtemp(prefix="b24-pg-")
    data, sockets = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sockets)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*as_user, initdb, "-D", data, "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run(
        [*as_user, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _RUNNING[port] = [*as_user, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w"]
    import psycopg

    for _ in range(100):
        try:
            psycopg.connect(dsn).close()
            break
        except psycopg.OperationalError:
            time.sleep(0.05)
    try:
        yield dsn
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


_RUNNING: dict[int, list[str]] = {}  # port → the pg_ctl command line of a cluster this module started


def restart(dsn: str, down_for: float = 1.0) -> None:
    """Kill the cluster behind ``dsn`` (an immediate shutdown, as a crash); start it after ``down_for``."""
    port = int(dsn.split("@127.0.0.1:", 1)[1].split("/", 1)[0])
    command = _RUNNING[port]
    head, data = command[: command.index("-D")], command[command.index("-D") : command.index("-D") + 2]
    subprocess.run(
        [*head, *data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(down_for)
    subprocess.run([*command, "start"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fresh_database(server_dsn: str) -> str:
    """A new empty database on the cluster; its DSN."""
    import psycopg

    name = f"t{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server_dsn.rsplit("/", 1)[0] + "/" + name
