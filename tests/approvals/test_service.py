"""The approval service: a write waits for an allowed person's answer, which counts once, for that request."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bitrix24_agent_tools.approvals import ApprovalError, ApprovalService
from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def _setup(ttl: float = 30.0, wait: float | None = None) -> tuple[Portal, Toolbox, ApprovalService]:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    service = ApprovalService(approvers=["5"], ttl=ttl, poll=0.02)
    guard = Guard(Policy.writer(), service.confirmer(wait=wait))
    return portal, Toolbox(client, packs=("core",), guard=guard), service


def _title(portal: Portal, deal: int) -> str:
    return str(portal.state["deal"][deal]["TITLE"])


def _update(box: Toolbox, title: str, out: list[Any]) -> threading.Thread:
    def run() -> None:
        out.append(box.run("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": title}}))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _pending(service: ApprovalService, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(getattr(service.store, "_rows", {}).values())
        waiting = [a for a in rows if a.state == "pending"]
        if waiting:
            return waiting[0]
        time.sleep(0.01)
    raise AssertionError("no request was opened")


def _writes(portal: Portal) -> list[str]:
    return [r.method for r in portal.requests if r.method == "crm.deal.update"]


def test_a_write_waits_for_the_approver_and_runs_once() -> None:
    portal, box, service = _setup()
    out: list[Any] = []
    thread = _update(box, "Approved title", out)
    approval = _pending(service)
    assert not _writes(portal)  # nothing before the yes
    assert approval.approvers == ("5",) and "Approved title" in approval.summary
    service.answer(approval.id, "approve", user=5, channel="test")
    thread.join(10)
    assert not out[0].is_error and _title(portal, 1) == "Approved title"
    assert len(_writes(portal)) == 1
    with pytest.raises(ApprovalError) as again:  # single use
        service.answer(approval.id, "approve", user=5, channel="test")
    assert again.value.code == "ANSWERED"
    row = box.guard.audit.rows()[-1]
    assert row.approved_by == "user 5 via test" and row.status == "ok"


def test_reject_and_expiry_write_nothing() -> None:
    portal, box, service = _setup()
    before = _title(portal, 1)
    out: list[Any] = []
    thread = _update(box, "Rejected title", out)
    service.answer(_pending(service).id, "reject", user=5, channel="test", reason="wrong deal")
    thread.join(10)
    assert out[0].is_error and "wrong deal" in out[0].content
    portal2, box2, service2 = _setup(ttl=0.3)
    out2: list[Any] = []
    thread = _update(box2, "Late title", out2)
    late = _pending(service2)
    thread.join(10)
    assert out2[0].is_error and "in time" in out2[0].content
    with pytest.raises(ApprovalError) as expired:
        service2.answer(late.id, "approve", user=5, channel="test")
    assert expired.value.code == "EXPIRED"
    assert _title(portal, 1) == before and not _writes(portal) and not _writes(portal2)


def test_someone_else_another_portal_or_another_request_changes_nothing() -> None:
    portal, box, service = _setup(ttl=1.0)
    out: list[Any] = []
    thread = _update(box, "Contested title", out)
    approval = _pending(service)
    with pytest.raises(ApprovalError) as stranger:
        service.answer(approval.id, "approve", user=7, channel="test")
    assert stranger.value.code == "NOT_APPROVER"
    with pytest.raises(ApprovalError) as other_portal:
        service.answer(approval.id, "approve", user=5, channel="test", tenant="other.bitrix24.com")
    assert other_portal.value.code == "NOT_FOUND"
    with pytest.raises(ApprovalError):
        service.answer("0" * 40, "approve", user=5, channel="test")
    thread.join(10)
    assert out[0].is_error and not _writes(portal)
    assert service.get(approval.id).state == "pending"  # type: ignore[union-attr]


def test_no_approver_means_no_write() -> None:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), ApprovalService().confirmer()))
    out = box.run("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "x"}})
    assert out.is_error and "no approver" in out.content and not _writes(portal)


def test_resume_later_runs_the_write_once_after_the_answer() -> None:
    """wait=0: the call returns at once as a plan; made again after the person's yes, it runs once."""
    portal, box, service = _setup(wait=0)
    args = {"entity": "deal", "id": 1, "fields": {"TITLE": "Later title"}}
    first = box.run("b24_crm_update", args)
    assert first.is_error and "waiting for user 5" in first.content and not _writes(portal)
    again = box.run("b24_crm_update", args)  # still unanswered: the same request, not a second one
    assert again.is_error and len(service.store._rows) == 1
    approval = _pending(service)
    service.answer(approval.id, "approve", user="5", channel="test")
    done = box.run("b24_crm_update", args)
    assert not done.is_error and _title(portal, 1) == "Later title" and len(_writes(portal)) == 1
    repeat = box.run("b24_crm_update", args)  # the yes was used: a new request, no write
    assert repeat.is_error and len(_writes(portal)) == 1


