"""Batch splitting and key mapping, and the fast export's exactly-once guarantee under concurrent changes."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24, ConfigError, NotFound, ScopeError, php_query
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.sandbox.query import parse_php_query
from tests.helpers import FakeClock


def test_a_120_command_batch_goes_out_as_3_requests_with_every_result_under_its_key(
    client: Bitrix24, portal: Portal
) -> None:
    commands = {f"get{i}": ("crm.deal.get", {"id": i}) for i in range(1, 121)}
    result = client.batch(commands)
    assert len([r for r in portal.requests if r.method == "batch"]) == 3
    assert set(result.results) == {f"get{i}" for i in range(1, 31)}
    assert set(result.errors) == {f"get{i}" for i in range(31, 121)}
    assert all(result.results[f"get{i}"]["ID"] == str(i) for i in range(1, 31))
    assert all(isinstance(e, NotFound) for e in result.errors.values())


def test_result_references_work_within_and_across_requests(client: Bitrix24) -> None:
    commands: dict[str, tuple[str, dict[str, object]]] = {
        "list": ("crm.deal.list", {"filter": {"ID": 5}, "select": ["ID", "TITLE"]})
    }
    commands.update(
        {f"pad{i}": ("crm.deal.get", {"id": 1}) for i in range(60)}
    )  # pushes the last one into request 2
    commands["again"] = ("crm.deal.get", {"id": "$result[list][0][ID]"})
    commands["same_request"] = ("crm.deal.get", {"id": "$result[pad59][ID]"})
    result = client.batch(commands)
    assert result.results["again"]["ID"] == "5"
    assert result.results["same_request"]["ID"] == "1"


def test_list_commands_and_totals_come_back(client: Bitrix24) -> None:
    result = client.batch(
        [("crm.deal.list", {"select": ["ID"]}), ("crm.lead.list", {"select": ["ID"], "start": -1})]
    )
    assert result.totals["0"] == 30 and "1" not in result.totals
    assert len(result.results["1"]) == 12


def test_halt_stops_at_the_first_error(client: Bitrix24) -> None:
    result = client.batch(
        {
            "a": ("crm.deal.get", {"id": 1}),
            "b": ("crm.deal.get", {"id": 999}),
            "c": ("crm.deal.get", {"id": 2}),
        },
        halt=True,
    )
    assert set(result.results) == {"a"} and set(result.errors) == {"b"}


def test_bad_batches_are_refused_before_sending(client: Bitrix24, portal: Portal) -> None:
    with pytest.raises(ConfigError, match="nested"):
        client.batch({"x": ("batch", {"cmd": {}})})
    with pytest.raises(ConfigError, match="halt"):
        client.batch([("crm.deal.get", {"id": i}) for i in range(51)], halt=True)
    with pytest.raises(ConfigError):
        client.batch("crm.deal.list")
    assert portal.requests == []


def test_the_portal_refuses_a_nested_batch_and_a_51st_command_itself(client: Bitrix24) -> None:
    cmd = {f"c{i}": "crm.deal.get?id=1" for i in range(51)}
    cmd["nested"] = "batch?cmd[a]=crm.deal.get%3Fid%3D1"
    body = client.call("batch", {"cmd": cmd}).result
    assert body["result_error"]["c50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert body["result_error"]["nested"]["error"] in (
        "ERROR_BATCH_LENGTH_EXCEEDED",
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"filter": {">ID": 5, "%TITLE": "a&b=c?d"}, "select": ["ID", "UF_*"]},
        {"fields": {"TITLE": "Привет, мир 🌍", "COMMENTS": "line1\nline2 + 100% [x]"}},
        {"order": {"ID": "DESC"}, "start": -1, "flag": True, "none": None},
        {"deep": {"a": [{"b": ["x", "y"]}, {"c": {"d": "e"}}]}},
    ],
)
def test_batch_command_encoding_is_what_php_parses_back(params: dict[str, object]) -> None:
    decoded = parse_php_query(php_query(params))
    expected = _as_php(params)
    assert decoded == expected


def _as_php(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _as_php(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_php(v) for v in value]
    if value is True:
        return "1"
    if value is None:
        return ""
    return str(value)


def test_export_returns_every_item_exactly_once_while_items_are_added_and_deleted(clock: FakeClock) -> None:
    portal = Portal(seed=3, deals=10_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    rng = random.Random(5)
    deleted: set[int] = set()
    added: list[int] = []

    def churn(record: object) -> None:
        # Between requests, other users create and delete deals (protocol.md §6: offsets would skip or
        # repeat).
        for _ in range(3):
            victim = rng.randint(1, 10_000)
            if victim in portal.state["deal"]:
                del portal.state["deal"][victim]
                deleted.add(victim)
        new_id = portal.next_id("deal")
        portal.state["deal"][new_id] = {"ID": str(new_id), "TITLE": "late", "ASSIGNED_BY_ID": "1"}
        added.append(new_id)

    portal.on_request(churn)
    seen = [int(row["ID"]) for row in client.export("crm.deal.list", {"select": ["ID", "TITLE"]})]
    assert len(seen) == len(set(seen)), "no duplicates"
    untouched = set(range(1, 10_001)) - deleted
    assert untouched <= set(seen), "every deal that existed throughout came back"
    assert set(seen) <= set(range(1, 10_001)) | set(added)
    requests = [r for r in portal.requests if r.method == "batch"]
    assert len(requests) < 20  # about 10,000 / 2,500 rows per request, plus the probe


async def test_async_export_runs_ranges_in_parallel_and_matches(clock: FakeClock) -> None:
    portal = Portal(seed=4, deals=3_000, clock=clock)
    client = AsyncBitrix24(
        portal.webhook_url, transport=portal.async_transport(), clock=clock, sleep=clock.asleep
    )
    progress: list[int] = []
    rows = await client.export(
        "crm.deal.list", {"filter": {"CATEGORY_ID": 0}}, progress=lambda done, total: progress.append(done)
    )
    expected = {int(d["ID"]) for d in portal.entities("deal") if d["CATEGORY_ID"] == "0"}
    assert [int(r["ID"]) for r in rows] == sorted(expected)
    assert progress and progress[-1] == len(expected)


def test_export_of_an_empty_list_and_of_tasks(client: Bitrix24) -> None:
    assert client.export("crm.deal.list", {"filter": {"TITLE": "no such deal"}}) == []
    tasks = client.export("tasks.task.list")
    assert sorted(int(t["id"]) for t in tasks) == list(range(1, 11))


def test_export_surfaces_errors(portal: Portal, clock: FakeClock, client: Bitrix24) -> None:
    limited = Bitrix24(
        portal.add_webhook(1, scopes={"task"}), transport=portal.transport(), clock=clock, sleep=clock.sleep
    )
    with pytest.raises(ScopeError):
        limited.export("crm.deal.list")
    with pytest.raises(ConfigError):
        client.export("crm.deal.list", {"filter": "ID=1"})


def test_export_stream_hands_rows_over_as_pages_arrive_each_once(clock: FakeClock) -> None:
    from bitrix24_agent_tools.sandbox import Portal

    big = Portal(seed=3, deals=6000, clock=clock)
    client = Bitrix24(big.webhook_url, transport=big.transport(), clock=clock, sleep=clock.sleep)
    stream = client.export_stream("crm.deal.list", {"select": ["ID"]}, parallel=1)
    first = [next(stream) for _ in range(50)]
    batches_so_far = len([r for r in big.requests if r.method == "batch"])
    rest = list(stream)
    assert batches_so_far < len([r for r in big.requests if r.method == "batch"])  # rows came before the end
    ids = [int(r["ID"]) for r in first + rest]
    assert sorted(ids) == list(range(1, 6001)) and len(ids) == len(set(ids))


async def test_async_export_stream(clock: FakeClock) -> None:
    from bitrix24_agent_tools.client import AsyncBitrix24
    from bitrix24_agent_tools.sandbox import Portal

    portal = Portal(seed=3, deals=700, clock=clock)
    client = AsyncBitrix24(
        portal.webhook_url, transport=portal.async_transport(), clock=clock, sleep=clock.asleep
    )
    ids = [int(r["ID"]) async for r in client.export_stream("crm.deal.list", {"select": ["ID"]})]
    assert sorted(ids) == list(range(1, 701)) and len(ids) == len(set(ids))
    await client.aclose()


async def test_the_async_pool_hands_back_whichever_request_finishes_first_with_no_round_barrier() -> None:
    """export_flow keeps `parallel` requests in flight and starts the next as soon as any one finishes: the
    driver's Next answers the first to finish, not the oldest (a slow request does not hold up the others)."""
    import asyncio

    from bitrix24_agent_tools.client import AsyncBitrix24
    from bitrix24_agent_tools.client._flow import Next, Sleep, Spawn

    def job(seconds: float, name: str) -> Any:
        yield Sleep(seconds)
        return name

    def pool() -> Any:
        order = []
        yield Spawn("slow", job(0.3, "slow"))
        yield Spawn("fast", job(0.01, "fast"))
        order.append((yield Next()))
        yield Spawn("next", job(0.01, "next"))  # starts while "slow" is still running
        order.append((yield Next()))
        order.append((yield Next()))
        return order

    client = AsyncBitrix24("https://example.test/rest/1/abcdefghij0123456789/", sleep=asyncio.sleep)
    started = asyncio.get_running_loop().time()
    order = await client._run(pool())
    assert order == [("fast", "fast"), ("next", "next"), ("slow", "slow")]
    assert asyncio.get_running_loop().time() - started < 0.45  # one slow request's time, not a sum of rounds
    await client.aclose()


