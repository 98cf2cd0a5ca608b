"""A remote MCP server for a team: each person signs in with their own Bitrix24 account, and every call runs
with that person's access token and rights.

The server is an OAuth 2.1 protected resource built on the MCP SDK's own auth support (protected resource
metadata per RFC 9728, ``WWW-Authenticate`` with ``resource_metadata`` on 401, PKCE, dynamic client
registration, revocation, tokens bound to this resource per RFC 8707). Its authorization server signs the
person in through Bitrix24 OAuth on their portal (settings/oauth/index.md: ``/oauth/authorize/`` on the
portal, the code exchanged at the OAuth server, ``user.current`` for who they are) and keeps their Bitrix24
tokens in a shared token store whose refresh is single-flight across processes.

Everything a second process needs lives in the shared state (PostgreSQL for a deployment; sqlite or memory for
one machine): clients, sign-ins, codes, tokens, the people's Bitrix24 tokens, approvals, plans, idempotency
records and the audit trail — keyed by portal and person (``tenant`` = ``<portal>#<user id>``). HTTP is served
stateless, so any process answers any request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from bitrix24_agent_tools.masking import get_logger, register_secret

log = get_logger(__name__)
TIERS = ("read", "write", "destructive")
DEFAULT_OAUTH_SERVER = "https://oauth.bitrix.info/oauth/token/"
CALLBACK = "/oauth/bitrix24/callback"
# The portal's answers that mean a person's tokens are gone for good (after the client's own refresh):
# invalid_token, a refused refresh (invalid_grant), NO_AUTH_FOUND.
_ENDED = frozenset({"invalid_token", "invalid_grant", "NO_AUTH_FOUND", "expired_token", "invalid_client"})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lower_tier(*tiers: str) -> str:
    """The most restrictive of the given tiers (an unknown tier reads as ``read``: fail closed)."""
    return min((t if t in TIERS else "read" for t in tiers), key=TIERS.index)


@dataclass(frozen=True)
class TeamSettings:
    """What a team deployment needs.

    ``public_url`` is this server's public base URL (the issuer; the MCP endpoint is ``{public_url}/mcp``);
    ``portal_url`` the Bitrix24 portal people sign in to; ``client_id``/``client_secret`` the Bitrix24
    application's (its redirect URL: ``{public_url}/oauth/bitrix24/callback``); ``state`` where shared state
    lives (``postgresql://…`` for a deployment, a sqlite directory, None in memory). ``tier`` is the
    deployment's risk tier (read | write | destructive), ``tiers`` per person (Bitrix24 user ID → tier, never
    above the deployment's)."""

    public_url: str
    portal_url: str
    client_id: str
    client_secret: str
    oauth_server: str = DEFAULT_OAUTH_SERVER
    state: str | None = None
    tier: str = "write"
    tiers: Mapping[str, str] = field(default_factory=dict)
    packs: tuple[str, ...] = ("core",)
    access_ttl: int = 3600
    refresh_ttl: int = 30 * 24 * 3600
    approval_ttl: float = 900.0
    session_secret: str | None = None
    transport: Any = None  # an httpx transport to the portal and the OAuth server (tests)

    @property
    def resource(self) -> str:
        return f"{self.public_url.rstrip('/')}/mcp"

    @property
    def portal(self) -> str:
        return urlsplit(self.portal_url).netloc or self.portal_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> TeamSettings | None:
        """From ``B24_PUBLIC_URL``, ``B24_DOMAIN``, ``B24_CLIENT_ID``, ``B24_CLIENT_SECRET`` (+
        ``B24_OAUTH_SERVER``, ``B24_STATE_URL``, ``B24_MCP_TIER``, ``B24_MCP_TIERS`` =
        ``5:read,7:destructive``, ``B24_PACKS``, ``B24_APPROVAL_SECRET``); None when any of the first four
        is missing."""
        import os

        env = os.environ if env is None else env
        needed = ("B24_PUBLIC_URL", "B24_DOMAIN", "B24_CLIENT_ID", "B24_CLIENT_SECRET")
        if not all(env.get(k) for k in needed) and not overrides:
            return None
        domain = str(overrides.pop("portal_url", None) or env.get("B24_DOMAIN") or "")
        tiers = dict(
            pair.split(":", 1) for pair in str(env.get("B24_MCP_TIERS") or "").split(",") if ":" in pair
        )
        values: dict[str, Any] = {
            "public_url": env.get("B24_PUBLIC_URL", ""),
            "portal_url": domain if domain.startswith(("http://", "https://")) else f"https://{domain}",
            "client_id": env.get("B24_CLIENT_ID", ""),
            "client_secret": env.get("B24_CLIENT_SECRET", ""),
            "oauth_server": env.get("B24_OAUTH_SERVER") or DEFAULT_OAUTH_SERVER,
            "state": env.get("B24_STATE_URL") or None,
            "tier": env.get("B24_MCP_TIER") or "write",
            "tiers": {k.strip(): v.strip() for k, v in tiers.items()},
            "packs": tuple(p.strip() for p in str(env.get("B24_PACKS") or "core").split(",") if p.strip()),
            "session_secret": env.get("B24_APPROVAL_SECRET") or None,
        }
        values.update(overrides)
        return cls(**values)


class SharedState:
    """The stores a deployment shares, opened from one URL (PostgreSQL; or Redis with AOF, the audit then kept
    per process), one sqlite directory, or memory."""

    def __init__(self, state: str | None) -> None:
        from bitrix24_agent_tools.client.auth import MemoryTokenStore, SqliteTokenStore
        from bitrix24_agent_tools.stores import (
            MemoryApprovalStore,
            MemoryAuditStore,
            MemoryIdempotencyStore,
            MemoryPlanStore,
            MemoryRecordStore,
            SqliteApprovalStore,
            SqliteAuditStore,
            SqliteIdempotencyStore,
            SqlitePlanStore,
            SqliteRecordStore,
        )

        self.url = state
        if state and state.startswith(("postgres://", "postgresql://")):
            from bitrix24_agent_tools.stores import postgres as pg

            self.records: Any = pg.PostgresRecordStore(state)
            self.tokens: Any = pg.PostgresTokenStore(state)
            self.approvals: Any = pg.PostgresApprovalStore(state)
            self.plans: Any = pg.PostgresPlanStore(state)
            self.idempotency: Any = pg.PostgresIdempotencyStore(state)
            self.audit: Any = pg.PostgresAuditStore(state)
        elif state and state.startswith(("redis://", "rediss://", "unix://")):
            from bitrix24_agent_tools.stores import redis as rd
            from bitrix24_agent_tools.stores import state_path

            self.records = rd.RedisRecordStore.from_url(state)
            self.tokens = rd.RedisTokenStore.from_url(state)
            self.approvals = rd.RedisApprovalStore.from_url(state)
            self.plans = rd.RedisPlanStore.from_url(state)
            self.idempotency = rd.RedisIdempotencyStore.from_url(state)
            # No audit table on Redis: each process keeps its audit rows in its own sqlite file.
            self.audit = SqliteAuditStore(state_path("audit.sqlite3"))
        elif state:
            from pathlib import Path

            root = Path(state)
            self.records = SqliteRecordStore(root / "records.sqlite3")
            self.tokens = SqliteTokenStore(root / "tokens.sqlite3")
            self.approvals = SqliteApprovalStore(root / "approvals.sqlite3")
            self.plans = SqlitePlanStore(root / "plans.sqlite3")
            self.idempotency = SqliteIdempotencyStore(root / "idempotency.sqlite3")
            self.audit = SqliteAuditStore(root / "audit.sqlite3")
        else:
            self.records = MemoryRecordStore()
            self.tokens = MemoryTokenStore()
            self.approvals = MemoryApprovalStore()
            self.plans = MemoryPlanStore()
            self.idempotency = MemoryIdempotencyStore()
            self.audit = MemoryAuditStore()


class Bitrix24AuthProvider:
    """The MCP SDK's authorization-server provider, signing people in through Bitrix24 OAuth.

    Our codes and tokens are random, stored only as SHA-256 digests, bound to the client, the PKCE challenge,
    the resource and the person (``subject`` = ``<member_id>:<user id>``); a code and a refresh token are used
    once. A person's grant ends when they revoke a token, when their Bitrix24 refresh is refused (the app was
    uninstalled or their access withdrawn), or by :meth:`revoke_person`.
    """

    def __init__(self, settings: TeamSettings, state: SharedState) -> None:
        self.settings = settings
        self.records = state.records
        self.tokens = state.tokens
        register_secret(settings.client_secret)

    # -- clients (dynamic registration) ---------------------------------------------------------------------
    async def get_client(self, client_id: str) -> Any:
        from mcp.shared.auth import OAuthClientInformationFull

        found = self.records.get("client", client_id)
        return OAuthClientInformationFull.model_validate(found) if found else None

    async def register_client(self, client_info: Any) -> None:
        self.records.put(
            "client", str(client_info.client_id), client_info.model_dump(mode="json"), 10 * 365 * 86400
        )

    # -- sign-in ---------------------------------------------------------------------------------------------
    async def authorize(self, client: Any, params: Any) -> str:
        """Send the person to their portal's sign-in (the portal returns them to our callback)."""
        pending = secrets.token_urlsafe(24)
        self.records.put(
            "pending",
            pending,
            {
                "client_id": client.client_id,
                "redirect_uri": str(params.redirect_uri),
                "explicit": params.redirect_uri_provided_explicitly,
                "code_challenge": params.code_challenge,
                "state": params.state,
                "scopes": list(params.scopes or []),
                "resource": params.resource,
            },
            600,
        )
        query = urlencode({"client_id": self.settings.client_id, "state": pending})
        return f"{self.settings.portal_url.rstrip('/')}/oauth/authorize/?{query}"

    async def signed_in(self, state: str, code: str) -> str | None:
        """The portal's redirect back: the Bitrix24 code for the person's tokens, who they are, and our code
        for the MCP client. Returns where to send the browser (the client's redirect URI), None if unknown."""
        from mcp.server.auth.provider import construct_redirect_uri

        from bitrix24_agent_tools.approvals.signin import SignInRefused, sign_in
        from bitrix24_agent_tools.client.auth import Tokens

        pending = self.records.take("pending", state)
        if pending is None:
            return None
        s = self.settings
        try:
            signed = await sign_in(
                code, oauth_server=s.oauth_server, client_id=s.client_id, client_secret=s.client_secret,
                transport=s.transport,
            )  # fmt: skip
        except SignInRefused as exc:
            raise PermissionError(str(exc)) from None
        tokens, endpoint = signed.tokens, signed.endpoint
        access, refresh = str(tokens["access_token"]), str(tokens.get("refresh_token") or "")
        if urlsplit(endpoint).netloc != s.portal:  # a sign-in on another portal is not one of ours
            raise PermissionError("signed in on another portal")
        user = signed.user_id
        member = str(tokens.get("member_id") or "")
        subject = f"{member}:{user}"
        key = "|".join([s.portal, s.client_id, user])
        self.tokens.save(
            key,
            Tokens(access, refresh, time.time() + float(tokens.get("expires_in") or 3600), s.portal, member,
                   endpoint),
        )  # fmt: skip
        self.records.put(
            "person",
            subject,
            {"portal": s.portal, "member_id": member, "user_id": user, "client_endpoint": endpoint,
             "admin": bool(signed.user.get("ADMIN"))},
            s.refresh_ttl,
        )  # fmt: skip
        ours = secrets.token_urlsafe(32)
        self.records.put(
            "code", _hash(ours), {**pending, "subject": subject, "expires_at": time.time() + 300}, 300
        )
        return construct_redirect_uri(pending["redirect_uri"], code=ours, state=pending["state"])

    # -- codes and tokens ------------------------------------------------------------------------------------
    async def load_authorization_code(self, client: Any, authorization_code: str) -> Any:
        from mcp.server.auth.provider import AuthorizationCode

        found = self.records.get("code", _hash(authorization_code))
        if found is None or found["client_id"] != client.client_id:
            return None
        return AuthorizationCode(
            code=authorization_code,
            scopes=found["scopes"],
            expires_at=found["expires_at"],
            client_id=found["client_id"],
            code_challenge=found["code_challenge"],
            redirect_uri=found["redirect_uri"],
            redirect_uri_provided_explicitly=found["explicit"],
            resource=found["resource"],
            subject=found["subject"],
        )

    async def exchange_authorization_code(self, client: Any, authorization_code: Any) -> Any:
        from mcp.server.auth.provider import TokenError

        if self.records.take("code", _hash(authorization_code.code)) is None:  # used once
            raise TokenError("invalid_grant", "authorization code already used or expired")
        return self._issue(
            client.client_id,
            authorization_code.scopes,
            authorization_code.resource,
            authorization_code.subject,
        )

    def _issue(self, client_id: str, scopes: list[str], resource: str | None, subject: str | None) -> Any:
        from mcp.shared.auth import OAuthToken

        s = self.settings
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = int(time.time())
        common = {"client_id": client_id, "scopes": list(scopes), "resource": resource, "subject": subject}
        self.records.put("access", _hash(access), {**common, "expires_at": now + s.access_ttl,
                                                   "refresh": _hash(refresh)}, s.access_ttl)  # fmt: skip
        self.records.put("refresh", _hash(refresh), {**common, "expires_at": now + s.refresh_ttl,
                                                     "access": _hash(access)}, s.refresh_ttl)  # fmt: skip
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=s.access_ttl,
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )

    async def load_refresh_token(self, client: Any, refresh_token: str) -> Any:
        from mcp.server.auth.provider import RefreshToken

        found = self.records.get("refresh", _hash(refresh_token))
        if found is None or found["client_id"] != client.client_id:
            return None
        return RefreshToken(
            token=refresh_token,
            client_id=found["client_id"],
            scopes=found["scopes"],
            expires_at=found["expires_at"],
            resource=found["resource"],
            subject=found["subject"],
        )

    async def exchange_refresh_token(self, client: Any, refresh_token: Any, scopes: list[str]) -> Any:
        from mcp.server.auth.provider import TokenError

        found = self.records.take("refresh", _hash(refresh_token.token))  # rotated: the old one is gone
        if found is None or self.records.get("person", str(found["subject"])) is None:
            raise TokenError("invalid_grant", "refresh token used, expired or its grant revoked")
        self.records.delete("access", str(found.get("access")))
        return self._issue(client.client_id, scopes or found["scopes"], found["resource"], found["subject"])

    async def load_access_token(self, token: str) -> Any:
        from mcp.server.auth.provider import AccessToken

        found = self.records.get("access", _hash(token))
        if found is None or self.records.get("person", str(found["subject"])) is None:
            return None  # unknown, expired, or the person's grant ended
        return AccessToken(
            token=token,
            client_id=found["client_id"],
            scopes=found["scopes"],
            expires_at=found["expires_at"],
            resource=found["resource"],
            subject=found["subject"],
        )

    async def revoke_token(self, token: Any) -> None:
        """Revoking either token of a pair ends both (RFC 7009 lets a server revoke the grant's others)."""
        digest = _hash(token.token)
        for kind, other in (("access", "refresh"), ("refresh", "access")):
            found = self.records.take(kind, digest)
            if found is not None and found.get(other):
                self.records.delete(other, str(found[other]))

    async def exchange_identity_assertion(self, client: Any, params: Any) -> Any:
        from mcp.server.auth.provider import TokenError

        raise TokenError("unsupported_grant_type", "identity assertions are not accepted here")

    def revoke_person(self, subject: str) -> None:
        """End a person's grant: every token of theirs stops working at its next use."""
        self.records.delete("person", subject)
        self.records.delete_where("access", "subject", subject)
        self.records.delete_where("refresh", "subject", subject)

    def revoke_portal(self, member_id: str) -> int:
        """The application was uninstalled from a portal (ONAPPUNINSTALL): end every grant on it."""
        return int(self.records.delete_where("person", "member_id", member_id))