def test_an_edit_is_applied_and_shown_again_before_it_runs() -> None:
    portal, box, service = _setup()
    out: list[Any] = []
    thread = _update(box, "Model title", out)
    first = _pending(service)
    service.answer(first.id, "edit", user=5, channel="test", edit={"TITLE": "Person title"})
    deadline = time.monotonic() + 10
    second = None
    while time.monotonic() < deadline and second is None:
        rows = service.store._rows.values()
        second = next((a for a in rows if a.state == "pending" and a.id != first.id), None)
        time.sleep(0.01)
    assert second is not None and "Person title" in second.summary and not _writes(portal)
    service.answer(second.id, "approve", user=5, channel="test")
    thread.join(10)
    assert not out[0].is_error and _title(portal, 1) == "Person title"


async def test_the_async_toolbox_waits_without_blocking_the_loop() -> None:
    import asyncio

    from bitrix24_agent_tools.client import AsyncBitrix24

    portal = Portal(seed=1)
    service = ApprovalService(approvers=[5], poll=0.02)
    box = Toolbox(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()),
        packs=("core",),
        guard=Guard(Policy.writer(), service.confirmer(wait=10)),
    )
    task = asyncio.create_task(
        box.arun("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "Async title"}})
    )
    for _ in range(500):
        rows = [a for a in service.store._rows.values() if a.state == "pending"]
        if rows:
            break
        await asyncio.sleep(0.01)
    service.answer(rows[0].id, "approve", user=5, channel="test")
    out = await asyncio.wait_for(task, 10)
    assert not out.is_error and _title(portal, 1) == "Async title"


def test_settings_wire_the_service_and_an_answer_given_elsewhere_is_taken(tmp_path: Any) -> None:
    """B24_APPROVERS and B24_APPROVAL_STORE: every write asks through the service; the request and the answer
    live in the store, so an answer given by another process (here another service on the
    same file) counts."""
    from bitrix24_agent_tools.approvals import ApprovalConfirmer
    from bitrix24_agent_tools.settings import Settings
    from bitrix24_agent_tools.stores import SqliteApprovalStore

    store = str(tmp_path / "approvals.sqlite3")
    settings = Settings.from_env({"B24_APPROVERS": "5, 7", "B24_APPROVAL_STORE": store})
    guard = settings.guard()
    assert isinstance(guard.confirm, ApprovalConfirmer) and guard.confirm.service.approvers == ("5", "7")
    guard.confirm.wait = 0  # resume later
    portal = Portal(seed=1)
    box = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport()), packs=("core",), guard=guard)
    args = {"entity": "deal", "id": 1, "fields": {"TITLE": "Answered elsewhere"}}
    assert box.run("b24_crm_update", args).is_error
    elsewhere = ApprovalService(SqliteApprovalStore(store), approvers=["5", "7"])
    (approval,) = elsewhere.store.find(box.tenant, next(iter(_request_ids(store))))
    elsewhere.answer(approval.id, "approve", user=7, channel="web")
    assert not box.run("b24_crm_update", args).is_error and _title(portal, 1) == "Answered elsewhere"
    assert box.guard.audit.rows()[-1].approved_by == "user 7 via web"


def _request_ids(path: str) -> set[str]:
    import sqlite3

    with sqlite3.connect(path) as db:
        try:
            return {row[0] for row in db.execute("SELECT request_id FROM approvals")}
        except sqlite3.OperationalError:  # not created yet
            return set()


def test_a_langgraph_agent_pauses_until_an_approver_answers_through_the_service(tmp_path: Any) -> None:
    """InterruptConfirmer(approvals=...): the interrupt carries the approval; a resume value cannot approve
    (only the service's answers count); after the approver's yes the next resume runs the write once."""
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from bitrix24_agent_tools.demo import _scripted_model
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit, InterruptConfirmer

    portal = Portal(seed=7, deals=40)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    service = ApprovalService(approvers=[5], web_url="https://approve.example")
    toolkit = Bitrix24Toolkit.create(
        client, packs=("core", "comms"), guard=Guard(Policy.writer(), InterruptConfirmer(approvals=service))
    )
    agent = create_agent(_scripted_model(), toolkit.get_tools(), checkpointer=InMemorySaver())
    config: dict[str, Any] = {"configurable": {"thread_id": "t1"}}
    state = agent.invoke({"messages": [HumanMessage("Acme Logistics deal won")]}, config)
    paused = state["__interrupt__"][0].value
    request_id = paused["request_id"]
    assert paused["approval"]["url"] == f"https://approve.example/approvals/{paused['approval']['id']}"
    deal_id = int(paused["bitrix24_confirmation"]["params"]["id"])
    # the app cannot approve by itself: a resume that says yes only wakes the graph, which pauses again
    state = agent.invoke(Command(resume={request_id: {"approve": True}}), config)
    assert state["__interrupt__"][0].value["approval"]["id"] == paused["approval"]["id"]
    assert portal.entity("deal", deal_id)["STAGE_ID"] != "WON"
    service.answer(paused["approval"]["id"], "approve", user=5, channel="bitrix24-chat")
    state = agent.invoke(Command(resume=True), config)
    assert portal.entity("deal", deal_id)["STAGE_ID"] == "WON"
    rows = [
        r for r in toolkit.toolbox.guard.audit.rows() if r.method == "crm.deal.update" and r.status == "ok"
    ]
    assert [r.approved_by for r in rows] == ["user 5 via bitrix24-chat"]
    # the agent went on to its next write, which waits for its own approval
    assert state["__interrupt__"][0].value["bitrix24_confirmation"]["method"] != "crm.deal.update"


