"""Who may call the portal: inbound webhooks (a user and scopes each), local applications with their OAuth
tokens (settings/oauth/index.md: access tokens that expire, single-use refresh tokens, authorization codes),
and who is signed in at /oauth/authorize/. Every secret made here is shared through hooks.share_secrets, so
hosts mask it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.hooks import share_secrets
from bitrix24_sandbox.types import Caller, RequestRecord, SandboxApp

__all__ = ["ALL_SCOPES", "Credentials"]

ALL_SCOPES = frozenset(
    {
        "crm",
        "task",
        "user",
        "department",
        "im",
        "imbot",
        "event",
        "basic",
        "disk",
        "bizproc",
        "sonet_group",
        "log",
        "telephony",
        "sale",
        "catalog",
        "landing",
        "calendar",
        "placement",
        "messageservice",
        "imopenlines",
        "mailservice",
        "lists",
        "booking",
        "timeman",
        "entity",
        "biconnector",
        "ai_admin",
        "userconsent",
        "sign.b2e",
        "documentgenerator",
    }
)


class Credentials:
    """The portal's credentials and the checks on them."""

    def __init__(self, admin_code: str, clock: Callable[[], float]) -> None:
        self.clock = clock
        share_secrets(admin_code)  # the sandbox's secrets are masked in every repr and log, like real ones
        self.admin_code = admin_code
        self.webhooks: dict[str, tuple[int, frozenset[str]]] = {admin_code: (1, ALL_SCOPES)}
        self.apps: dict[str, SandboxApp] = {}
        self.tokens: dict[str, tuple[str, int, float]] = {}  # access token → (client_id, user, expires_at)
        self.refresh_tokens: dict[str, tuple[str, int]] = {}  # refresh token → (client_id, user)
        self.auth_codes: dict[str, tuple[str, int, float]] = {}  # code → (client_id, user, expires_at)
        self.signed_in: int | None = 1  # who is signed in at /oauth/authorize/ (None: the form asks)

    def add_webhook(self, user_id: int, scopes: set[str] | frozenset[str] | None) -> str:
        code = f"sbx{secrets.token_hex(8)}"
        share_secrets(code)
        self.webhooks[code] = (user_id, frozenset(scopes) if scopes is not None else ALL_SCOPES)
        return code

    def register_app(self, scopes: set[str] | None, access_lifetime: float, redirect_uri: str) -> SandboxApp:
        app = SandboxApp(
            client_id=f"local.{secrets.token_hex(6)}",
            client_secret=secrets.token_hex(16),
            application_token=secrets.token_hex(16),
            scopes=frozenset(scopes) if scopes else ALL_SCOPES,
            access_lifetime=access_lifetime,
            redirect_uri=redirect_uri,
        )
        share_secrets(app.client_secret, app.application_token)
        self.apps[app.client_id] = app
        return app

    def issue(self, app: SandboxApp, user_id: int) -> tuple[str, str]:
        """A fresh (access, refresh) pair for ``app`` acting as ``user_id``."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        share_secrets(access, refresh)
        self.tokens[access] = (app.client_id, user_id, self.clock() + app.access_lifetime)
        self.refresh_tokens[refresh] = (app.client_id, user_id)
        return access, refresh

    def expire_all(self) -> None:
        self.tokens = {k: (c, u, self.clock() - 1) for k, (c, u, _) in self.tokens.items()}

    def new_auth_code(self, app: SandboxApp, user_id: int) -> str:
        """An authorization code for the redirect, valid 30 seconds, once."""
        code = secrets.token_hex(12)
        self.auth_codes[code] = (app.client_id, user_id, self.clock() + 30)
        return code

    def take_auth_code(self, code: str, app: SandboxApp) -> int | None:
        """The user an unexpired code of ``app`` was given for (the code is used up), else None."""
        entry = self.auth_codes.pop(code, None)
        if entry is None or entry[2] < self.clock() or entry[0] != app.client_id:
            return None
        return entry[1]

    def take_refresh_token(self, token: str, app: SandboxApp) -> int | None:
        """The user a refresh token of ``app`` belongs to (one use only), else None."""
        entry = self.refresh_tokens.pop(token, None)
        if entry is None or entry[0] != app.client_id:
            return None
        return entry[1]

    def authenticate(
        self, segs: list[str], params: dict[str, Any], record: RequestRecord, users: dict[Any, Any]
    ) -> Caller:
        """The caller of a request: a webhook from the path (/rest/<user>/<code>/...), else the ``auth``
        parameter's access token (taken out of ``params``)."""
        if len(segs) >= 3 and segs[0].isdigit():
            user_id, code = int(segs[0]), segs[1]
            known = self.webhooks.get(code)
            record.auth_kind = "webhook"
            if known is None or known[0] != user_id:
                raise ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)
            user = users.get(user_id, {})
            return Caller("webhook", user_id, bool(user.get("IS_ADMIN")), known[1], None, code)
        token = params.pop("auth", None)
        record.auth_kind = "oauth"
        if not token:
            raise ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        entry = self.tokens.get(str(token))
        if entry is None:
            raise ApiError("invalid_token", "Unable to authorize user", 401)
        client_id, user_id, expires_at = entry
        if expires_at <= self.clock():
            raise ApiError("expired_token", "The access token provided has expired.", 401)
        app = self.apps[client_id]
        user = users.get(user_id, {})
        return Caller("oauth", user_id, bool(user.get("IS_ADMIN")), app.scopes, client_id, str(token))
