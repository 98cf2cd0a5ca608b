"""Writes are checked against the portal's own metadata before anyone is asked (the model-usability issue)."""

from __future__ import annotations

from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


class Person:
    def __init__(self) -> None:
        self.asked: list[ConfirmationRequest] = []

    def __call__(self, request: ConfirmationRequest) -> Decision:
        self.asked.append(request)
        return Decision.approve()


def _box(client: Bitrix24) -> tuple[Toolbox, Person]:
    person = Person()
    return Toolbox(client, packs=("core", "comms"), guard=Guard(Policy.writer(), person)), person


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("b24_crm_create", {"entity": "deal", "fields": {"BOGUS": "x", "AMOUNT": 5}}, "unknown field BOGUS"),
        ("b24_crm_create", {"entity": "deal", "fields": {"TITLE": "x", "AMOUNT": 5}}, "closest: OPPORTUNITY"),
        (
            "b24_crm_create",
            {"entity": "deal", "fields": {"TITLE": "x", "ASSIGNED_BY_ID": "Farid Ivanova"}},
            "expects a user ID",
        ),
        (
            "b24_crm_create",
            {"entity": "deal", "fields": {"TITLE": "x", "COMPANY_ID": 999}},
            "company #999 does not exist",
        ),
        (
            "b24_crm_create",
            {"entity": "deal", "fields": {"TITLE": "x", "CURRENCY_ID": "EURO"}},
            "CURRENCY_ID must be one of",
        ),
        (
            "b24_crm_create",
            {"entity": "deal", "fields": {"TITLE": "x", "ASSIGNED_BY_ID": 999}},
            "user #999 does not exist",
        ),
        (
            "b24_crm_create",
            {"entity": "deal", "fields": {"TITLE": "x", "CLOSEDATE": "next friday"}},
            "ISO 8601",
        ),
        ("b24_crm_create", {"entity": "company", "fields": {"COMMENTS": "no title"}}, "company needs TITLE"),
        (
            "b24_crm_update",
            {"entity": "deal", "id": 9999, "fields": {"TITLE": "x"}},
            "deal #9999 does not exist",
        ),
        ("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"ID": 5}}, "read-only"),
        ("b24_crm_comment", {"entity": "deal", "id": 9999, "text": "hi"}, "deal #9999 does not exist"),
        ("b24_task_create", {"title": "x", "deadline": "next friday"}, "deadline must be an ISO 8601 date"),
        ("b24_task_create", {"title": "x", "responsible_id": 999}, "user #999 does not exist"),
    ],
)
def test_a_write_that_would_fail_or_drop_data_is_refused_before_the_person_is_asked(
    client: Bitrix24, portal: Portal, tool: str, args: dict[str, Any], says: str
) -> None:
    box, person = _box(client)
    before = {k: dict(v) for k, v in portal.state.items() if isinstance(v, dict)}
    out = box.run(tool, args)
    assert out.is_error and says in out.content, out.content
    assert person.asked == []
    assert {k: dict(v) for k, v in portal.state.items() if isinstance(v, dict)} == before


def test_a_stage_of_another_pipeline_names_the_right_one(client: Bitrix24, portal: Portal) -> None:
    box, person = _box(client)
    partner = next(d for d in portal.entities("deal") if d["CATEGORY_ID"] == "1")
    out = box.run("b24_deal_move", {"id": int(partner["ID"]), "stage_id": "NEW"})
    assert out.is_error and "use stage_id C1:NEW" in out.content and person.asked == []


def test_won_and_lost_close_a_deal_by_its_pipelines_semantics(client: Bitrix24, portal: Portal) -> None:
    box, person = _box(client)
    deal_id = client.call("crm.deal.add", {"fields": {"TITLE": "Partner deal", "CATEGORY_ID": 1}}).result
    out = box.run("b24_deal_move", {"id": deal_id, "stage_id": "WON"})
    assert not out.is_error and "C1:WON" in out.content and "C1:WON" in person.asked[0].summary
    assert portal.entity("deal", deal_id)["STAGE_ID"] == "C1:WON"


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("b24_chat_send", {"dialog_id": "Boris Smith", "message": "hi"}, "dialog_id must be a user ID"),
        ("b24_chat_send", {"dialog_id": "999", "message": "hi"}, "user #999 does not exist"),
        ("b24_notify", {"user_id": 99, "message": "hi"}, "user #99 does not exist"),
    ],
)
def test_messages_to_nobody_are_refused_before_the_person_is_asked(
    client: Bitrix24, tool: str, args: dict[str, Any], says: str
) -> None:
    box, person = _box(client)
    out = box.run(tool, args)
    assert out.is_error and says in out.content and person.asked == []


def test_a_lead_with_name_phone_and_email_keeps_them_all(client: Bitrix24, portal: Portal) -> None:
    box, person = _box(client)
    out = box.run(
        "b24_crm_create",
        {
            "entity": "lead",
            "fields": {
                "TITLE": "Web form",
                "NAME": "Ann",
                "LAST_NAME": "Lee",
                "PHONE": "+1 555 0100",
                "EMAIL": "ann@example.com",
            },
        },
    )
    assert not out.is_error, out.content
    lead = client.call("crm.lead.get", {"id": out.artifact["id"]}).result
    assert lead["LAST_NAME"] == "Lee" and lead["PHONE"][0]["VALUE"] == "+1 555 0100"
    assert lead["EMAIL"][0]["VALUE"] == "ann@example.com" and len(person.asked) == 1


