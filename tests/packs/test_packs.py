"""Packs: every catalog method reachable and risk-classified, typed tools against the sandbox, compact
results."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.packs import CATALOG, PACKS, classify, name_risk, pack_of, specs_for
from bitrix24_agent_tools.packs.render import rows_of
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def test_twelve_packs_each_with_a_generic_call_tool_listing_its_whole_catalog() -> None:
    assert list(PACKS) == [
        "core",
        "comms",
        "automation",
        "collab",
        "content",
        "boards",
        "commerce",
        "services",
        "platform",
        "sites",
        "compliance",
        "diagnostics",
    ]
    for name, pack in PACKS.items():
        generic = [s for s in pack.specs if s.generic]
        assert len(generic) == 1 and generic[0].name == f"b24_{name}_call"
        assert set(generic[0].methods) == set(pack.catalog)


def test_every_catalog_method_passes_the_guard_allowlist_of_its_pack(client: Bitrix24) -> None:
    guard = Guard(Policy.admin())
    for name, pack in PACKS.items():
        spec = next(s for s in pack.specs if s.generic)
        for method in pack.catalog:
            from bitrix24_agent_tools.packs import Call

            params: dict[str, object] = {"clear": 0} if method == "event.offline.get" else {}
            if method == "batch":
                params = {"cmd": {"a": "crm.deal.get?id=1"}}
            assert guard.check(spec, Call(method, params), (name,)) in ("read", "write", "destructive")


@pytest.mark.parametrize(
    ("method", "risk"),
    [
        ("crm.deal.list", "read"),
        ("crm.deal.update", "write"),
        ("crm.deal.delete", "destructive"),
        ("bizproc.workflow.kill", "destructive"),
        ("landing.landing.publication", "write"),
        ("disk.file.get", "read"),
        ("some.thing.add", "write"),
        ("some.thing.unbind", "destructive"),
        ("some.thing.recyclebin", "destructive"),
        ("some.thing.get", "read"),
        ("EVENT.OFFLINE.GET", "destructive"),
    ],
)
def test_risk_is_catalog_first_then_the_name(method: str, risk: str) -> None:
    assert classify(method) == risk


def test_name_fallback_and_pack_lookup() -> None:
    assert name_risk("crm.automation.trigger") == "write"  # unknown verbs are writes (fail closed)
    assert name_risk("crm.some.thing") == "write" and name_risk("crm.some.list") == "read"
    assert classify("crm.automation.trigger") == "write"
    assert pack_of("IMOPENLINES.config.list.get") == "comms"
    assert pack_of("unknown.method") is None
    assert sum(len(c) for c in CATALOG.values()) > 150


def test_compact_schemas_carry_no_titles_or_nulls() -> None:
    def keys(node: object, inside_properties: bool = False) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if not inside_properties:
                    found.add(key)
                found |= keys(value, key == "properties")
        elif isinstance(node, list):
            for value in node:
                found |= keys(value)
        return found

    for spec in specs_for(PACKS):
        schema = compact_schema(spec.args)
        assert not keys(schema) & {"title", "anyOf", "$defs", "$ref"}, spec.name
        assert "additionalProperties" not in schema
        assert '"default": null' not in json.dumps(schema)


def _box(client: Bitrix24, packs: tuple[str, ...] = ("core", "comms", "diagnostics")) -> Toolbox:
    return Toolbox(client, packs=packs, guard=Guard(Policy.writer(), AutoConfirmer()))


def test_crm_list_returns_compact_rows_and_a_more_hint(client: Bitrix24) -> None:
    out = _box(client).run(
        "b24_crm_list",
        {"entity": "deal", "filter": {">OPPORTUNITY": 1000}, "select": ["ID", "TITLE"], "limit": 5},
    )
    body = json.loads(out.content)
    assert len(body["rows"]) == 5 and body["columns"] == [
        "ID",
        "TITLE",
    ]  # a table: columns once, rows as arrays
    assert body["count"] > 5 and "more" in body
    assert len(out.artifact) == 5


def test_crm_list_pages_up_to_the_limit(portal: Portal, client: Bitrix24) -> None:
    box = _box(client)
    box.context = box.context.__class__(tenant=box.tenant, max_items=200)
    out = box.run("b24_crm_list", {"entity": "deal", "limit": 120})
    assert len(out.artifact) == 30  # the portal has 30; one page was enough
    assert len([r for r in portal.requests if r.method == "crm.deal.list"]) == 1


def test_long_text_is_cut_for_the_model_but_kept_in_the_artifact(client: Bitrix24, portal: Portal) -> None:
    portal.state["deal"][1]["COMMENTS"] = "x" * 5000
    out = _box(client).run("b24_crm_get", {"entity": "deal", "id": 1})
    assert len(out.content) < 1500 and out.artifact["COMMENTS"] == "x" * 5000


def test_fields_tool_shows_custom_fields_and_enum_values(client: Bitrix24) -> None:
    body = json.loads(_box(client).run("b24_crm_fields", {"entity": "deal"}).content)
    assert body["UF_CRM_SOURCE_CHANNEL"]["enum"] == {
        "101": "Exhibition",
        "102": "Webinar",
        "103": "Cold call",
    }
    company = json.loads(_box(client).run("b24_crm_fields", {"entity": "company"}).content)
    assert company["TITLE"].get("req") is True and body["TITLE"].get("req") is not True  # crm-*-fields.md


def test_stages_and_moving_a_deal(client: Bitrix24, portal: Portal) -> None:
    pipelines = json.loads(_box(client).run("b24_crm_fields", {"entity": "deal"}).content)["pipelines"]
    assert [p["name"] for p in pipelines] == ["General", "Partners"] and "C1:WON=Won" in pipelines[1][
        "stages"
    ]
    partner = next(d for d in portal.entities("deal") if d["CATEGORY_ID"] == "1")
    moved = _box(client).run("b24_deal_move", {"id": int(partner["ID"]), "stage_id": "C1:NEW"})
    assert moved.content == f"deal #{partner['ID']} moved to C1:NEW (New)"
    assert portal.entity("deal", int(partner["ID"]))["STAGE_ID"] == "C1:NEW"
    general = next(d for d in portal.entities("deal") if d["CATEGORY_ID"] == "0")
    other = _box(client).run(
        "b24_deal_move", {"id": int(general["ID"]), "stage_id": "C1:NEW"}
    )  # another pipeline's
    assert other.is_error and "use stage_id NEW" in other.content
    bad = _box(client).run("b24_deal_move", {"id": 2, "stage_id": "NOPE"})
    assert bad.is_error and "unknown stage 'NOPE'" in bad.content


def test_smart_process_items_and_timeline_comments(client: Bitrix24, portal: Portal) -> None:
    box = _box(client)
    created = box.run("b24_crm_create", {"entity": "item:1030", "fields": {"title": "Project X"}})
    assert created.content == "created item:1030 #1"
    assert "item:<typeId>" in box.run("b24_crm_create", {"entity": "item", "fields": {"title": "x"}}).content
    assert (
        box.run("b24_crm_comment", {"entity": "deal", "id": 3, "text": "Called"}).content
        == "comment #1 added to deal #3"
    )
    assert portal.state["timeline_comment"][1]["COMMENT"] == "Called"


def test_tasks_and_users(client: Bitrix24, portal: Portal) -> None:
    box = _box(client)
    created = box.run(
        "b24_task_create", {"title": "Prepare offer", "responsible_id": 2, "deadline": "2026-12-01"}
    )
    task_id = int(created.artifact["id"])
    assert box.run("b24_task_complete", {"id": task_id}).content == f"task #{task_id} completed"
    assert portal.entity("task", task_id)["status"] == "5"
    users = json.loads(box.run("b24_user_find", {"query": "anna"}).content)
    assert rows_of(users)[0]["NAME"] == "Anna"
    assert box.run("b24_chat_send", {"dialog_id": "2", "message": "hi"}).content.startswith("message #")


def test_diagnostics_tools_work_offline(client: Bitrix24) -> None:
    box = _box(client)
    assert "a webhook cannot call it" in box.run("b24_explain_error", {"code": "WRONG_AUTH_TYPE"}).content
    assert (
        box.run("b24_check_method", {"method": "landing.site.add"}).content.split("; reads ")[0]
        == "landing.site.add: pack sites, risk write, not active: route or enable that pack"
    )


def test_generic_call_lists_with_a_paging_hint(portal: Portal, clock: object) -> None:
    big = Portal(seed=5, deals=80)
    client = Bitrix24(big.webhook_url, transport=big.transport())
    body = json.loads(
        _box(client).run("b24_core_call", {"method": "crm.deal.list", "params": {"select": ["ID"]}}).content
    )
    assert body["count"] == 80 and "params.start=50" in body["more"]


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("b24_crm_get", {"entity": "deal", "id": "seven"}, "id: Input should be a valid integer"),
        ("b24_crm_get", {"entity": "deal"}, "id: Field required"),
        (
            "b24_crm_list",
            {"entity": "planet"},
            "entity: Value error, entity must be lead, deal, contact, company, item",
        ),
        ("b24_task_create", {"title": "x" * 100_000}, "title: String should have at most 255 characters"),
        (
            "b24_core_call",
            {"method": "landing.site.delete", "params": {}},
            "landing.site.delete is not allowed for b24_core_call",
        ),
        ("b24_crm_list", {"entity": "deal", "surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_model_input_gets_a_short_specific_message(
    client: Bitrix24, name: str, args: dict[str, object], expected: str
) -> None:
    out = _box(client).run(name, args)
    assert out.is_error and expected in out.content and len(out.content) <= 300


def test_typed_tools_of_the_smaller_packs(client: Bitrix24, portal: Portal) -> None:
    box = _box(client, packs=("core", "collab", "services", "automation", "content"))
    assert (
        box.run("b24_feed_post", {"message": "Q3 results are in", "title": "Q3"}).content
        == "posted #2 to the live feed for everyone"
    )
    assert portal.state["blogpost"][2]["DETAIL_TEXT"] == "Q3 results are in"
    event = box.run(
        "b24_calendar_add", {"name": "Kick-off", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"}
    )
    assert (
        event.content == "event #3 'Kick-off' added"
        and portal.state["calendar_event"][3]["NAME"] == "Kick-off"
    )
    backwards = box.run(
        "b24_calendar_add", {"name": "x", "start": "2026-12-02T10:00:00", "end": "2026-12-01T10:00:00"}
    )
    assert backwards.is_error and "before" in backwards.content
    started = box.run("b24_workflow_start", {"template_id": 1, "entity": "deal", "id": 7})
    assert started.content.endswith("started on deal #7")
    workflow = portal.state["workflow"][started.content.split()[1].lstrip("#")]
    assert [workflow["MODULE_ID"], workflow["ENTITY"], workflow["DOCUMENT_ID"]] == [
        "crm",
        "CCrmDocumentDeal",
        "DEAL_7",
    ]
    assert (
        "entity must be deal or lead"
        in box.run("b24_workflow_start", {"template_id": 1, "entity": "task", "id": 7}).content
    )
    files = json.loads(box.run("b24_folder_list", {"id": 2}).content)
    assert [f["NAME"] for f in rows_of(files)] == ["Acme Logistics contract.pdf"]


def test_crm_list_pages_past_500_rows_with_an_offset(clock: Any) -> None:
    """Legacy lists page by page number (rest.php IRestService::getNavData): the tool asks from the page
    boundary and skips to the offset, so offset=1010 gives the 1,011th row; the model is shown 20 rows and
    told the next offset, code gets every row it asked for in the artifact."""
    portal = Portal(seed=3, deals=1200, clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    box = _box(client)
    expected = [str(i) for i in range(1, 1201)]
    args = {"entity": "deal", "order": {"ID": "ASC"}, "select": ["ID"]}
    first = box.run("b24_crm_list", {**args, "limit": 500})
    assert [r["ID"] for r in first.artifact] == expected[:500]
    assert [r[0] for r in json.loads(first.content)["rows"]] == expected[:20] and "offset=20" in json.loads(
        first.content
    )["more"]
    later = box.run("b24_crm_list", {**args, "limit": 60, "offset": 1010})
    assert [r["ID"] for r in later.artifact] == expected[1010:1070]
    assert [r[0] for r in json.loads(later.content)["rows"]] == expected[1010:1030]
    assert "offset=1030" in json.loads(later.content)["more"]
    last = json.loads(box.run("b24_crm_list", {**args, "limit": 500, "offset": 1190}).content)
    assert [r[0] for r in last["rows"]] == expected[1190:] and "more" not in last


def test_the_sandbox_pages_legacy_lists_by_page_number(client: Bitrix24) -> None:
    """rest/classes/general/rest.php IRestService::getNavData: iNumPage = intval(start / 50) + 1."""
    page = client.call("crm.deal.list", {"order": {"ID": "ASC"}, "select": ["ID"], "start": 25})
    assert page.result[0]["ID"] == "1"  # start 25 is page 1: rows 0-49 (30 deals: no next)


def test_a_lead_is_converted_the_way_the_docs_describe(client: Bitrix24, portal: Portal) -> None:
    """crm/leads/index.md: no REST conversion method; the contact, company and deal are created by their own
    add methods and the lead moved to its converted status — one batch, so the person approves it once, seeing
    all."""
    confirmer = AutoConfirmer()
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), confirmer))
    created = box.run(
        "b24_crm_create",
        {
            "entity": "lead",
            "fields": {
                "TITLE": "Website request",
                "NAME": "Olga",
                "LAST_NAME": "Orlov",
                "COMPANY_TITLE": "Orbital Labs",
                "PHONE": "+49 30 1234567",
                "EMAIL": "olga@orbital.test",
                "OPPORTUNITY": 1500,
                "CURRENCY_ID": "EUR",
            },
        },
    )
    lead_id = created.artifact["id"]
    out = box.run("b24_lead_convert", {"id": lead_id})
    assert not out.is_error, out.content
    made = out.artifact
    deal = portal.entity("deal", made["deal"])
    contact = portal.entity("contact", made["contact"])
    company = portal.entity("company", made["company"])
    assert (deal["CONTACT_ID"], deal["COMPANY_ID"]) == (str(made["contact"]), str(made["company"]))
    assert (deal["OPPORTUNITY"], deal["CURRENCY_ID"], deal["TITLE"]) == ("1500.00", "EUR", "Website request")
    assert contact["LAST_NAME"] == "Orlov" and contact["PHONE"][0]["VALUE"] == "+49 30 1234567"
    assert company["TITLE"] == "Orbital Labs" and portal.entity("lead", lead_id)["STATUS_ID"] == "CONVERTED"
    summary = confirmer.seen[-1].summary
    assert all(
        m in summary for m in ("crm.contact.add", "crm.company.add", "crm.deal.add", "crm.lead.update")
    )
    again = box.run("b24_lead_convert", {"id": lead_id})
    assert again.is_error and "already converted" in again.content and len(confirmer.seen) == 2


def test_a_refusal_points_to_the_right_pack_or_the_nearest_method_and_a_pack_lists_its_methods(
    client: Bitrix24,
) -> None:
    box = _box(client)
    elsewhere = box.run("b24_core_call", {"method": "landing.site.add", "params": {}})
    assert elsewhere.is_error and "sites pack" in elsewhere.content and "b24_sites_call" in elsewhere.content
    typo = box.run("b24_core_call", {"method": "crm.deal.lisst", "params": {}})
    assert typo.is_error and "did you mean crm.deal.list" in typo.content
    listing = box.run("b24_check_method", {"method": "sites"}).content
    assert listing.startswith("sites (b24_sites_call)") and "write: landing.site.add" in listing
    assert "destructive: landing.site.delete landing.landing.delete" in listing
    assert "landing.site.add|delete|getList|update" in PACKS["sites"].specs[-1].description


def test_check_method_says_what_a_method_reads_from_its_contract(client: Bitrix24) -> None:
    out = _box(client).run("b24_check_method", {"method": "tasks.task.delete"}).content
    assert "reads taskId* (integer → task)" in out and "docs api-reference/tasks/tasks-task-delete.md" in out
    out = _box(client).run("b24_check_method", {"method": "crm.deal.update"}).content
    assert "fields (object: TITLE" in out and "id* (integer → deal)" in out


def test_narrowing_to_scopes_is_a_new_view_and_leaves_the_toolbox_as_it_was(client: Bitrix24) -> None:
    box = Toolbox(client, packs=("core", "comms"))
    before = [s.name for s in box.specs]
    view = box.for_scopes(["crm", "task", "user"])
    assert "b24_chat_send" in before and "b24_chat_send" not in {s.name for s in view.specs}
    assert [s.name for s in box.specs] == before and view.boundary == box.boundary
    assert "b24_comms_call" in {s.name for s in view.specs}  # generic tools stay: the guard judges them


def test_an_empty_list_says_what_was_searched_and_a_large_limit_is_not_cut_silently(client: Bitrix24) -> None:
    box = _box(client)
    none = json.loads(
        box.run("b24_crm_list", {"entity": "deal", "filter": {"%TITLE": "no such deal"}}).content
    )
    assert none["count"] == 0 and "%TITLE" in none["searched"] and "no such deal" in none["searched"]
    many = json.loads(box.run("b24_crm_list", {"entity": "deal", "limit": 50}).content)
    assert len(many["rows"]) == 20 and "at most 20 rows at once (50 asked)" in many["note"] and many["more"]


def test_a_record_read_names_its_ids_as_a_list_does(client: Bitrix24, portal: Portal) -> None:
    deal = portal.entity("deal", 4)
    assert deal is not None
    user = portal.state["user"][int(deal["ASSIGNED_BY_ID"])]
    got = _box(client).run("b24_crm_get", {"entity": "deal", "id": 4}).content
    assert f"{user['NAME']} {user['LAST_NAME']}" in got and "ASSIGNED_BY" in got and "STAGE" in got


def test_crm_fields_lists_the_required_fields_explicitly(client: Bitrix24) -> None:
    contact = json.loads(_box(client).run("b24_crm_fields", {"entity": "contact"}).content)
    assert contact["required"] == ["NAME", "LAST_NAME"] and contact["NAME"]["req"] is True
    deal = json.loads(_box(client).run("b24_crm_fields", {"entity": "deal"}).content)
    assert deal["required"] == []  # said, not left to silence
