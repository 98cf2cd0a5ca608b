"""Finishing a Bitrix24 sign-in (settings/oauth/index.md, step 2): the code for tokens at the OAuth server,
then the portal says who it is; anything else is refused, and the tokens are secrets from the first moment."""

from __future__ import annotations

import json

import httpx
import pytest

from bitrix24_agent_tools.approvals.signin import SignInRefused, sign_in
from bitrix24_agent_tools.masking import mask_text


def _transport(token_status: int = 200, user: object = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/oauth/token"):
            body = {"access_token": "acc3ss-t0ken-value-123", "refresh_token": "r3fresh-t0ken-value-456",
                    "client_endpoint": "https://acme.bitrix24.test/rest/", "member_id": "m1"}  # fmt: skip
            return httpx.Response(
                token_status, json=body if token_status == 200 else {"error": "invalid_grant"}
            )
        assert request.url.path == "/rest/user.current"
        return httpx.Response(200, content=json.dumps({"result": user}).encode())

    return httpx.MockTransport(handle)


async def _go(transport: httpx.MockTransport) -> object:
    return await sign_in(
        "code1",
        oauth_server="https://oauth.test/oauth/token/",
        client_id="app",
        client_secret="s",
        transport=transport,
    )


async def test_a_confirmed_sign_in_names_the_person_and_masks_their_tokens() -> None:
    signed = await _go(_transport(user={"ID": "5", "NAME": "Elena"}))
    assert signed.user_id == "5" and signed.endpoint == "https://acme.bitrix24.test/rest/"  # type: ignore[attr-defined]
    assert "acc3ss-t0ken-value-123" not in mask_text("token acc3ss-t0ken-value-123")


async def test_a_refused_code_or_an_unnamed_person_is_no_sign_in() -> None:
    with pytest.raises(SignInRefused):
        await _go(_transport(token_status=401))
    with pytest.raises(SignInRefused):
        await _go(_transport(user=None))
    with pytest.raises(SignInRefused):
        await _go(_transport(user={"NAME": "no id"}))
