"""The client against the sandbox: envelopes, typed errors, bad input, retries and what is never retried."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.client import (
    AsyncBitrix24,
    Bitrix24,
    ConfigError,
    InvalidResponse,
    NetworkError,
    NotFound,
    RateLimited,
    ScopeError,
    ServerError,
    Webhook,
    hint_for,
)
from bitrix24_agent_tools.sandbox import Portal
from tests.helpers import FakeClock


def test_list_call_returns_result_total_and_next(client: Bitrix24) -> None:
    response = client.call("crm.deal.list", {"select": ["ID", "TITLE"], "order": {"ID": "ASC"}})
    assert len(response.result) == 30 and response.total == 30 and response.next is None
    assert set(response.result[0]) == {"ID", "TITLE"}
    assert response.time is not None and "operating" in response.time


def test_add_then_get_round_trips_non_ascii(client: Bitrix24) -> None:
    new_id = client.call(
        "crm.deal.add", {"fields": {"TITLE": "Сделка «Ромашка» & co", "OPPORTUNITY": 1500}}
    ).result
    got = client.call("crm.deal.get", {"id": new_id}).result
    assert got["TITLE"] == "Сделка «Ромашка» & co" and got["OPPORTUNITY"] == "1500.00"


def test_missing_record_is_a_typed_not_found_with_a_hint(client: Bitrix24) -> None:
    with pytest.raises(NotFound) as info:
        client.call("crm.deal.get", {"id": 99999})
    assert info.value.code == "NOT_FOUND" and info.value.status == 400 and not info.value.retryable
    assert "check the id" in info.value.hint


def test_unknown_method_and_scope_errors_are_typed(portal: Portal, clock: FakeClock) -> None:
    limited = Bitrix24(
        portal.add_webhook(1, scopes={"task"}), transport=portal.transport(), clock=clock, sleep=clock.sleep
    )
    with pytest.raises(ScopeError) as scope:
        limited.call("crm.deal.list")
    assert scope.value.status == 403 and "scope" in scope.value.hint
    with pytest.raises(NotFound) as missing:
        limited.call("crm.nothing.here")
    assert missing.value.code == "ERROR_METHOD_NOT_FOUND"


def test_every_protocol_code_has_a_specific_hint() -> None:
    codes = [
        "INTERNAL_SERVER_ERROR",
        "QUERY_LIMIT_EXCEEDED",
        "OPERATION_TIME_LIMIT",
        "OVERLOAD_LIMIT",
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "ERROR_BATCH_LENGTH_EXCEEDED",
        "NO_AUTH_FOUND",
        "expired_token",
        "INVALID_REQUEST",
        "ACCESS_DENIED",
        "INVALID_CREDENTIALS",
        "insufficient_scope",
        "user_access_error",
        "PORTAL_DELETED",
        "ERROR_METHOD_NOT_FOUND",
        "WRONG_AUTH_TYPE",
        "invalid_token",
        "invalid_grant",
    ]
    generic = hint_for("SOMETHING_ELSE")
    for code in codes:
        assert hint_for(code) != generic, code
    assert hint_for("WRONG_AUTH_TYPE") == "this method needs OAuth application auth; a webhook cannot call it"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "https://portal.bitrix24.com/",
        "https://portal.bitrix24.com/rest/abc/code123456/",
        "ftp://portal/rest/1/code123456/",
        "https://portal.bitrix24.com/rest/1/",
    ],
)
def test_malformed_webhook_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        Webhook(url)


def test_bad_local_input_is_refused_before_anything_is_sent(client: Bitrix24, portal: Portal) -> None:
    with pytest.raises(ConfigError, match="api version"):
        client.call("crm.deal.list", api="v4")
    with pytest.raises(ConfigError, match="must be a dict"):
        client.call("crm.deal.list", ["ID"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="auth"):
        client.call("crm.deal.list", {"auth": "x"})
    with pytest.raises(ConfigError):
        client.call("crm.deal.list; drop", {})
    assert portal.requests == []


def _client_on(handler: object) -> Bitrix24:
    clock = FakeClock()
    return Bitrix24(
        "https://p.bitrix24.com/rest/1/abcdef123456/",
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        seed=1,
    )


def test_html_error_page_and_truncated_json_are_typed() -> None:
    html = _client_on(
        lambda request: httpx.Response(200, text="<html><body>Portal maintenance</body></html>")
    )
    with pytest.raises(InvalidResponse, match="not JSON"):
        html.call("crm.deal.list")
    cut = _client_on(lambda request: httpx.Response(200, text='{"result": [{"ID": "1"'))
    with pytest.raises(InvalidResponse):
        cut.call("crm.deal.list")
    bad_gateway = _client_on(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(ServerError):
        bad_gateway.call("crm.deal.list")


def test_reads_are_retried_through_5xx_and_rate_limit(client: Bitrix24, portal: Portal) -> None:
    portal.faults.fail_next(2, "INTERNAL_SERVER_ERROR", 500)
    portal.faults.fail_next(1, "QUERY_LIMIT_EXCEEDED", 503)
    assert client.call("crm.deal.get", {"id": 1}).result["ID"] == "1"
    assert [r.error for r in portal.requests] == [
        "INTERNAL_SERVER_ERROR",
        "INTERNAL_SERVER_ERROR",
        "QUERY_LIMIT_EXCEEDED",
        None,
    ]


def test_a_write_is_not_retried_after_an_ambiguous_failure(client: Bitrix24, portal: Portal) -> None:
    before = len(portal.entities("deal"))
    portal.faults.drop_next(1, after_processing=True)  # the portal did the work, then the connection dropped
    with pytest.raises(NetworkError):
        client.call("crm.deal.add", {"fields": {"TITLE": "once"}})
    assert len(portal.entities("deal")) == before + 1  # exactly one record, not two
    portal.faults.fail_next(1, "INTERNAL_SERVER_ERROR", 500)
    with pytest.raises(ServerError):
        client.call("crm.deal.add", {"fields": {"TITLE": "maybe"}})
    assert len([d for d in portal.entities("deal") if d["TITLE"] == "maybe"]) == 0


def test_a_write_marked_idempotent_is_retried(client: Bitrix24, portal: Portal) -> None:
    portal.faults.fail_next(1, "INTERNAL_SERVER_ERROR", 500)
    assert client.call("crm.deal.update", {"id": 2, "fields": {"TITLE": "x"}}, idempotent=True).result is True


def test_rate_limited_writes_are_retried_because_the_portal_refused_them_unprocessed(
    client: Bitrix24, portal: Portal
) -> None:
    portal.faults.fail_next(2, "QUERY_LIMIT_EXCEEDED", 503)
    new_id = client.call("crm.lead.add", {"fields": {"TITLE": "after 503s"}}).result
    assert portal.entity("lead", new_id)["TITLE"] == "after 503s"


def test_retries_give_up_after_the_budget(client: Bitrix24, portal: Portal) -> None:
    portal.faults.fail_next(10, "QUERY_LIMIT_EXCEEDED", 503)
    with pytest.raises(RateLimited):
        client.call("crm.deal.list")
    assert len(portal.requests) == 6


def test_rest_v3_shapes_errors_and_idempotency_replay(client: Bitrix24, portal: Portal) -> None:
    task = client.call("tasks.task.get", {"id": 1}, api="v3").result
    assert task["item"]["id"] == 1  # tasks-task-get-rest-v3.md: numbers as numbers
    fields = {"title": "v3", "creatorId": 1, "responsibleId": 1}
    first = client.call("tasks.task.add", {"fields": fields}, api="v3", idempotency_key="k-1").result
    again = client.call("tasks.task.add", {"fields": fields}, api="v3", idempotency_key="k-1").result
    assert first == again and len([t for t in portal.entities("task") if t["title"] == "v3"]) == 1
    with pytest.raises(NotFound) as info:
        client.call("tasks.task.get", {"id": 9999}, api="v3")
    assert info.value.code == "BITRIX_REST_V3_EXCEPTION_ENTITYNOTFOUNDEXCEPTION"


def test_iterate_walks_every_page_in_order(portal: Portal, clock: FakeClock) -> None:
    big = Portal(seed=2, deals=130, clock=clock)
    client = Bitrix24(big.webhook_url, transport=big.transport(), clock=clock, sleep=clock.sleep)
    ids = [int(d["ID"]) for d in client.iterate("crm.deal.list", {"select": ["ID"]})]
    assert ids == list(range(1, 131))
    # Both ends in one request, then both remaining ranges in one more (50 pages a request).
    assert [r.method for r in big.requests] == ["batch", "batch"]


async def test_async_client_shares_the_pipeline(portal: Portal, clock: FakeClock) -> None:
    client = AsyncBitrix24(
        portal.webhook_url, transport=portal.async_transport(), clock=clock, sleep=clock.asleep
    )
    portal.faults.fail_next(1, "INTERNAL_SERVER_ERROR", 500)
    assert (await client.call("crm.deal.get", {"id": 3})).result["ID"] == "3"
    rows = [row async for row in client.iterate("crm.lead.list")]
    assert len(rows) == len(portal.entities("lead"))
    batch = await client.batch({"a": ("crm.deal.get", {"id": 1}), "b": ("crm.deal.get", {"id": 999})})
    assert batch.results["a"]["ID"] == "1" and isinstance(batch.errors["b"], NotFound)
    await client.aclose()


def test_a_read_that_meets_a_truncated_200_is_retried_and_a_write_is_not() -> None:
    """A cut or HTML body with status 200 is a passing fault for a read (safe to repeat), an unknown outcome
    for a write (never repeated blindly)."""
    seen: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path.rsplit("/", 1)[-1])
        if len(seen) == 1:
            return httpx.Response(200, text='{"result": [{"ID": "1"')
        return httpx.Response(200, json={"result": [{"ID": "1"}], "total": 1, "time": {}})

    assert _client_on(flaky).call("crm.deal.list").result == [{"ID": "1"}] and len(seen) == 2
    seen.clear()
    with pytest.raises(InvalidResponse):
        _client_on(flaky).call("crm.deal.add", {"fields": {"TITLE": "x"}})
    assert seen == ["crm.deal.add"]  # sent once: the write may have happened


@pytest.mark.parametrize(
    "body",
    [
        b'{"result": {"ID": "1", "n": 12345678901234567890123}}',  # beyond 64 bits
        b'{"result": [NaN, Infinity, -Infinity]}',
        b'\xef\xbb\xbf{"result": "after a byte-order mark"}',
        b'{"result": "\\ud800 lone surrogate"}',
        '{"result": {"TITLE": "Сделка №1 — ü 🎉", "x": 1.5e300, "y": -0, "dup": 1, "dup": 2}}'.encode(),
        b'{"result": 1e400}',
    ],
)
def test_replies_decode_exactly_as_the_standard_json_module_reads_them(body: bytes) -> None:
    """The fast decoder refuses some bodies ``json`` reads: those are read by ``json`` instead, so a reply
    decodes the same whichever does it."""
    import json
    import math

    from bitrix24_agent_tools.client._flow import loads

    ours, theirs = loads(body), json.loads(body)
    assert json.dumps(ours) == json.dumps(theirs)
    if isinstance(theirs["result"], list):
        assert [math.isnan(x) for x in ours["result"]] == [math.isnan(x) for x in theirs["result"]]


def test_a_body_neither_decoder_reads_is_an_invalid_response() -> None:
    from bitrix24_agent_tools.client._flow import RawResponse, parse_response

    with pytest.raises(InvalidResponse):
        parse_response(RawResponse(200, b'{"result": [1, 2'), "crm.deal.list", "v2")


def _list_calls(portal: Portal, method: str) -> list[dict[str, Any]]:
    """Every call of ``method``: on its own or as a batch command (read back the way PHP parses it)."""
    from bitrix24_agent_tools.sandbox.query import parse_php_query

    calls = []
    for r in portal.requests:
        if r.method == method:
            calls.append(dict(r.params))
        elif r.method == "batch":
            for command in dict(r.params.get("cmd") or {}).values():
                name, _, query = str(command).partition("?")
                if name == method:
                    calls.append(parse_php_query(query))
    return calls


def test_iterate_walks_every_row_by_id_the_docs_way_counting_nothing(clock: FakeClock) -> None:
    """settings/performance/huge-data.md: every row of a big list by ``>ID`` the last row's ID with
    ``start=-1`` (no total counted); the caller's filter, select and own ``>ID`` bound kept; rows come back
    as selected."""
    big = Portal(seed=2, deals=260, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(big.webhook_url, transport=big.transport(), clock=clock, sleep=clock.sleep)
    rows = list(client.iterate("crm.deal.list", {"select": ["TITLE"], "filter": {">ID": 40, "<=ID": 200}}))
    assert [r["TITLE"] for r in rows] == [big.state["deal"][i]["TITLE"] for i in range(41, 201)]
    assert all(set(r) == {"TITLE"} for r in rows)
    calls = _list_calls(big, "crm.deal.list")
    assert [r.method for r in big.requests] == ["batch", "batch"]  # both ends; then the ranges between
    assert all(str(c["start"]) == "-1" for c in calls)
    ranged = calls[2:]  # the caller's bounds are the ranges' floor and ceiling
    assert len(ranged) == 3
    assert all(40 <= int(c["filter"][">ID"]) < int(c["filter"]["<=ID"]) <= 200 for c in ranged)
    assert int(ranged[0]["filter"][">ID"]) == 90 and int(ranged[-1]["filter"]["<=ID"]) == 200


def test_iterate_by_id_neither_repeats_nor_skips_while_rows_come_and_go(clock: FakeClock) -> None:
    big = Portal(seed=2, deals=150, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(big.webhook_url, transport=big.transport(), clock=clock, sleep=clock.sleep)
    seen: list[int] = []
    for row in client.iterate("crm.deal.list", {"select": ["ID"]}):
        seen.append(int(row["ID"]))
        if len(seen) == 60:  # mid-walk: an early row goes, a new one arrives at the end
            client.call("crm.deal.delete", {"id": 3})
            client.call("crm.deal.add", {"fields": {"TITLE": "late"}})
    assert seen == sorted(set(seen)) and 151 in seen and len(seen) == 151


async def test_async_iterate_pages_by_id_and_other_orders_page_by_start(clock: FakeClock) -> None:
    big = Portal(seed=2, deals=120, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = AsyncBitrix24(big.webhook_url, transport=big.async_transport(), clock=clock, sleep=clock.asleep)
    ids = [int(r["ID"]) async for r in client.iterate("crm.deal.list", {"select": ["ID"]})]
    assert ids == list(range(1, 121))
    assert all(str(c["start"]) == "-1" for c in _list_calls(big, "crm.deal.list"))
    before = len(big.requests)
    down = [int(r["ID"]) async for r in client.iterate("crm.deal.list", {"order": {"ID": "DESC"}})]
    assert down == list(range(120, 0, -1))
    assert [str(c["start"]) for c in _list_calls(big, "crm.deal.list")[-3:]] == ["0", "50", "100"]
    assert len(big.requests) - before == 3
    await client.aclose()


def test_iterate_walks_on_by_start_when_a_list_ignores_the_id_cursor(clock: FakeClock) -> None:
    """A list that does not honour ``>ID`` (UNVERIFIED beyond the docs' own example): the walk goes on by
    ``start`` and still hands over every row exactly once, in order."""
    big = Portal(seed=2, deals=130, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    inner = big.transport()

    class IgnoresCursor(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            import json

            body = json.loads(request.content)
            if request.url.path.endswith("crm.deal.list"):
                body.get("filter", {}).pop(">ID", None)
            elif request.url.path.endswith("batch"):
                body["cmd"] = {k: re.sub(r"&?filter\[%3EID\]=\d+", "", c) for k, c in body["cmd"].items()}
            request = httpx.Request(request.method, request.url, json=body, headers=request.headers)
            return inner.handle_request(request)

    client = Bitrix24(big.webhook_url, transport=IgnoresCursor(), clock=clock, sleep=clock.sleep)
    ids = [int(r["ID"]) for r in client.iterate("crm.deal.list", {"select": ["ID"]})]
    assert ids == list(range(1, 131))
    assert any(str(c.get("start")) == "50" for c in _list_calls(big, "crm.deal.list"))  # walked on by start
    with pytest.raises(InvalidResponse, match=">ID"):  # an export cannot walk it at all: said, not looped
        client.export("crm.deal.list", {"select": ["ID"]})


async def test_async_iterate_hands_rows_over_in_id_order_when_later_ranges_answer_first(
    clock: FakeClock,
) -> None:
    """The in-order walk keeps several batches in flight; the one holding the lowest ranges answers last, yet
    every row comes over once, in ID order, with no request more than the export makes."""
    import asyncio
    import json

    big = Portal(seed=2, deals=12_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    inner = big.async_transport()

    class LowestLast(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content) if request.content else {}
            if "filter[%3EID]=50&" in "&".join(body.get("cmd", {}).values()) + "&":
                await asyncio.sleep(0.2)  # the batch with the first range answers after the others
            return await inner.handle_async_request(request)

    client = AsyncBitrix24(big.webhook_url, transport=LowestLast(), clock=clock, sleep=clock.asleep)
    ids = [int(r["ID"]) async for r in client.iterate("crm.deal.list", {"select": ["ID"]})]
    assert ids == list(range(1, 12_001))
    batches = [r for r in big.requests if r.method == "batch"]
    assert len(batches) == 1 + 5 + 1  # both ends; 240 one-page ranges, 50 a batch; the open end once more
    await client.aclose()