async def test_a_llama_index_tool_awaits_the_approvers_answer() -> None:
    """The LlamaIndex face: ``service.confirmer()`` is awaited inside the tool's async call."""
    import asyncio

    from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec

    portal = Portal(seed=1)
    service = ApprovalService(approvers=[5], poll=0.02)
    spec = Bitrix24ToolSpec.create(
        Bitrix24(portal.webhook_url, transport=portal.transport()),
        packs=("core",),
        confirm=service.confirmer(),
    )
    tool = next(t for t in spec.to_tool_list() if t.metadata.name == "b24_crm_update")
    call = asyncio.create_task(tool.acall(entity="deal", id=1, fields={"TITLE": "From LlamaIndex"}))
    for _ in range(500):
        waiting = [a for a in service.store._rows.values() if a.state == "pending"]  # type: ignore[attr-defined]
        if waiting:
            break
        await asyncio.sleep(0.01)
    assert _writes(portal) == []
    service.answer(waiting[0].id, "approve", user=5, channel="web")
    out = await asyncio.wait_for(call, 10)
    assert not out.is_error and _title(portal, 1) == "From LlamaIndex" and len(_writes(portal)) == 1


def test_the_cli_waits_for_an_approver_answering_from_another_process(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """`b24-agent-tools call` with B24_APPROVERS: no terminal, no --confirm-write, yet the write waits for an
    approver's answer in the shared store instead of being refused, and runs once after it."""
    from bitrix24_agent_tools.cli import main
    from bitrix24_agent_tools.stores import SqliteApprovalStore

    store = str(tmp_path / "approvals.sqlite3")
    monkeypatch.setenv("B24_APPROVERS", "5")
    monkeypatch.setenv("B24_APPROVAL_STORE", store)
    portal = Portal(seed=1)
    with portal.serve() as server:
        args = ["call", "crm.deal.update", "--params", '{"id": 2, "fields": {"TITLE": "cli approved"}}',
                "--webhook", server.webhook_url, "--plans", str(tmp_path / "p.sqlite3")]  # fmt: skip
        code: list[int] = []
        runner = threading.Thread(target=lambda: code.append(main(args)))
        runner.start()
        elsewhere = ApprovalService(SqliteApprovalStore(store), approvers=["5"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _request_ids(store):
            time.sleep(0.05)
        (approval,) = elsewhere.store.find(next(iter(_tenants(store))), next(iter(_request_ids(store))))
        assert _writes(portal) == []
        elsewhere.answer(approval.id, "approve", user=5, channel="bitrix24-chat")
        runner.join(20)
    assert code == [0] and _title(portal, 2) == "cli approved" and len(_writes(portal)) == 1


def _tenants(path: str) -> set[str]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT tenant FROM approvals")}


def test_a_request_that_expires_while_it_is_being_sent_is_a_no_not_a_plan() -> None:
    """A slow channel can take longer than the request's lifetime: the waiting confirmer then answers no
    (silence), never stores the write as a plan for later."""
    from bitrix24_agent_tools.stores import Approval

    class Slow:
        name = "slow"

        def notify(self, approval: Approval, service: ApprovalService) -> None:
            time.sleep(0.3)

        def answered(self, approval: Approval, service: ApprovalService) -> None:
            pass

    portal = Portal(seed=1)
    service = ApprovalService(approvers=["5"], channels=[Slow()], ttl=0.1, poll=0.02)
    box = Toolbox(
        Bitrix24(portal.webhook_url, transport=portal.transport()),
        packs=("core",),
        guard=Guard(Policy.writer(), service.confirmer()),
    )
    out = box.run("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "Too slow"}})
    assert out.is_error and "in time" in out.content and "plan" not in out.content and not _writes(portal)
