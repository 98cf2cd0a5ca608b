"""Security: writes are never re-sent on a guess, idempotency is per whole call, bad input never crashes a
run."""

from __future__ import annotations

from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24, ConfigError
from bitrix24_agent_tools.client._flow import safe_to_repeat
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.stores import MemoryIdempotencyStore
from bitrix24_agent_tools.toolbox import Toolbox


def test_an_approved_batch_of_two_adds_is_not_resent_after_a_dropped_connection(
    client: Bitrix24, portal: Portal
) -> None:
    before = len(portal.entities("deal"))
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer()))
    portal.faults.drop_next(1, after_processing=True)  # the portal ran it, then the connection dropped
    out = box.run(
        "b24_core_call",
        {
            "method": "batch",
            "params": {"cmd": {"a": "crm.deal.add?fields[TITLE]=One", "b": "crm.deal.add?fields[TITLE]=Two"}},
        },
    )
    assert out.is_error
    assert len(portal.entities("deal")) == before + 2  # ran once; not a second time


@pytest.mark.parametrize(
    "method",
    [
        "timeman.open",
        "telephony.externalCall.finish",
        "landing.landing.publication",
        "crm.automation.trigger",
        "tasks.task.delegate",
        "im.chat.leave",
    ],
)
def test_catalog_and_unknown_writes_are_not_retried_like_reads(method: str) -> None:
    assert not safe_to_repeat(method, {}, "v2", None, False, None)
    assert not safe_to_repeat(method, {}, "v2", "write", False, "key-only-v3-honours")
    assert safe_to_repeat("crm.deal.list", {}, "v2", None, False, None)


def test_a_batch_holding_a_write_is_not_retried_but_a_read_batch_is() -> None:
    assert not safe_to_repeat(
        "batch", {"cmd": {"a": "crm.deal.list", "b": "crm.deal.add?fields[TITLE]=x"}}, "v2", None, False, None
    )
    assert safe_to_repeat(
        "batch", {"cmd": {"a": "crm.deal.list", "b": "crm.deal.get?id=1"}}, "v2", None, False, None
    )


def test_later_different_updates_with_the_same_origin_id_are_all_sent(
    client: Bitrix24, portal: Portal
) -> None:
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer()))
    for amount in (100, 200):
        out = box.run(
            "b24_crm_update",
            {"entity": "deal", "id": 1, "fields": {"ORIGIN_ID": "ext-1", "OPPORTUNITY": amount}},
        )
        assert not out.is_error, out.content
        assert float(portal.entity("deal", 1)["OPPORTUNITY"]) == amount


def test_a_refused_edit_keeps_another_writes_record_and_leaves_an_audit_row(
    client: Bitrix24, portal: Portal
) -> None:
    store = MemoryIdempotencyStore()
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer(), idempotency=store))
    assert not box.run("b24_task_create", {"title": "First"}).is_error

    def edit_into_a_delete(request: ConfirmationRequest) -> Decision:
        return Decision.edit({"fields": {"TITLE": "First"}, "taskId": 1, "extra": {"a": 1, "A": 2}})

    box2 = Toolbox(
        client,
        packs=("core",),
        guard=Guard(Policy.writer(), edit_into_a_delete, idempotency=store, audit=box.guard.audit),
    )
    out = box2.run("b24_task_create", {"title": "Second"})
    assert out.is_error
    assert any(r.decision == "refused" and "edit refused" in (r.error or "") for r in box.guard.audit.rows())
    again = box.run(
        "b24_task_create", {"title": "First"}
    )  # the first write's record is intact: not re-run, and said plainly
    assert again.is_error and "already made" in again.content
    assert [t["title"] for t in portal.entities("task")].count("First") == 1


def test_a_run_that_dies_while_the_person_thinks_does_not_block_the_write(
    client: Bitrix24, portal: Portal
) -> None:
    class Crash(BaseException):
        pass

    def crash(request: ConfirmationRequest) -> Decision:
        raise Crash()

    store = MemoryIdempotencyStore()
    with pytest.raises(Crash):
        Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), crash, idempotency=store)).run(
            "b24_task_create", {"title": "Later"}
        )
    out = Toolbox(
        client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer(), idempotency=store)
    ).run("b24_task_create", {"title": "Later"})
    assert not out.is_error and "already running" not in out.content


async def test_confirm_timeout_holds_for_async_confirmers_under_run_and_sync_ones_under_arun(
    client: Bitrix24,
) -> None:
    import asyncio
    import threading

    async def slow_async(request: ConfirmationRequest) -> Decision:
        await asyncio.sleep(5)
        return Decision.approve()

    release = threading.Event()

    def slow_sync(request: ConfirmationRequest) -> Decision:
        release.wait(5)
        return Decision.approve()

    out = await asyncio.to_thread(
        Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), slow_async, confirm_timeout=0.2)).run,
        "b24_task_create",
        {"title": "t1"},
    )
    assert out.is_error and "in time" in out.content
    out = await Toolbox(
        client, packs=("core",), guard=Guard(Policy.writer(), slow_sync, confirm_timeout=0.2)
    ).arun("b24_task_create", {"title": "t2"})
    release.set()
    assert out.is_error and "in time" in out.content


