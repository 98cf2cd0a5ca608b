"""Legacy CRM methods as the official docs describe them (bitrix24/b24restdocs, api-reference/crm/...)."""

from __future__ import annotations

import pytest

from bitrix24_agent_tools.client import AccessDenied, BadRequest, Bitrix24, NotFound
from bitrix24_agent_tools.sandbox import Portal


def test_upper_case_filter_select_and_order_keys_are_honoured(client: Bitrix24, portal: Portal) -> None:
    """crm-deal-list.md: the docs' own cURL example sends FILTER/SELECT/ORDER in upper case."""
    rows = client.call(
        "crm.deal.list",
        {"FILTER": {"STAGE_ID": "WON"}, "SELECT": ["ID", "STAGE_ID"], "ORDER": {"ID": "DESC"}},
    ).result
    won = sorted((d for d in portal.entities("deal") if d["STAGE_ID"] == "WON"), key=lambda d: -int(d["ID"]))
    assert [r["ID"] for r in rows] == [d["ID"] for d in won] and all(
        set(r) == {"ID", "STAGE_ID"} for r in rows
    )


def test_default_select_is_star_and_user_fields_and_star_leaves_out_multifields(client: Bitrix24) -> None:
    """crm-deal-list.md / crm-contact-list.md: default '*' + 'UF_*'; '*' excludes multiple fields."""
    deal = client.call("crm.deal.list", {"filter": {"ID": 1}}).result[0]
    assert "UF_CRM_SOURCE_CHANNEL" in deal and "TITLE" in deal
    contact = client.call("crm.contact.list", {"filter": {"ID": 1}, "select": ["*"]}).result[0]
    assert "PHONE" not in contact and "EMAIL" not in contact
    named = client.call("crm.contact.list", {"filter": {"ID": 1}, "select": ["ID", "PHONE"]}).result[0]
    assert named["PHONE"] and set(named["PHONE"][0]) == {"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"}


def test_a_deal_title_is_optional_and_defaults_to_deal_and_its_id(client: Bitrix24) -> None:
    """crm-deal-add.md: TITLE — by default "Deal #{id}"."""
    new_id = client.call("crm.deal.add", {"fields": {"OPPORTUNITY": 10}}).result
    assert client.call("crm.deal.get", {"id": new_id}).result["TITLE"] == f"Deal #{new_id}"


def test_multifield_updates_append_replace_and_delete_by_id(client: Bitrix24) -> None:
    """crm-contact-update.md, "Working with Multiple Fields"."""
    cid = client.call(
        "crm.contact.add",
        {
            "fields": {
                "NAME": "Ann",
                "PHONE": [
                    {"VALUE": "111", "VALUE_TYPE": "WORK"},
                    {"VALUE": "222", "VALUE_TYPE": "WORK"},
                    {"VALUE": "333", "VALUE_TYPE": "WORK"},
                ],
            }
        },
    ).result
    phones = client.call("crm.contact.get", {"id": cid}).result["PHONE"]
    assert [p["VALUE"] for p in phones] == ["111", "222", "333"] and all(
        p["TYPE_ID"] == "PHONE" for p in phones
    )
    client.call(
        "crm.contact.update", {"id": cid, "fields": {"PHONE": [{"VALUE": "444", "VALUE_TYPE": "MOBILE"}]}}
    )
    phones = client.call("crm.contact.get", {"id": cid}).result["PHONE"]
    assert [p["VALUE"] for p in phones] == ["111", "222", "333", "444"]  # appended, not replaced
    a, b, c, d = (p["ID"] for p in phones)
    client.call(
        "crm.contact.update",
        {
            "id": cid,
            "fields": {
                "PHONE": [
                    {"ID": a, "DELETE": "Y"},
                    {"ID": b, "VALUE": ""},
                    {"ID": c, "VALUE": "555", "VALUE_TYPE": "HOME"},
                ]
            },
        },
    )
    phones = client.call("crm.contact.get", {"id": cid}).result["PHONE"]
    assert [(p["ID"], p["VALUE"], p["VALUE_TYPE"]) for p in phones] == [
        (c, "555", "HOME"),
        (d, "444", "MOBILE"),
    ]