@dataclass
class _Person:
    subject: str
    portal: str
    member_id: str
    user_id: str
    client_endpoint: str
    app: Any = None


class TeamMCP:
    """The team server: one MCP face whose every call runs as the signed-in person (see the module doc)."""

    def __init__(self, settings: TeamSettings) -> None:
        from bitrix24_agent_tools.approvals import ApprovalService
        from bitrix24_agent_tools.integrations.mcp import _Server, _version

        self.settings = settings
        self.state = SharedState(settings.state)
        self.provider = Bitrix24AuthProvider(settings, self.state)
        self.approvals = ApprovalService(
            self.state.approvals,
            approvers=lambda request: (
                request.tenant.rsplit("#", 1)[-1],
            ),  # the person answers for their own writes
            ttl=settings.approval_ttl,
            web_url=settings.public_url.rstrip("/"),
        )
        self._people: dict[str, _Person] = {}
        self.server = _Server(
            "bitrix24-agent-tools",
            version=_version(),
            title="Bitrix24 agent tools (team)",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    # -- who is calling --------------------------------------------------------------------------------------
    def tier_of(self, user_id: str) -> str:
        return lower_tier(self.settings.tier, self.settings.tiers.get(user_id, self.settings.tier))

    def person(self, subject: str) -> _Person | None:
        """The signed-in person's own MCP face (their token, their rights, their tier), built once per process
        from the shared state."""
        record = self.state.records.get("person", subject)
        if record is None:
            self._people.pop(subject, None)
            return None
        cached = self._people.get(subject)
        if cached is not None:
            return cached
        person = _Person(subject, record["portal"], record["member_id"], str(record["user_id"]),
                         record["client_endpoint"])  # fmt: skip
        person.app = self._app_for(person)
        self._people[subject] = person
        return person

    def _app_for(self, person: _Person) -> Any:
        from bitrix24_agent_tools.client import AsyncBitrix24
        from bitrix24_agent_tools.client.auth import OAuth
        from bitrix24_agent_tools.guard import Guard, Policy
        from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP, ElicitationConfirmer
        from bitrix24_agent_tools.toolbox import MAX_WAIT

        s = self.settings
        stored = self.state.tokens.load("|".join([s.portal, s.client_id, person.user_id]))
        if stored is None:
            raise PermissionError("no Bitrix24 tokens for this person; sign in again")
        scheme = urlsplit(person.client_endpoint).scheme or "https"
        auth = OAuth(
            f"{scheme}://{s.portal}" if scheme != "https" else s.portal,
            stored.access_token,
            stored.refresh_token,
            s.client_id,
            s.client_secret,
            token_store=self.state.tokens,
            oauth_server=s.oauth_server,
            member_id=person.member_id,
            client_endpoint=person.client_endpoint,
            expires_at=stored.expires_at,
            user_id=person.user_id,
        )
        tier = self.tier_of(person.user_id)
        policy = {"read": Policy.read_only, "write": Policy.writer, "destructive": Policy.admin}[tier]()
        guard = Guard(
            replace(policy, name=f"{policy.name} (tier {tier})"),
            ElicitationConfirmer(self.approvals),
            audit=self.state.audit,
            idempotency=self.state.idempotency,
            plans=self.state.plans,
        )
        app = Bitrix24MCP(
            aclient=AsyncBitrix24(auth, transport=s.transport, max_wait=MAX_WAIT),
            packs=s.packs,
            guard=guard,
            approvals=self.approvals,
        )
        app.toolbox.tenant = f"{s.portal}#{person.user_id}"
        app.toolbox.context = replace(app.toolbox.context, tenant=app.toolbox.tenant)
        app.after_call = lambda out: self._grant_check(person, out)
        if tier == "read":  # the tools a person may not use are not offered at all
            app.toolbox.specs = [spec for spec in app.toolbox.specs if spec.risk == "read"]
            app.toolbox._by_name = {spec.name: spec for spec in app.toolbox.specs}
            app.approvals = None
        return app

    def _grant_check(self, person: _Person, out: Any) -> Any:
        """The portal refused the person's token (after the client's own refresh): the app was uninstalled or
        their access withdrawn. Their grant ends here; the next request is unauthorized."""
        artifact = out.artifact if isinstance(out.artifact, Mapping) else {}
        if out.is_error and str(artifact.get("error") or "") in _ENDED:
            log.warning("the portal refused a person's Bitrix24 token; their grant ends")
            self.provider.revoke_person(person.subject)
            self._people.pop(person.subject, None)
            return replace(out, content=f"{out.content}. Your Bitrix24 sign-in has ended: sign in again")
        return out

    def _caller(self) -> _Person | None:
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        if token is None or not token.subject:
            return None
        return self.person(token.subject)

    # -- MCP ----------------------------------------------------------------------------------------------
    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        import mcp.types as types

        person = self._caller()
        return types.ListToolsResult(tools=person.app.tools() if person else [])

    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        import mcp.types as types

        person = self._caller()
        if person is None:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text="sign in again: your grant has ended")],
                is_error=True,
            )
        return await person.app._call_tool(ctx, params)

    # -- HTTP -----------------------------------------------------------------------------------------------
    def asgi_app(self, host: str = "127.0.0.1") -> Any:
        """The whole server: MCP at ``/mcp`` (a protected resource), the OAuth endpoints, the Bitrix24
        callback and the approval pages."""
        from mcp.server.auth.provider import ProviderTokenVerifier
        from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
        from mcp.server.transport_security import TransportSecuritySettings
        from pydantic import AnyHttpUrl
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, RedirectResponse
        from starlette.routing import Route

        from bitrix24_agent_tools.approvals.web import ApprovalPages

        s = self.settings
        pages = ApprovalPages(
            self.approvals,
            portal_url=s.portal_url,
            client_id=s.client_id,
            client_secret=s.client_secret,
            oauth_server=s.oauth_server,
            secret=s.session_secret,
            transport=s.transport,
        )

        async def callback(request: Request) -> Any:
            state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
            if "." in state:  # the approval pages' own signed sign-in
                return await pages._callback(request)
            try:
                target = await self.provider.signed_in(state, code)
            except (PermissionError, KeyError, TypeError, ValueError) as exc:
                log.warning("sign-in refused: %s", exc)
                return HTMLResponse("<h1>Sign-in refused</h1>", status_code=403)
            if target is None:
                return HTMLResponse("<h1>Sign-in expired</h1><p>Start again from your client.</p>", 400)
            return RedirectResponse(target, status_code=302)

        page_app = pages.asgi_app()

        async def approvals(request: Request) -> Any:
            return await page_app(request.scope, request.receive, request._send)

        public = urlsplit(s.public_url)
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[public.netloc, f"{host}:*", "127.0.0.1:*", "localhost:*"],
            allowed_origins=[
                f"{public.scheme}://{public.netloc}",
                "http://127.0.0.1:*",
                "http://localhost:*",
            ],
        )
        return self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            host=host,
            transport_security=security,
            auth=AuthSettings(
                issuer_url=AnyHttpUrl(s.public_url.rstrip("/")),
                resource_server_url=AnyHttpUrl(s.resource),
                validate_token_resource=True,
                client_registration_options=ClientRegistrationOptions(enabled=True),
                revocation_options=RevocationOptions(enabled=True),
            ),
            auth_server_provider=self.provider,
            token_verifier=ProviderTokenVerifier(self.provider),
            custom_starlette_routes=[
                Route(CALLBACK, callback, methods=["GET"]),
                Route("/approvals/{rest:path}", approvals, methods=["GET", "POST"]),
            ],
        )