def test_the_sync_driver_runs_spawned_flows_in_order() -> None:
    from bitrix24_agent_tools.client._flow import Next, Spawn

    def job(name: str) -> Any:
        return name
        yield  # a flow that makes no request

    def pool() -> Any:
        yield Spawn(1, job("a"))
        yield Spawn(2, job("b"))
        return [(yield Next()), (yield Next())]

    client = Bitrix24("https://example.test/rest/1/abcdefghij0123456789/")
    assert client._run(pool()) == [(1, "a"), (2, "b")]


def test_an_export_of_contiguous_ids_takes_one_page_per_range(clock: FakeClock) -> None:
    """Every ID in the span exists: ranges of exactly 50 rows, a full page ending at its range's bound is
    complete, so 12,345 deals take the probe and ceil(12,345 / 2,500) = 5 batch requests (the fewest
    possible)."""
    portal = Portal(seed=2, deals=12_345, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    before = len(portal.requests)
    rows = client.export("crm.deal.list", {"select": ["ID"]})
    assert [int(r["ID"]) for r in rows] == list(range(1, 12_346))
    assert len(portal.requests) - before == 1 + 5


def test_an_export_counts_nothing(clock: FakeClock) -> None:
    """``start=-1`` on every list command (settings/performance/huge-data.md: it disables the total count
    calculation, the expensive part on big tables); a list of
    one page is all in the probe; the progress total, sized from the ids, is exact for contiguous ones."""
    small = Portal(seed=2, deals=30, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(small.webhook_url, transport=small.transport(), clock=clock, sleep=clock.sleep)
    before = len(small.requests)
    assert [int(r["ID"]) for r in client.export("crm.deal.list", {"select": ["ID"]})] == list(range(1, 31))
    assert len(small.requests) - before == 2  # the probe, then the open end (rows created since)

    big = Portal(seed=2, deals=7_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(big.webhook_url, transport=big.transport(), clock=clock, sleep=clock.sleep)
    seen: list[tuple[int, int | None]] = []
    rows = client.export("crm.deal.list", {"select": ["ID"]}, progress=lambda d, t: seen.append((d, t)))
    assert len(rows) == 7_000 and seen[-1] == (7_000, 7_000)
    commands = [
        str(command)
        for record in big.requests
        if record.method == "batch"
        for command in dict(record.params.get("cmd") or {}).values()
    ]
    assert commands and all("start=-1" in c for c in commands)


def test_an_export_keeps_the_callers_own_id_bounds(client: Bitrix24) -> None:
    """A ``>ID`` in the caller's filter is the same key as the export's range cursor: it must not be lost."""
    after = [int(r["ID"]) for r in client.export("crm.deal.list", {"filter": {">ID": 12}, "select": ["ID"]})]
    everything = sorted(int(d["ID"]) for d in client.export("crm.deal.list", {"select": ["ID"]}))
    assert after == [i for i in everything if i > 12] and len(after) < len(everything)
    upto = [int(r["ID"]) for r in client.export("crm.deal.list", {"filter": {"<=ID": 7}, "select": ["ID"]})]
    assert upto == [i for i in everything if i <= 7]
    with pytest.raises(ConfigError):
        client.export("crm.deal.list", {"filter": {">ID": "many"}})


def test_an_export_survives_cut_and_html_bodies_behind_a_200(clock: FakeClock) -> None:
    """A proxy cuts one answer and replaces another with an HTML page, both with status 200: the export
    repeats those reads and still returns every row exactly once."""
    import httpx

    portal = Portal(seed=3, deals=2_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    inner = portal.transport()
    seen = [0]

    class Flaky(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = inner.handle_request(request)
            seen[0] += 1
            body = response.read()
            if seen[0] == 2:
                return httpx.Response(200, content=body[: len(body) // 2], headers=response.headers)
            if seen[0] == 4:
                return httpx.Response(200, text="<html><body>Gateway maintenance</body></html>")
            return httpx.Response(response.status_code, content=body, headers=response.headers)

    client = Bitrix24(portal.webhook_url, transport=Flaky(), clock=clock, sleep=clock.sleep)
    ids = [int(row["ID"]) for row in client.export("crm.deal.list", {"select": ["ID"]})]
    assert sorted(ids) == sorted(portal.state["deal"]) and len(ids) == len(set(ids)) and seen[0] > 4


def test_an_exports_range_commands_read_back_as_the_params_they_stand_for(clock: FakeClock) -> None:
    """An export encodes what its range pages share once and only their bounds per page: each command must
    parse back (PHP's way) to exactly the params it stands for — the caller's filter and select, the ID order,
    ``start=-1`` and the range's own bounds."""
    portal = Portal(seed=2, deals=3_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    flt = {"@STAGE_ID": ["WON", "LOSE"], ">OPPORTUNITY": 10, "!%TITLE": "a b&c=d[e]"}
    rows = client.export("crm.deal.list", {"filter": flt, "select": ["ID", "TITLE"]})
    assert len(rows) > 500 and len({r["ID"] for r in rows}) == len(rows)
    ranged = [
        parse_php_query(str(command).split("?", 1)[1])
        for record in portal.requests
        if record.method == "batch"
        for command in dict(record.params.get("cmd") or {}).values()
        if "%3EID" in str(command)
    ]
    assert len(ranged) > 1
    for params in ranged:
        bounds = {k: v for k, v in params["filter"].items() if k in (">ID", "<=ID")}
        assert set(bounds) in ({">ID"}, {">ID", "<=ID"}) and all(str(v).isdigit() for v in bounds.values())
        assert params == {
            "select": ["ID", "TITLE"],
            "order": {"ID": "ASC"},
            "start": "-1",
            "filter": {"@STAGE_ID": ["WON", "LOSE"], ">OPPORTUNITY": "10", "!%TITLE": "a b&c=d[e]", **bounds},
        }


def test_a_pre_encoded_command_goes_out_verbatim_and_may_not_carry_auth(
    client: Bitrix24, portal: Portal
) -> None:
    from bitrix24_agent_tools.client._batch import Query

    result = client.batch({"one": ("crm.deal.get", Query(php_query({"id": 3})))})
    assert result.results["one"]["ID"] == "3"
    assert list(portal.requests[-1].params["cmd"].values()) == ["crm.deal.get?id=3"]
    for sneaky in ("auth=x", "id=1&AUTH=x", "auth[0]=x"):
        with pytest.raises(ConfigError, match="auth"):
            client.batch({"one": ("crm.deal.get", Query(sneaky))})


def test_an_export_between_id_bounds_still_goes_by_ranges(clock: FakeClock) -> None:
    """The caller's ``>=ID`` / ``<ID`` (or ``>ID`` / ``<=ID``) become the ranges' floor and ceiling: every row
    between them once, 50 pages a request — not one page a request; any other condition on ID walks once."""
    portal = Portal(seed=2, deals=10_000, leads=0, contacts=5, companies=3, tasks=0, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    before = len(portal.requests)
    rows = client.export("crm.deal.list", {"filter": {">=ID": 1001, "<ID": 9001}, "select": ["ID"]})
    assert sorted(int(r["ID"]) for r in rows) == list(range(1001, 9001))
    assert len(portal.requests) - before <= 1 + 4  # both ends, then 159 one-page ranges in 4 batches
    rows = client.export("crm.deal.list", {"filter": {">ID": 9950, "<=ID": 20_000}, "select": ["ID"]})
    assert sorted(int(r["ID"]) for r in rows) == list(range(9951, 10_001))
    some = client.export("crm.deal.list", {"filter": {"@ID": [5, 7, 9999], "<=ID": 9000}, "select": ["ID"]})
    assert sorted(int(r["ID"]) for r in some) == [5, 7]
    with pytest.raises(ConfigError):
        client.export("crm.deal.list", {"filter": {"<ID": "soon"}})
    ordered = [int(r["ID"]) for r in client.iterate("crm.deal.list", {"filter": {">=ID": 101, "<=ID": 4000}})]
    assert ordered == list(range(101, 4001))