def test_fields_carry_immutable_dynamic_and_status_type(client: Bitrix24) -> None:
    """crm-deal-fields.md: isImmutable, isDynamic, statusType (CATEGORY_ID is immutable)."""
    fields = client.call("crm.deal.fields").result
    assert fields["CATEGORY_ID"]["isImmutable"] is True and fields["TITLE"]["isImmutable"] is False
    assert fields["STAGE_ID"]["statusType"] == "DEAL_STAGE" and fields["SOURCE_ID"]["statusType"] == "SOURCE"
    assert fields["UF_CRM_SOURCE_CHANNEL"]["isDynamic"] is True and fields["TITLE"]["isDynamic"] is False
    assert fields["TITLE"]["isRequired"] is False


@pytest.mark.parametrize(
    ("method", "params", "error", "text"),
    [
        ("crm.deal.get", {"id": 9999}, NotFound, "Not found"),
        ("crm.deal.get", {"id": "x"}, BadRequest, "ID is not defined or invalid."),
        ("crm.deal.update", {"id": 1, "fields": "x"}, BadRequest, "Parameter 'fields' must be array."),
        ("crm.deal.list", {"filter": "x"}, BadRequest, "Parameter 'filter' must be array."),
        ("crm.deal.list", {"order": "x"}, BadRequest, "Parameter 'order' must be array."),
    ],
)
def test_legacy_error_texts_become_typed_errors(
    client: Bitrix24, method: str, params: dict, error: type, text: str
) -> None:
    """crm-deal-*.md, Error Handling: HTTP 400, "error": "", the text in error_description."""
    with pytest.raises(error) as info:
        client.call(method, params)
    assert info.value.status == 400 and text in str(info.value)


def test_access_denied_on_a_record_is_a_typed_access_error(portal: Portal) -> None:
    user3 = Bitrix24(portal.add_webhook(3), transport=portal.transport())
    other = next(d for d in portal.entities("deal") if d["ASSIGNED_BY_ID"] != "3")
    with pytest.raises(AccessDenied):
        user3.call("crm.deal.get", {"id": other["ID"]})


def test_crm_item_speaks_universal_names_with_numbers_as_numbers_and_fm(client: Bitrix24) -> None:
    """crm-item-get.md / object-fields.md: createdTime, updatedTime, createdBy, assignedById; ids and amounts
    as numbers; a contact's multifields as `fm`."""
    deal = client.call("crm.item.get", {"entityTypeId": 2, "id": 1}).result["item"]
    assert {"createdTime", "updatedTime", "createdBy", "assignedById", "stageId"} <= set(deal)
    assert (
        isinstance(deal["id"], int)
        and isinstance(deal["assignedById"], int)
        and isinstance(deal["opportunity"], float)
    )
    contact = client.call("crm.item.get", {"entityTypeId": 3, "id": 1}).result["item"]
    assert contact["fm"] and {"id", "valueType", "value", "typeId"} == set(contact["fm"][0])


def test_crm_item_filter_logic_or_and_not_like(client: Bitrix24, portal: Portal) -> None:
    """crm-item-list.md: a nested group with logic OR; !% is NOT LIKE."""
    flt = {"0": {"logic": "OR", "0": {"stageId": "WON"}, "1": {"stageId": "LOSE"}}, "!%title": "Globex"}
    items = client.call("crm.item.list", {"entityTypeId": 2, "filter": flt}).result["items"]
    expected = [
        d
        for d in portal.entities("deal")
        if d["STAGE_ID"] in ("WON", "LOSE") and "globex" not in d["TITLE"].lower()
    ]
    assert sorted(i["id"] for i in items) == sorted(int(d["ID"]) for d in expected) and items


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"filter": {"bogusField": 1}}, "Invalid filter: field 'bogusField' is not allowed in filter"),
        ({"order": {"title": "UP"}}, "Invalid order: allowed sort directions are ASC, DESC"),
        ({"order": {"nope": "ASC"}}, "Invalid order: field 'nope' is not allowed in order"),
    ],
)
def test_crm_item_list_refuses_unknown_filter_fields_and_bad_orders(
    client: Bitrix24, params: dict, text: str
) -> None:
    """crm-item-list.md, Error Handling: INVALID_ARG_VALUE (400)."""
    with pytest.raises(BadRequest) as info:
        client.call("crm.item.list", {"entityTypeId": 2, **params})
    assert info.value.code == "INVALID_ARG_VALUE" and text in str(info.value)


def test_seeded_deals_are_coherent_with_their_companies() -> None:
    """A deal's title names the company it belongs to, so an agent that searches by title finds the right
    one."""
    portal = Portal(seed=7, deals=60)
    for deal in portal.entities("deal"):
        company = portal.entity("company", int(deal["COMPANY_ID"]))
        assert company is not None and deal["TITLE"].endswith(f" for {company['TITLE']}")
