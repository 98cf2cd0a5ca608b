"""A real PostgreSQL server on a free loopback port, in its own throwaway cluster; skipped (with how to get one) when
absent, except in CI, where .ci/run installs it and a missing server is a failure."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        message = "PostgreSQL not found: install it (apt-get install postgresql) to run the PostgreSQL backend tests"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " — CI must run them (.ci/run installs it)")
        pytest.skip(message)
    root = tempfile.mkdtemp(prefix="b24-pg-")
    data, sockets = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sockets)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run the cluster as the postgres user
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, initdb, "-D", data, "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run([*as_user, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
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
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh database for one test."""
    import psycopg

    name = f"t{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + "/" + name