def test_a_model_argument_named_self_or_run_manager_gets_a_line_not_a_crash(client: Bitrix24) -> None:
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit

    tool = next(t for t in Bitrix24Toolkit.create(client).get_tools() if t.name == "b24_crm_list")
    for bad in ({"self": 1, "entity": "deal"}, {"run_manager": 1, "entity": "deal"}):
        content = tool.invoke(bad)
        assert "invalid arguments" in content


def test_deeply_nested_json_gets_a_line_not_a_recursion_error(client: Bitrix24) -> None:
    box = Toolbox(client, packs=("core",))
    deep = "[" * 5000 + "]" * 5000
    assert box.run("b24_crm_list", '{"entity": "deal", "filter": ' + deep + "}").is_error
    nested: Any = {}
    for _ in range(3000):
        nested = {"a": nested}
    out = box.run("b24_core_call", {"method": "crm.deal.list", "params": nested})
    assert out.is_error and "nested" in out.content


@pytest.mark.parametrize(
    "url",
    ["https://p.bitrix24.com/rest/abc/secretcode123456/", "https://p.bitrix24.com/rest//secretcode123456/"],
)
def test_a_malformed_webhook_url_never_prints_the_code(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Bitrix24(url)
    assert "secretcode123456" not in str(info.value) and "malformed webhook URL" in str(info.value)


def test_a_refused_cli_write_names_the_cli_flag(portal: Portal, capsys: Any) -> None:
    box = Toolbox(
        Bitrix24(portal.webhook_url, transport=portal.transport()),
        packs=("core",),
        guard=Guard(Policy.writer()),
    )
    out = box.run("b24_task_create", {"title": "x"})
    assert "--confirm-write" in out.content and "pass confirm=" not in out.content


def test_a_write_whose_answer_was_lost_is_not_repeated_without_a_person_shown_that(
    client: Bitrix24, portal: Portal
) -> None:
    """The portal made the task, then the connection dropped: the outcome is unknown to us. The same write
    again is not sent blindly; the person is shown that its outcome is unknown, and only their yes sends
    it."""
    store = MemoryIdempotencyStore()
    shown: list[ConfirmationRequest] = []

    def careful(request: ConfirmationRequest) -> Decision:
        shown.append(request)
        unknown = any("outcome is unknown" in flag for flag in request.flags)
        return Decision.reject("check the portal first") if unknown else Decision.approve()

    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), careful, idempotency=store))
    # the responsible user's check is read (and cached) first, so the dropped answer is the write's
    assert not box.run("b24_task_create", {"title": "Warm-up", "responsible_id": 1}).is_error
    portal.faults.drop_next(1, after_processing=True)
    assert box.run("b24_task_create", {"title": "Once", "responsible_id": 1}).is_error
    made = [t for t in portal.entities("task") if t["title"] == "Once"]
    assert len(made) == 1  # it did happen
    again = box.run("b24_task_create", {"title": "Once", "responsible_id": 1})
    assert again.is_error and "check the portal first" in again.content
    assert "outcome is unknown" in shown[-1].summary
    assert len([t for t in portal.entities("task") if t["title"] == "Once"]) == 1
    yes = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer(), idempotency=store))
    assert not yes.run(
        "b24_task_create", {"title": "Once", "responsible_id": 1}
    ).is_error  # the person chose to send it again
    assert len([t for t in portal.entities("task") if t["title"] == "Once"]) == 2


def test_a_store_that_fails_after_the_write_never_lets_it_repeat_blindly(
    client: Bitrix24, portal: Portal
) -> None:
    """The idempotency store dies after the portal accepted the write: the in-flight claim does not expire
    into a free key (which would write again) but into an unknown outcome."""
    now = [1000.0]
    store = MemoryIdempotencyStore(clock=lambda: now[0])

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the store went away")

    store.complete = broken  # type: ignore[method-assign]
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer(), idempotency=store))
    assert not box.run("b24_task_create", {"title": "Lead from the form"}).is_error
    assert "already running" in box.run("b24_task_create", {"title": "Lead from the form"}).content
    now[0] += 3600  # the claim's holder is long gone
    shown: list[ConfirmationRequest] = []
    refuse = Toolbox(
        client,
        packs=("core",),
        guard=Guard(Policy.writer(), lambda r: shown.append(r) or Decision.reject("no"), idempotency=store),
    )
    out = refuse.run("b24_task_create", {"title": "Lead from the form"})
    assert out.is_error and any("outcome is unknown" in flag for flag in shown[-1].flags)
    assert len([t for t in portal.entities("task") if t["title"] == "Lead from the form"]) == 1


def test_a_yes_given_without_seeing_an_unknown_outcome_does_not_send_it_again(
    client: Bitrix24, portal: Portal
) -> None:
    """While the person reads the request, another process's identical write loses its answer: their yes was
    not given to "send it again", so nothing is sent."""
    store = MemoryIdempotencyStore()

    def yes_while_it_changes(request: ConfirmationRequest) -> Decision:
        assert not any("outcome is unknown" in f for f in request.flags)
        store.unknown(request.tenant, request.request_id, "another process lost the answer meanwhile")
        return Decision.approve()

    box = Toolbox(
        client, packs=("core",), guard=Guard(Policy.writer(), yes_while_it_changes, idempotency=store)
    )
    out = box.run("b24_task_create", {"title": "Raced"})
    assert out.is_error and "outcome is unknown" in out.content
    assert not [t for t in portal.entities("task") if t["title"] == "Raced"]
