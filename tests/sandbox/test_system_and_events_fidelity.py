"""System methods, pipelines/stages and event binding as the docs and the rest module's source describe them.

Sources: api-reference/common/system/*.md, common/users/profile.md, crm/status/crm-status-list.md,
crm/universal/category/crm-category-list.md, events/event-bind.md, settings/oauth/index.md
(bitrix24/b24restdocs); modules/rest/classes/general/rest_provider.php and lib/api/event.php
(avshatalov48/bitrix-core-business).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.client import AccessDenied, AuthError, BadRequest, Bitrix24
from bitrix24_agent_tools.sandbox import Portal


def _app_client(portal: Portal, user_id: int = 1, scopes: set[str] | None = None) -> Bitrix24:
    app = portal.register_app(scopes=scopes)
    tokens = portal.install_app(app, user_id=user_id)
    return Bitrix24(
        portal.app_auth(app, tokens),
        transport=portal.transport(),
    )


def test_server_time_is_iso_with_an_offset_and_no_fraction(client: Bitrix24) -> None:
    """server-time.md: YYYY-MM-DDThh:mm:ss±hh:mm."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", client.call("server.time").result)


def test_profile_has_the_documented_fields(client: Bitrix24) -> None:
    """profile.md: ID (string), ADMIN, NAME, LAST_NAME, PERSONAL_GENDER, TIME_ZONE."""
    result = client.call("profile").result
    assert {"ID", "ADMIN", "NAME", "LAST_NAME", "PERSONAL_GENDER", "TIME_ZONE"} <= set(result)
    assert isinstance(result["ID"], str) and result["ADMIN"] is True


def test_method_get_says_whether_a_method_exists_and_is_available(portal: Portal) -> None:
    """method-get.md: isExisting / isAvailable for the credential's scopes."""
    only_tasks = Bitrix24(portal.add_webhook(1, scopes={"task"}), transport=portal.transport())
    assert only_tasks.call("method.get", {"name": "crm.deal.list"}).result == {
        "isExisting": True,
        "isAvailable": False,
    }
    assert only_tasks.call("method.get", {"name": "tasks.task.list"}).result == {
        "isExisting": True,
        "isAvailable": True,
    }
    assert only_tasks.call("method.get", {"name": "no.such.method"}).result == {
        "isExisting": False,
        "isAvailable": False,
    }


def test_app_info_for_an_application_and_for_a_webhook(portal: Portal, client: Bitrix24) -> None:
    """app-info.md / rest_provider.php appInfo: an app's record; a webhook gets SCOPE and LICENSE."""
    info = _app_client(portal).call("app.info").result
    assert {
        "ID",
        "CODE",
        "VERSION",
        "STATUS",
        "INSTALLED",
        "PAYMENT_EXPIRED",
        "DAYS",
        "LANGUAGE_ID",
        "LICENSE",
    } <= set(info)
    hook = client.call("app.info").result
    assert set(hook) == {"SCOPE", "LICENSE"} and "crm" in hook["SCOPE"]


def test_scope_and_methods_follow_the_credential(portal: Portal) -> None:
    """scope.md, methods.md: the credential's scopes; methods of those scopes (or of `scope`)."""
    only_tasks = Bitrix24(portal.add_webhook(1, scopes={"task"}), transport=portal.transport())
    assert only_tasks.call("scope").result == ["task"]
    names = only_tasks.call("methods").result
    assert "tasks.task.list" in names and "crm.deal.list" not in names
    assert "crm.deal.list" in only_tasks.call("methods", {"scope": "crm"}).result