@pytest.mark.parametrize(
    ("flt", "says"),
    [
        ({"OPPORTUNITY>": 20000}, "put the operator before the field: >OPPORTUNITY"),
        ({"COMPANY": "Northwind Foods"}, "closest: COMPANY_ID"),
        ({"status": "open"}, "unknown filter field status"),
    ],
)
def test_a_wrong_filter_fails_loudly_instead_of_returning_nothing(
    client: Bitrix24, flt: dict[str, Any], says: str
) -> None:
    box, _ = _box(client)
    out = box.run("b24_crm_list", {"entity": "deal", "filter": flt})
    assert out.is_error and says in out.content, out.content


def test_metadata_is_read_once_per_tenant_for_a_while(client: Bitrix24, portal: Portal) -> None:
    box, _ = _box(client)
    for i in range(3):
        box.run("b24_crm_create", {"entity": "deal", "fields": {"TITLE": f"cached {i}"}})
    assert len([r for r in portal.requests if r.method == "crm.deal.fields"]) == 1


def test_lists_show_names_beside_ids_within_the_token_budget(client: Bitrix24, portal: Portal) -> None:
    import json

    from bitrix24_agent_tools.packs.render import rows_of
    from bitrix24_agent_tools.tokens import count_tokens

    box, _ = _box(client)
    out = box.run("b24_crm_list", {"entity": "deal", "limit": 20})
    rows = rows_of(json.loads(out.content))
    deal = portal.entity("deal", int(rows[0]["ID"]))
    user = portal.state["user"][int(deal["ASSIGNED_BY_ID"])]
    assert rows[0]["ASSIGNED_BY"] == f"{user['NAME']} {user['LAST_NAME']}"
    assert rows[0]["COMPANY"] == portal.entity("company", int(deal["COMPANY_ID"]))["TITLE"]
    assert rows[0]["STAGE"] and count_tokens(out.content) / len(rows) <= 40


def test_everyday_jobs_link_a_task_to_crm_comment_on_a_task_and_find_users(
    client: Bitrix24, portal: Portal
) -> None:
    import json

    from bitrix24_agent_tools.packs.render import rows_of

    box, _ = _box(client)
    created = box.run(
        "b24_task_create", {"title": "Call about the renewal", "crm": {"deal": [3], "contact": [2]}}
    )
    assert not created.is_error, created.content
    task = portal.entity("task", int(created.artifact["id"]))
    assert task is not None and task["ufCrmTask"] == ["D_3", "C_2"]  # tasks-task-get.md: ufCrmTask
    # a contact is a contact, never read as a company from a prefix: C_ is contact, CO_ company
    linked = box.run("b24_task_create", {"title": "Company call", "crm": {"company": [2]}})
    assert portal.entity("task", int(linked.artifact["id"]))["ufCrmTask"] == ["CO_2"]
    assert (
        "deal #9999 does not exist"
        in box.run("b24_task_create", {"title": "x", "crm": {"deal": [9999]}}).content
    )
    commented = box.run(
        "b24_crm_comment", {"entity": "task", "id": int(created.artifact["id"]), "text": "Called"}
    )
    assert commented.content.startswith("comment #") and any(
        c["POST_MESSAGE"] == "Called" for c in portal.state["task_comment"].values()
    )
    muller = portal.state["user"][2]
    muller["LAST_NAME"] = "Müller"
    by_name = rows_of(json.loads(box.run("b24_user_find", {"query": f"{muller['NAME']} Muller"}).content))
    assert [u["ID"] for u in by_name] == [str(muller["ID"])]
    by_id = rows_of(json.loads(box.run("b24_user_find", {"query": str(muller["ID"])}).content))
    assert by_id[0]["LAST_NAME"] == "Müller"


def test_a_phone_search_matches_however_the_number_is_written(client: Bitrix24, portal: Portal) -> None:
    """crm-duplicate-find-by-comm.md: the portal matches communications itself (phones normalised)."""
    import json

    from bitrix24_agent_tools.packs.render import rows_of

    box, _ = _box(client)
    contact = portal.entity("contact", 3)
    stored = contact["PHONE"][0]["VALUE"]  # e.g. "+7 900 0000003"
    typed = "".join(ch for ch in stored if ch.isdigit())  # written without spaces or a plus sign
    out = box.run("b24_crm_list", {"entity": "contact", "filter": {"PHONE": typed}, "select": ["ID", "NAME"]})
    assert [r["ID"] for r in rows_of(json.loads(out.content))] == ["3"]
    none = box.run("b24_crm_list", {"entity": "contact", "filter": {"PHONE": "000"}})
    assert json.loads(none.content)["count"] == 0


def test_a_department_and_its_head_are_found_by_name(client: Bitrix24, portal: Portal) -> None:
    import json

    from bitrix24_agent_tools.packs.render import rows_of

    box, _ = _box(client)
    dept = next(d for d in portal.state["department"].values() if d.get("PARENT"))
    head = portal.state["user"][int(dept["UF_HEAD"])]
    rows = rows_of(json.loads(box.run("b24_user_find", {"query": dept["NAME"].lower()}).content))
    found = next(r for r in rows if r.get("DEPARTMENT") == dept["NAME"])
    assert found["HEAD"].startswith(f"{head['NAME']} {head['LAST_NAME']}")
