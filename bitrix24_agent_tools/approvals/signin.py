"""A person's sign-in through Bitrix24 OAuth, finished on our side (settings/oauth/index.md, step 2): the
code the portal sent back is exchanged at the OAuth server for the person's tokens, and the portal itself
says who signed in (``user.current`` on ``client_endpoint``). Used by the approval pages and the team MCP
server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bitrix24_agent_tools.masking import register_secret


class SignInRefused(Exception):
    """The OAuth server or the portal did not confirm the sign-in."""


@dataclass(frozen=True)
class SignedIn:
    tokens: dict[str, Any]  # the OAuth server's answer (access_token, refresh_token, member_id, …)
    user: dict[str, Any]  # user.current's result
    endpoint: str  # client_endpoint: the portal's REST address for this person

    @property
    def user_id(self) -> str:
        return str(self.user["ID"])


async def sign_in(
    code: str, *, oauth_server: str, client_id: str, client_secret: str, transport: Any = None
) -> SignedIn:
    """Exchange ``code`` (lives 30 s) and ask the portal who it belongs to; SignInRefused otherwise. The
    tokens are registered as secrets before anything else can print them."""
    import httpx

    try:
        async with httpx.AsyncClient(transport=transport, timeout=15) as http:
            answer = await http.get(
                oauth_server,
                params={"grant_type": "authorization_code", "client_id": client_id,
                        "client_secret": client_secret, "code": code},
            )  # fmt: skip
            tokens = answer.json() if answer.status_code == 200 else {}
            access = str(tokens.get("access_token") or "")
            register_secret(access)
            register_secret(str(tokens.get("refresh_token") or ""))
            endpoint = str(tokens.get("client_endpoint") or "")
            if not access or not endpoint:
                raise SignInRefused("the OAuth server did not sign the person in")
            me = (await http.post(endpoint + "user.current", data={"auth": access})).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SignInRefused(f"sign-in failed: {type(exc).__name__}") from None
    user = me.get("result") if isinstance(me, dict) else None
    if not isinstance(user, dict) or not user.get("ID"):
        raise SignInRefused("the portal did not say who signed in")
    return SignedIn(dict(tokens), dict(user), endpoint)
