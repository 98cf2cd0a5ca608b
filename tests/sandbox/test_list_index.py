"""Id-ordered pages without a count are answered from the first matching rows (as an index would), and give
exactly what a full listing gives; the id index follows adds and deletes."""

from __future__ import annotations

from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.sandbox import Portal


def _ids(client: Bitrix24, params: dict[str, Any]) -> list[int]:
    return [int(r["ID"]) for r in client.call("crm.deal.list", params).result]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("flt", [{}, {">OPPORTUNITY": 20000}, {"CATEGORY_ID": 0, "<ID": 300}, {">ID": 900}])
def test_a_page_without_a_count_is_the_first_page_of_the_full_listing(
    direction: str, flt: dict[str, Any]
) -> None:
    portal = Portal(seed=3, deals=1000)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    base = {"filter": flt, "order": {"ID": direction}, "select": ["ID"]}
    fast = _ids(client, {**base, "start": -1})
    full = _ids(client, {**base, "start": 0})
    assert fast == full[:50] and fast


def test_a_user_who_is_not_an_admin_sees_only_their_own_rows_on_the_fast_path() -> None:
    portal = Portal(seed=3, deals=400)
    user = next(u for u, row in portal.state["user"].items() if not row.get("IS_ADMIN"))
    client = Bitrix24(portal.add_webhook(user_id=user), transport=portal.transport())
    rows = client.call(
        "crm.deal.list", {"order": {"ID": "DESC"}, "start": -1, "select": ["ID", "ASSIGNED_BY_ID"]}
    )
    assert rows.result and all(str(r["ASSIGNED_BY_ID"]) == str(user) for r in rows.result)


def test_the_id_index_follows_adds_and_deletes() -> None:
    portal = Portal(seed=3, deals=100)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    assert _ids(client, {"filter": {">ID": 95}, "start": -1}) == [96, 97, 98, 99, 100]
    client.call("crm.deal.delete", {"id": 97})
    new = client.call("crm.deal.add", {"fields": {"TITLE": "late"}}).result
    assert _ids(client, {"filter": {">ID": 95}, "start": -1}) == [96, 98, 99, 100, int(new)]
    client.call("crm.deal.delete", {"id": 100})
    assert _ids(client, {"filter": {">ID": 95}, "order": {"ID": "DESC"}, "start": -1}) == [
        int(new),
        99,
        98,
        96,
    ]
