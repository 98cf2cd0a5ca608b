"""Token counting is offline and our tool schemas are the leanest: figures checked against the peers'
budgets."""

from __future__ import annotations

import os

import pytest

from bitrix24_agent_tools.packs import PACKS, specs_for
from bitrix24_agent_tools.tokens import EncodingUnavailable, count_tokens, tool_cost, tool_view, tools_cost


def test_counts_with_both_packaged_encodings_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tiktoken tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert count_tokens("hello world", "o200k_base") == 2
    assert count_tokens("hello world", "cl100k_base") == 2
    assert count_tokens("Привет, сделка") > 2
    assert "TIKTOKEN_CACHE_DIR" not in os.environ  # restored


def test_unknown_encoding_is_refused_not_downloaded() -> None:
    with pytest.raises(EncodingUnavailable):
        count_tokens("x", "p50k_base")


def test_the_view_is_name_description_and_compact_schema() -> None:
    view = tool_view(specs_for(["core"])[0])
    assert set(view) == {"name", "description", "parameters"}
    assert view["parameters"]["type"] == "object"


def test_the_token_budget_holds() -> None:
    everything = specs_for(PACKS)
    costs = [tool_cost(s) for s in everything]
    assert sum(costs) / len(costs) <= 70  # mean per tool
    assert max(costs) <= 140
    assert tools_cost(specs_for(["core"])) <= 900
    assert sum(costs) <= 5000  # all 12 packs together


def test_we_are_leaner_per_tool_than_every_peer() -> None:
    core = specs_for(["core"])
    everything = specs_for(PACKS)
    # Peers (o200k, same view): mcp-bitrix24 127/tool, bitrix24-mcp 101/tool, fast-bitrix24-mcp 335/tool,
    # mcp-b24 760/tool.
    assert tools_cost(core) / len(core) < 101
    assert tools_cost(everything) / len(everything) < 101
    # All 12 packs (56 tools, finders included) cost less than half of fast-bitrix24-mcp's 28 tools.
    assert tools_cost(everything) < 9369 / 2
    assert all(tool_cost(s) < 200 for s in everything)
