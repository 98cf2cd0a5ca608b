"""Test-wide settings: no network, offline tiktoken encodings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# tiktoken must never try to download encodings: point it at the files packaged with the library.
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR",
    str(Path(__file__).resolve().parent.parent / "bitrix24_agent_tools" / "_static" / "tiktoken"),
)

# Stores the CLI and the MCP server keep in the user's data directory go to a throwaway one during tests.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="b24-test-data-")

import pytest

from bitrix24_agent_tools.client import Bitrix24, RetryPolicy
from bitrix24_agent_tools.sandbox import Portal
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def portal(clock: FakeClock) -> Portal:
    return Portal(seed=1, clock=clock)


@pytest.fixture
def client(portal: Portal, clock: FakeClock) -> Bitrix24:
    """A client on the in-process sandbox sharing the fake clock (sleeps cost no real time)."""
    return Bitrix24(
        portal.webhook_url,
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(attempts=6, base=0.5),
        seed=1,
    )
