"""Faults we provoke ourselves: 5xx storms, dropped connections, token expiry and the operating limit
mid-export, and malformed tool arguments thrown by a fuzzer. Nothing duplicated, nothing lost, no crash of the
agent loop."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrix24_agent_tools.client import Bitrix24, RetryPolicy
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.packs import PACKS, specs_for
from bitrix24_agent_tools.sandbox import CostModel, Portal
from bitrix24_agent_tools.toolbox import Toolbox
from tests.helpers import FakeClock


def test_a_minute_long_5xx_storm_loses_no_item_and_duplicates_no_write() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, deals=500, clock=clock)
    client = Bitrix24(
        portal.webhook_url,
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(attempts=12, base=0.5, cap=4),
        seed=3,
    )
    box = Toolbox(client, guard=Guard(Policy.writer(), AutoConfirmer()))
    portal.faults.storm(0.3, until=clock() + 60, seed=5)  # 30% of calls fail for a minute of (simulated) time
    exported = client.export("crm.deal.list", {"select": ["ID"]})
    assert sorted(int(d["ID"]) for d in exported) == list(range(1, 501))
    outcomes = [
        box.run("b24_crm_create", {"entity": "lead", "fields": {"TITLE": f"storm {i}", "ORIGIN_ID": f"s{i}"}})
        for i in range(40)
    ]
    failed = [i for i, out in enumerate(outcomes) if out.is_error]
    assert all(
        "INTERNAL_SERVER_ERROR" in outcomes[i].content for i in failed
    )  # ambiguous writes are reported…
    titles = [lead["TITLE"] for lead in portal.entities("lead")]
    assert all(titles.count(f"storm {i}") <= 1 for i in range(40))  # …never written twice
    assert portal.requests and sum(1 for r in portal.requests if r.error) > 5  # the storm really happened
    clock.sleep(60)
    for i in failed:  # after the storm, the agent retries what failed: the idempotency key was released
        assert not box.run(
            "b24_crm_create", {"entity": "lead", "fields": {"TITLE": f"storm {i}", "ORIGIN_ID": f"s{i}"}}
        ).is_error
    titles = [lead["TITLE"] for lead in portal.entities("lead")]
    assert all(titles.count(f"storm {i}") == 1 for i in range(40))


def test_dropped_connections_during_a_batch_are_retried_for_reads() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    portal.faults.drop_next(2)
    result = client.batch({f"d{i}": ("crm.deal.get", {"id": i}) for i in range(1, 11)})
    assert len(result.results) == 10 and not result.errors


def test_token_expiry_in_the_middle_of_an_export() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, deals=6000, clock=clock)
    app = portal.register_app()
    tokens = portal.install_app(app)
    client = Bitrix24(
        portal.app_auth(app, tokens),
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
    )
    calls = {"n": 0}

    def expire_on_third(record: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            portal.expire_all_tokens()

    portal.on_request(expire_on_third)
    rows = client.export("crm.deal.list", {"select": ["ID"]})
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 6001))
    assert len([r for r in portal.requests if r.method == "oauth.token"]) == 1


def test_the_operating_limit_slows_an_export_down_and_it_completes() -> None:
    clock = FakeClock()
    portal = Portal(
        seed=1, deals=5000, clock=clock, operating_limit=3.0, cost_model=CostModel(per_item=0.001)
    )
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    rows = client.export("crm.deal.list", {"select": ["ID"]}, parallel=1)
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 5001))
    assert clock.slept >= 60  # it waited for the operating budget instead of failing


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=50)
    | st.text(alphabet=st.characters(min_codepoint=0x400, max_codepoint=0x1F9FF), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_ARGS = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "entity",
                "id",
                "fields",
                "filter",
                "limit",
                "title",
                "method",
                "params",
                "auth",
                "stage_id",
                "text",
                "query",
                "type_id",
                "select",
                "order",
            ]
        ),
        _JSON,
        max_size=6,
    ),
    _JSON,
    st.text(max_size=200),
    st.just("x" * 100_000),
    st.just('{"entity": "deal", "limit": 1e309}'),
)
_PORTAL = Portal(seed=1)
_CLIENT = Bitrix24(_PORTAL.webhook_url, transport=_PORTAL.transport(), retry=RetryPolicy(attempts=1))
_BOX = Toolbox(_CLIENT, packs=tuple(PACKS), guard=Guard(Policy.admin(), AutoConfirmer(deny=("*delete*",))))
_NAMES = [s.name for s in specs_for(PACKS)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from([*_NAMES, "nope", ""]), args=_ARGS)
def test_fuzzed_tool_arguments_always_get_one_short_line_and_never_a_crash(name: str, args: Any) -> None:
    out = _BOX.run(name, args)
    assert isinstance(out.content, str) and out.content
    if out.is_error:
        assert len(out.content) <= 300 and "Traceback" not in out.content
        assert not out.content.startswith("internal error"), out.content
    assert _PORTAL.webhook_code not in out.content
    json.dumps(out.artifact, default=str)  # artifacts stay serialisable for every face


def _paced_export(
    parallel: int | None, deals: int = 50_000, per_item: float = 0.00004, limit: float = 0.8
) -> tuple[Portal, FakeClock, list[Any], float]:
    """An export under the operating limit (``limit`` seconds per method in 10 minutes) where a row costs
    ``per_item`` of processing. By default 50,000 deals at 0.002 s a page (a batch of 50 pages 0.1 s, the
    export 2 s) under 0.8 s: the export needs three windows."""
    from bitrix24_agent_tools.client import RatePlan

    clock = FakeClock()
    portal = Portal(
        seed=1, deals=deals, clock=clock, operating_limit=limit, cost_model=CostModel(per_item=per_item)
    )
    client = Bitrix24(
        portal.webhook_url,
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
        plan=RatePlan.custom(2.0, 50, operating_limit=limit),
    )
    started = clock()
    rows = client.export("crm.deal.list", {"select": ["ID"]}, parallel=parallel)
    return portal, clock, rows, clock() - started


def test_an_export_paces_its_batches_to_the_operating_budget_and_is_never_blocked() -> None:
    """limits.md: a batch is not accounted to `batch`; each nested call counts for its own method, and once
    a method's `operating` passes the limit the next call is refused (OPERATION_TIME_LIMIT). The client keeps
    each nested method's budget from the commands' `result_time` (batch.md) and holds batches back until they
    fit, so the export crosses operating windows without one refusal, close to the floor: the 2 s of
    processing fit 0.8 s per 10 minutes, so the last of it cannot start before two windows have passed."""
    portal, _, rows, took = _paced_export(parallel=1)
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 50_001))
    assert portal.rejected["OPERATION_TIME_LIMIT"] == 0
    floor = 2 * 600.0
    assert floor <= took <= 1.1 * floor, took


def test_a_parallel_export_is_not_blocked_by_the_operating_limit_either() -> None:
    portal, _, rows, _ = _paced_export(parallel=None)
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 50_001))
    assert portal.rejected["OPERATION_TIME_LIMIT"] == 0


@pytest.mark.parametrize("parallel", [1, None])
def test_batches_shrink_to_what_the_operating_budget_holds(parallel: int | None) -> None:
    """limits.md: once a method's operating time passes the limit, its next calls are refused — inside a
    batch too. Batches sized from the method's cost per call and its remaining budget never carry more than
    a window holds, so a costly list exports without one refusal, in about the windows its cost needs: 5,000
    deals at 0.05 s a page under 1 s — a batch of 50 pages (2.5 s) is more than a whole window holds."""
    portal, _, rows, took = _paced_export(parallel, deals=5_000, per_item=0.001, limit=1.0)
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 5_001))
    assert portal.rejected["OPERATION_TIME_LIMIT"] == 0
    floor = 4 * 600.0  # 5 s at 1 s a window: the last second cannot start before four windows have passed
    assert floor <= took <= 1.6 * floor, took
    sizes = [len(r.params["cmd"]) for r in portal.requests if r.method == "batch"]
    assert max(sizes) < 50 and sum(sizes) >= 100, sizes
