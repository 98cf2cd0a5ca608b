"""A real PostgreSQL server on a free loopback port, in its own throwaway cluster; skipped (with how to get
one) when absent, except in CI, where .ci/run installs it and a missing server is a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pgcluster import available, cluster, fresh_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if not available():
        message = (
            "PostgreSQL not found: install it (apt-get install postgresql) to run the PostgreSQL "
            "backend tests"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " — CI must run them (.ci/run installs it)")
        pytest.skip(message)
    with cluster() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh database for one test."""
    yield fresh_database(pg_server)