def test_categories_and_statuses_carry_total_and_their_full_keys(client: Bitrix24) -> None:
    """crm-category-list.md and crm-status-list.md: total, and every documented key."""
    cats = client.call("crm.category.list", {"entityTypeId": 2})
    assert cats.total == len(cats.result["categories"])
    assert {"id", "name", "sort", "entityTypeId", "isDefault", "originId", "originatorId"} <= set(
        cats.result["categories"][0]
    )
    stages = client.call("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})
    assert stages.total == len(stages.result) > 0
    assert {
        "ID",
        "ENTITY_ID",
        "STATUS_ID",
        "NAME",
        "NAME_INIT",
        "SORT",
        "SYSTEM",
        "CATEGORY_ID",
        "COLOR",
        "SEMANTICS",
        "EXTRA",
    } <= set(stages.result[0])


def test_event_bind_refuses_unknown_events_and_offline_binding_by_a_non_admin(portal: Portal) -> None:
    """event-bind.md, Error Handling: ERROR_EVENT_NOT_FOUND (400); offline binding needs an administrator
    (403)."""
    admin = _app_client(portal)
    with pytest.raises(BadRequest) as info:
        admin.call("event.bind", {"event": "ONNOSUCHTHING", "handler": "https://app.example/h"})
    assert info.value.code == "ERROR_EVENT_NOT_FOUND"
    with pytest.raises(BadRequest):
        admin.call("event.bind", {"event": "ONOFFLINEEVENT", "event_type": "offline"})  # disableOffline
    non_admin = next(u for u, user in portal.state["user"].items() if not user.get("IS_ADMIN"))
    with pytest.raises(AccessDenied, match="administrator"):
        _app_client(portal, user_id=non_admin).call(
            "event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"}
        )
    assert admin.call("event.bind", {"EVENT": "onCrmDealAdd", "EVENT_TYPE": "offline"}).result is True
    assert admin.call("event.get").result == [{"event": "ONCRMDEALADD", "connector_id": "", "offline": 1}]


def test_event_methods_need_an_application(client: Bitrix24) -> None:
    """lib/api/event.php: every event method throws AuthTypeException for a webhook."""
    with pytest.raises(AuthError):
        client.call("events")


def test_the_authorize_redirect_names_the_oauth_server(portal: Portal) -> None:
    """settings/oauth/index.md: the redirect carries code, state, domain, member_id, scope and
    server_domain."""
    app = portal.register_app()
    with httpx.Client(transport=portal.transport(), base_url=portal.base_url) as http:
        location = http.get(f"/oauth/authorize/?client_id={app.client_id}&state=s").headers["location"]
    query: dict[str, Any] = dict(httpx.URL(location).params)
    assert {"code", "state", "domain", "member_id", "scope", "server_domain"} <= set(query)


def test_a_served_portals_token_response_names_the_host_clients_reach(portal: Portal) -> None:
    """settings/oauth/index.md: `domain`, `client_endpoint` — for a loopback-served sandbox, its host:port."""
    with portal.serve() as server:
        tokens = portal.issue_tokens(portal.register_app())
        assert tokens["domain"] == server.url.split("://")[1] and tokens["client_endpoint"].startswith(
            server.url
        )


def test_event_unbind_checks_event_type_and_unbinds_one_users_binding_when_auth_type_is_given(
    portal: Portal,
) -> None:
    """lib/api/event.php eventUnbind: EVENT_TYPE must be online or offline; AUTH_TYPE narrows to that
    user's binding."""
    app = _app_client(portal)
    for user in (0, 2):
        app.call("event.bind", {"EVENT": "ONCRMDEALADD", "HANDLER": "https://h.test/deal", "AUTH_TYPE": user})
    with pytest.raises(BadRequest):
        app.call(
            "event.unbind",
            {"EVENT": "ONCRMDEALADD", "HANDLER": "https://h.test/deal", "EVENT_TYPE": "sometimes"},
        )
    one = app.call(
        "event.unbind", {"EVENT": "ONCRMDEALADD", "HANDLER": "https://h.test/deal", "AUTH_TYPE": 2}
    ).result
    assert one == {"count": 1} and [b["auth_type"] for b in app.call("event.get").result] == ["0"]
    assert app.call("event.unbind", {"EVENT": "ONCRMDEALADD", "HANDLER": "https://h.test/deal"}).result == {
        "count": 1
    }
