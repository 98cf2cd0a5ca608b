"""The guard: nothing writes without a person's yes, destructive needs policy too, plans, idempotency,
audit."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer, DeferredConfirmer
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy, summarize
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.stores import (
    MemoryPlanStore,
    SqliteAuditStore,
    SqliteIdempotencyStore,
    SqlitePlanStore,
)
from bitrix24_agent_tools.toolbox import Toolbox


def box(
    client: Bitrix24,
    confirm: Any = None,
    policy: Policy | None = None,
    packs: tuple[str, ...] = ("core", "comms"),
    **kw: Any,
) -> Toolbox:
    return Toolbox(client, packs=packs, guard=Guard(policy or Policy.writer(), confirm, **kw))


def test_without_a_confirmer_every_write_is_refused_and_nothing_changes(
    client: Bitrix24, portal: Portal
) -> None:
    before = portal.entity("deal", 3)
    out = box(client).run("b24_deal_move", {"id": 3, "stage_id": "LOSE"})
    assert out.is_error and "no person can confirm" in out.content
    assert portal.entity("deal", 3) == before
    assert box(client).run("b24_crm_get", {"entity": "deal", "id": 3}).is_error is False  # reads need no one


def test_the_person_sees_a_one_line_summary_with_current_values(client: Bitrix24, portal: Portal) -> None:
    confirm = AutoConfirmer()
    deal = portal.entity("deal", 4)
    box(client, confirm).run(
        "b24_crm_update", {"entity": "deal", "id": 4, "fields": {"STAGE_ID": "WON", "OPPORTUNITY": 5000}}
    )
    request = confirm.seen[0]
    assert request.summary == (
        f"Update deal #4 (crm.deal.update) '{deal['TITLE']}'\n"
        f"  STAGE_ID: {deal['STAGE_ID']} → WON\n  OPPORTUNITY: {deal['OPPORTUNITY']} → 5000"
    )
    assert request.current is not None and request.current["ID"] == "4"
    assert request.risk == "write" and request.tenant == portal.domain and request.method == "crm.deal.update"


def test_a_rejection_reason_goes_back_to_the_model(client: Bitrix24, portal: Portal) -> None:
    out = box(client, lambda r: Decision.reject("not before the client signs")).run(
        "b24_task_create", {"title": "x"}
    )
    assert out.is_error and out.content == "rejected by the reviewer: not before the client signs"
    assert all(t["title"] != "x" for t in portal.entities("task"))


def test_edited_params_are_rechecked_by_the_whole_guard(client: Bitrix24, portal: Portal) -> None:
    edit_ok = lambda r: Decision.edit({**r.params, "fields": {"TITLE": "edited"}})  # noqa: E731
    assert not box(client, edit_ok).run("b24_task_create", {"title": "orig"}).is_error
    assert any(t["title"] == "edited" for t in portal.entities("task"))
    # An edit that turns the call into something the allowlist forbids is refused.
    evil = lambda r: Decision.edit({"id": 1, "fields": {"TITLE": "x"}, "auth": "stolen-token-123"})  # noqa: E731
    out = box(client, evil).run("b24_task_update", {"id": 1, "fields": {"TITLE": "y"}})
    assert out.is_error and "auth" in out.content


def test_destructive_needs_the_policy_and_a_yes(client: Bitrix24, portal: Portal) -> None:
    args = {"method": "crm.deal.delete", "params": {"id": 5}}
    assert (
        "does not allow destructive"
        in box(client, AutoConfirmer(destructive=True)).run("b24_core_call", args).content
    )
    assert (
        "destructive calls are not auto-approved"
        in box(client, AutoConfirmer(), Policy.admin()).run("b24_core_call", args).content
    )
    assert portal.entity("deal", 5) is not None
    assert (
        not box(client, AutoConfirmer(destructive=True), Policy.admin()).run("b24_core_call", args).is_error
    )
    assert portal.entity("deal", 5) is None


def test_read_only_policy_refuses_writes_before_asking(client: Bitrix24) -> None:
    confirm = AutoConfirmer()
    out = box(client, confirm, Policy.read_only()).run("b24_task_complete", {"id": 1})
    assert "does not allow write" in out.content and confirm.seen == []


def test_the_generic_tool_is_limited_to_its_pack_catalog(client: Bitrix24) -> None:
    out = box(client, AutoConfirmer()).run("b24_core_call", {"method": "im.message.add", "params": {}})
    assert out.is_error and "not allowed" in out.content
    out = box(client, AutoConfirmer(), allow=("im.*",)).run(
        "b24_core_call", {"method": "im.message.add", "params": {"DIALOG_ID": "1", "MESSAGE": "hi"}}
    )
    assert not out.is_error  # an explicit allow pattern widens it


def test_batch_commands_are_checked_one_by_one_and_take_the_riskiest(
    client: Bitrix24, portal: Portal
) -> None:
    confirm = AutoConfirmer(destructive=True)
    nested = {
        "method": "batch",
        "params": {"cmd": {"a": "crm.deal.get?id=1", "b": "batch?cmd[x]=crm.deal.get"}},
    }
    assert "batch inside a batch" in box(client, confirm, Policy.admin()).run("b24_core_call", nested).content
    outside = {
        "method": "batch",
        "params": {"cmd": {"a": "crm.deal.get?id=1", "b": "im.message.add?DIALOG_ID=1"}},
    }
    assert "is not allowed" in box(client, confirm, Policy.admin()).run("b24_core_call", outside).content
    mixed = {"method": "batch", "params": {"cmd": {"a": "crm.deal.get?id=1", "b": "crm.deal.delete?id=6"}}}
    assert "does not allow destructive" in box(client, confirm).run("b24_core_call", mixed).content
    assert portal.entity("deal", 6) is not None
    assert not box(client, confirm, Policy.admin()).run("b24_core_call", mixed).is_error
    assert confirm.seen[-1].risk == "destructive" and portal.entity("deal", 6) is None


def test_offline_get_is_destructive_unless_clear_is_zero() -> None:
    guard = Guard()
    assert guard.risk_of("event.offline.get", {}) == "destructive"
    assert guard.risk_of("event.offline.get", {"clear": 0}) == "write"
    assert guard.risk_of("event.offline.get", {"clear": "1"}) == "destructive"


def test_the_same_write_twice_runs_once(client: Bitrix24, portal: Portal) -> None:
    toolbox = box(client, AutoConfirmer())
    args = {"entity": "lead", "fields": {"TITLE": "From the web form", "ORIGIN_ID": "form-77"}}
    first, second = toolbox.run("b24_crm_create", args), toolbox.run("b24_crm_create", args)
    # The repeat is not sent, and not reported as made now: the model is told it was made before, and when.
    assert not first.is_error and first.content.startswith("created lead #")
    lead_id = first.content.split("#", 1)[1].split()[0]
    assert second.is_error and second.content.startswith(
        "not sent again: this exact write was already made ("
    )
    assert f"its result then: {lead_id}." in second.content
    assert len([lead for lead in portal.entities("lead") if lead["TITLE"] == "From the web form"]) == 1
    assert [r.decision for r in toolbox.guard.audit.rows() if r.method == "crm.lead.add"] == [
        "approved",
        "replayed",
    ]


def test_concurrent_identical_writes_do_not_both_run(client: Bitrix24, portal: Portal, tmp_path: Any) -> None:
    store = SqliteIdempotencyStore(tmp_path / "idem.sqlite3")
    gate = threading.Event()

    def slow_yes(request: ConfirmationRequest) -> Decision:
        gate.wait(5)
        return Decision.approve()

    toolbox = box(client, slow_yes, idempotency=store)
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(toolbox.run("b24_task_create", {"title": "once only"}).content)
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    gate.set()  # all four were asked; the write runs once, the others wait for it or get its result
    for t in threads:
        t.join()
    assert len([t for t in portal.entities("task") if t["title"] == "once only"]) == 1
    assert len(results) == 4 and all(
        "already running" in r or r == results[0] or "created" in r for r in results
    )


def test_a_failed_write_releases_its_key_and_leaves_no_half_state(client: Bitrix24, portal: Portal) -> None:
    toolbox = box(client, AutoConfirmer())
    portal.faults.fail_next(1, "INTERNAL_SERVER_ERROR", 500, method="tasks.task.add")
    out = toolbox.run("b24_task_create", {"title": "retry me"})
    assert out.is_error and "INTERNAL_SERVER_ERROR" in out.content
    assert not any(t["title"] == "retry me" for t in portal.entities("task"))
    assert not toolbox.run("b24_task_create", {"title": "retry me"}).is_error


def test_plans_run_once_for_the_same_tenant_before_expiry(
    client: Bitrix24, portal: Portal, tmp_path: Any
) -> None:
    now = [1000.0]
    plans = SqlitePlanStore(tmp_path / "plans.sqlite3")
    toolbox = box(client, DeferredConfirmer(), plans=plans, clock=lambda: now[0], plan_ttl=60)
    out = toolbox.run("b24_task_create", {"title": "planned"})
    plan_id = out.content.split("plan ")[1].split()[0]
    assert not any(t["title"] == "planned" for t in portal.entities("task"))
    other = Toolbox(client, guard=toolbox.guard, tenant="another.bitrix24.com")
    assert "no plan" in other.execute_plan(plan_id).content
    assert "deferred it again" in toolbox.execute_plan(plan_id).content  # the executor must answer, not defer
    planned = [t for t in portal.entities("task") if t["title"] == "planned"]
    assert not planned
    late_plan = toolbox.run("b24_task_create", {"title": "planned"})
    plan_id = late_plan.content.split("plan ")[1].split()[0]
    assert "executed" in toolbox.execute_plan(plan_id, confirm=AutoConfirmer()).content
    assert "already executed" in toolbox.execute_plan(plan_id, confirm=AutoConfirmer()).content
    assert len([t for t in portal.entities("task") if t["title"] == "planned"]) == 1
    late = toolbox.run("b24_task_create", {"title": "too late"})
    late_id = late.content.split("plan ")[1].split()[0]
    now[0] += 61
    assert "expired" in toolbox.execute_plan(late_id).content


def test_every_call_is_audited_with_masked_params(client: Bitrix24, tmp_path: Any) -> None:
    audit = SqliteAuditStore(tmp_path / "audit.sqlite3")
    toolbox = box(client, AutoConfirmer(by="alice"), audit=audit)
    toolbox.run("b24_crm_list", {"entity": "deal", "limit": 1})
    toolbox.run(
        "b24_task_create", {"title": "t", "responsible_id": 1, "description": f"see {client.auth.base_url}"}
    )  # type: ignore[union-attr]
    toolbox.run("b24_core_call", {"method": "crm.deal.delete", "params": {"id": 1}})
    from bitrix24_agent_tools.packs.preflight import METHODS

    everything = audit.rows()
    assert {r.method for r in everything if r.method in METHODS} <= {
        "user.get",
        "crm.company.list",
        "crm.status.list",
    }
    assert all(
        r.decision == "read" for r in everything if r.method in METHODS
    )  # names and checks are audited reads
    rows = [r for r in everything if r.method not in METHODS]
    assert [(r.method, r.decision, r.status) for r in rows] == [
        ("crm.deal.list", "read", "ok"),
        ("tasks.task.add", "approved", "ok"),
        ("crm.deal.delete", "refused", "skipped"),
    ]
    assert rows[1].approved_by == "alice"
    assert client.auth._code not in str(rows[1].params)  # type: ignore[union-attr]


def test_summary_without_current_values_lists_fields() -> None:
    assert (
        summarize("crm.lead.add", {"fields": {"TITLE": "A"}}, None)
        == "Create lead (crm.lead.add)\n  TITLE = A"
    )
    assert (
        summarize("tasks.task.complete", {"taskId": 7}, {"title": "Call"})
        == "Complete task #7 (tasks.task.complete) 'Call'"
    )


async def test_async_confirmers_and_async_runs(portal: Portal, client: Bitrix24) -> None:
    async def confirm(request: ConfirmationRequest) -> Decision:
        return Decision.approve(by="async")

    toolbox = box(client, confirm)
    out = await toolbox.arun("b24_task_create", {"title": "async ok"})
    assert not out.is_error and any(t["title"] == "async ok" for t in portal.entities("task"))
    # an async confirmer cannot be awaited from run() inside a running loop: that is a "no", not a crash
    refused = toolbox.run("b24_task_create", {"title": "sync inside loop"})
    assert refused.is_error and "confirmation step failed" in refused.content


def test_a_confirmer_that_raises_or_times_out_is_a_rejection(client: Bitrix24, portal: Portal) -> None:
    def broken(request: ConfirmationRequest) -> Decision:
        raise RuntimeError("the approval UI crashed")

    out = box(client, broken).run("b24_task_create", {"title": "never"})
    assert out.is_error and "confirmation step failed (RuntimeError)" in out.content

    def slow(request: ConfirmationRequest) -> Decision:
        threading.Event().wait(2)
        return Decision.approve()

    late = box(client, slow, confirm_timeout=0.1).run("b24_task_create", {"title": "never"})
    assert late.is_error and "no answer from the reviewer in time" in late.content
    assert not any(t["title"] == "never" for t in portal.entities("task"))
    assert (
        box(client, AutoConfirmer()).run("b24_task_create", {"title": "never"}).is_error is False
    )  # key was released


async def test_an_async_confirmer_timing_out_is_a_rejection(client: Bitrix24, portal: Portal) -> None:
    import asyncio

    async def silent(request: ConfirmationRequest) -> Decision:
        await asyncio.sleep(5)
        return Decision.approve()

    out = await box(client, silent, confirm_timeout=0.05).arun("b24_task_create", {"title": "async never"})
    assert "no answer from the reviewer in time" in out.content
    assert not any(t["title"] == "async never" for t in portal.entities("task"))


def test_no_write_reaches_the_portal_without_a_yes_through_any_path(client: Bitrix24, portal: Portal) -> None:
    no = lambda request: Decision.reject("no")  # noqa: E731
    toolbox = box(client, no, Policy.admin())
    attempts = [
        ("b24_deal_move", {"id": 2, "stage_id": "WON"}),
        ("b24_core_call", {"method": "crm.deal.update", "params": {"id": 2, "fields": {"TITLE": "x"}}}),
        (
            "b24_core_call",
            {"method": "batch", "params": {"cmd": {"a": "crm.deal.get?id=1", "b": "crm.deal.delete?id=2"}}},
        ),
        ("b24_core_call", {"method": "event.offline.get", "params": {}}),
    ]
    for name, args in attempts:
        assert box(client, no, Policy.admin()).run(name, args).is_error
    # an edit that smuggles a delete into an approved batch is re-checked: the writer policy refuses it
    sneaky = lambda r: Decision.edit({"cmd": {"a": "crm.deal.get?id=1", "b": "crm.deal.delete?id=3"}})  # noqa: E731
    edited = box(client, sneaky).run(
        "b24_core_call", {"method": "batch", "params": {"cmd": {"a": "crm.deal.update?id=3&fields[TITLE]=y"}}}
    )
    assert "does not allow destructive" in edited.content
    from bitrix24_agent_tools.risk import classify

    written = [r for r in portal.requests if classify(r.method, r.params) != "read"]  # reads (checks) may run
    assert written == [] and not [r for r in portal.requests if r.method == "batch"]
    assert any(r.method == "crm.deal.get" for r in portal.requests)  # the checks did look
    assert toolbox.guard.audit is not None


def test_an_update_reads_the_record_once_for_both_the_checks_and_the_confirmation(
    client: Bitrix24, portal: Portal
) -> None:
    confirm = AutoConfirmer()
    box(client, confirm).run("b24_crm_update", {"entity": "deal", "id": 4, "fields": {"TITLE": "once"}})
    assert len([r for r in portal.requests if r.method == "crm.deal.get"]) == 1
    assert (
        confirm.seen[0].current is not None and confirm.seen[0].current["ID"] == "4"
    )  # the person still sees it


def test_only_exceptions_a_face_declared_pass_through_as_pauses(client: Any) -> None:
    """The core knows no framework: a face declares its pause exception (register_pause); a look-alike by name
    is a failed confirmation, so a "no" (fail closed)."""
    from bitrix24_agent_tools.toolbox import Toolbox, register_pause

    class GraphInterrupt(Exception):  # the name of LangGraph's, not LangGraph's class
        pass

    class DeclaredPause(Exception):
        pass

    def raising(kind: type[Exception]) -> Any:
        def confirm(request: Any) -> Any:
            raise kind("paused")

        return confirm

    look_alike = Toolbox(client, guard=Guard(Policy.writer(), raising(GraphInterrupt)))
    out = look_alike.run("b24_task_create", {"title": "x"})
    assert out.is_error and "confirmation step failed" in out.content
    register_pause(DeclaredPause)
    declared = Toolbox(client, guard=Guard(Policy.writer(), raising(DeclaredPause)))
    with pytest.raises(DeclaredPause):
        declared.run("b24_task_create", {"title": "x"})


def test_a_terminal_edit_lands_under_upper_case_fields_and_is_shown_again(
    client: Bitrix24, portal: Portal
) -> None:
    """The call's fields sit under ``FIELDS``: an edit of ``{"OPPORTUNITY": 5000}`` is written there (not at
    the top level, where the portal ignores it), and the person sees the edited call before it runs."""
    from bitrix24_agent_tools.confirmers import TerminalConfirmer

    answers = iter(["e", '{"OPPORTUNITY": 5000}', "y"])
    shown: list[str] = []
    confirm = TerminalConfirmer(ask=lambda prompt: next(answers), show=shown.append)
    toolbox = box(client, confirm)
    out = toolbox.run(
        "b24_core_call", {"method": "crm.deal.update", "params": {"id": 4, "FIELDS": {"OPPORTUNITY": 1}}}
    )
    assert not out.is_error, out.content
    assert portal.entity("deal", 4)["OPPORTUNITY"] == "5000.00"
    assert len(shown) == 2 and "→ 1" in shown[0] and "→ 5000" in shown[1]


def test_a_plan_is_not_used_up_by_an_attempt_nobody_answered(client: Bitrix24, portal: Portal) -> None:
    from bitrix24_agent_tools.confirmers import DeferredConfirmer

    plans = MemoryPlanStore()
    planner = box(client, DeferredConfirmer(), plans=plans)
    plan_id = planner.run("b24_task_create", {"title": "planned"}).content.split("plan ")[1].split()[0]

    def walks_away(request: ConfirmationRequest) -> Decision:
        raise TimeoutError  # the person never answered

    assert planner.execute_plan(plan_id, confirm=walks_away).is_error
    assert not [t for t in portal.entities("task") if t["title"] == "planned"]
    done = planner.execute_plan(plan_id, confirm=lambda r: Decision.approve(by="person"))
    assert not done.is_error, done.content
    assert [t["title"] for t in portal.entities("task")].count("planned") == 1
    assert planner.execute_plan(plan_id, confirm=lambda r: Decision.approve(by="person")).is_error  # once


def test_a_plan_whose_run_died_mid_write_resumes_without_writing_twice(
    client: Bitrix24, portal: Portal
) -> None:
    """The connection drops after the portal made the plan's task: the plan is claimed, not lost and not
    re-run blindly — its next run is shown that the outcome is unknown, and a no leaves one task."""
    plans = MemoryPlanStore()
    planner = box(client, DeferredConfirmer(), plans=plans)
    plan_id = (
        planner.run("b24_task_create", {"title": "from a resumed plan"}).content.split("plan ")[1].split()[0]
    )
    portal.faults.drop_next(1, after_processing=True)
    first = planner.execute_plan(plan_id, confirm=lambda r: Decision.approve(by="person"))
    assert first.is_error
    assert plans.get(plan_id).status == "claimed"  # type: ignore[union-attr]
    shown: list[ConfirmationRequest] = []
    second = planner.execute_plan(
        plan_id, confirm=lambda r: shown.append(r) or Decision.reject("checked: it is there")
    )
    assert second.is_error and "outcome is unknown" in shown[-1].summary
    assert [t["title"] for t in portal.entities("task")].count("from a resumed plan") == 1
