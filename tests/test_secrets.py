"""Secrets never leak: a known webhook code, tokens, client secret and application token are planted and every
output path — errors, reprs, logs, tool outputs, audit rows, CLI output, MCP results — is scanned for them."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24, SqliteTokenStore, Webhook
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox

CODE = "planted0webhook0code0x9"


def _all_text(*things: Any) -> str:
    return "\n".join(str(t) + repr(t) for t in things)


def test_nothing_shown_anywhere_contains_a_secret(
    caplog: pytest.LogCaptureFixture, tmp_path: Any, capsys: Any
) -> None:
    portal = Portal(seed=1, webhook_code=CODE)
    app = portal.register_app()
    tokens = portal.install_app(app)
    secrets = [
        CODE,
        tokens["access_token"],
        tokens["refresh_token"],
        app.client_secret,
        app.application_token,
    ]
    caplog.set_level(logging.DEBUG)
    shown: list[Any] = []
    webhook = Webhook(portal.webhook_url)
    client = Bitrix24(webhook, transport=portal.transport())
    shown += [webhook, client, client.auth]
    oauth = portal.app_auth(app, tokens, token_store=SqliteTokenStore(tmp_path / "t.sqlite3"))
    oclient = Bitrix24(oauth, transport=portal.transport())
    shown += [oauth, oauth.tokens, oclient, app, portal.requests]
    # errors of every kind, with the secret quoted in what the portal or the caller said
    portal.faults.fail_next(1, "INTERNAL_SERVER_ERROR", 500)
    for call in (
        lambda: client.call("crm.deal.get", {"id": 99999}),
        lambda: client.call("crm.deal.list", {"filter": {"TITLE": CODE}, "auth": CODE}),
        lambda: Webhook(f"https://x/rest/abc/{CODE}/"),
        lambda: oclient.call("crm.deal.get", {"id": 424242}),
    ):
        try:
            call()
        except Exception as exc:
            shown += [exc, getattr(exc, "hint", ""), getattr(exc, "description", "")]
    portal.expire_all_tokens()
    oclient.call("profile")  # a refresh: new tokens must be masked too
    secrets += [oauth.tokens.access_token, oauth.tokens.refresh_token]
    box = Toolbox(client, guard=Guard(Policy.writer(), AutoConfirmer()))
    outputs = [
        box.run(
            "b24_task_create", {"title": f"see {portal.webhook_url}", "description": tokens["access_token"]}
        ),
        box.run("b24_crm_list", {"entity": "deal", "filter": {"TITLE": app.client_secret}}),
        box.run("b24_core_call", {"method": "crm.deal.list", "params": {"auth": CODE}}),
        box.run("b24_crm_get", {"entity": "deal", "id": CODE}),
    ]
    shown += [(o.content, o.artifact) for o in outputs if o.is_error] + [o.content for o in outputs]
    shown += box.guard.audit.rows()
    logging.getLogger("bitrix24_agent_tools.client.client").warning("calling %s", portal.webhook_url)
    text = _all_text(*shown) + caplog.text + capsys.readouterr().out
    for secret in secrets:
        where = text.find(secret)
        assert where < 0, (
            f"a secret leaked ({secret[:4]}…) near: "
            f"{text[max(0, where - 120) : where].replace(secret, '<S>')!r}"
        )
    assert "***" in text  # masking happened, rather than nothing being shown
