"""How a client proves who it is: incoming webhooks and OAuth 2.0 apps, token stores, URL building
(protocol.md §1, §8)."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from bitrix24_agent_tools._sqlite import open_sqlite
from bitrix24_agent_tools.client.errors import (
    ConfigError,
    InvalidResponse,
    ReauthorizationRequired,
    error_from,
)
from bitrix24_agent_tools.masking import mask_text, register_secret, register_secrets

DEFAULT_OAUTH_SERVER = "https://oauth.bitrix.info/oauth/token/"

_WEBHOOK_RE = re.compile(r"^(https?)://([^/\s]+)/rest/(?:api/)?(\d+)/([^/\s]+)/?(?:[^/\s]*)?$")


def _redact_url(url: str) -> str:
    """A URL we could not parse, with everything after ``/rest/`` hidden: any part of it may be the code."""
    head, sep, _ = url.partition("/rest/")
    return mask_text(head[:80]) + (sep + "***" if sep else ("" if len(url) <= 12 else "…"))


class Webhook:
    """An incoming webhook: ``https://portal/rest/<user_id>/<code>/``. The code is a secret."""

    kind = "webhook"

    def __init__(self, url: str) -> None:
        if not isinstance(url, str):
            raise ConfigError("webhook URL must be a string like https://portal.bitrix24.com/rest/1/<code>/")
        match = _WEBHOOK_RE.match(url.strip())
        if not match:
            raise ConfigError(
                f"malformed webhook URL {_redact_url(url)!r}: expected "
                "https://<portal>/rest/<user_id>/<code>/"
            )
        scheme, host, user_id, code = match.groups()
        if len(code) < 6:
            raise ConfigError("malformed webhook URL: the webhook code is too short to be real")
        register_secret(code)
        self.scheme = scheme
        self.portal = host
        self.user_id = int(user_id)
        self._code = code

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.portal}/rest/{self.user_id}/{self._code}/"

    def url(self, method: str, api: str) -> str:
        if api == "v3":
            return f"{self.scheme}://{self.portal}/rest/api/{self.user_id}/{self._code}/{method}"
        return f"{self.base_url}{method}"

    def __repr__(self) -> str:
        return f"Webhook('{self.scheme}://{self.portal}/rest/{self.user_id}/***/')"


@dataclass(frozen=True)
class Tokens:
    """One tenant's OAuth tokens. ``expires_at`` is a wall-clock timestamp (seconds)."""

    access_token: str
    refresh_token: str
    expires_at: float = 0.0
    domain: str | None = None
    member_id: str | None = None
    client_endpoint: str | None = None

    def __repr__(self) -> str:
        return (
            f"Tokens(access_token='***', refresh_token='***', expires_at={self.expires_at}, "
            f"domain={self.domain!r})"
        )

    @classmethod
    def from_response(cls, data: dict[str, Any], *, now: float | None = None) -> Tokens:
        """Tokens from an OAuth token-server answer (protocol.md §8)."""
        try:
            access, refresh = str(data["access_token"]), str(data["refresh_token"])
        except (KeyError, TypeError) as exc:
            raise InvalidResponse(
                "INVALID_RESPONSE", "token response without access_token/refresh_token"
            ) from exc
        register_secrets([access, refresh])
        endpoint = data.get("client_endpoint")
        return cls(
            access_token=access,
            refresh_token=refresh,
            expires_at=(now if now is not None else time.time()) + float(data.get("expires_in") or 3600),
            domain=data.get("domain"),
            member_id=data.get("member_id"),
            client_endpoint=str(endpoint) if endpoint else None,
        )


def stored_tokens(raw: str | bytes) -> Tokens:
    """Tokens as a store keeps them (JSON), registered as secrets the moment they are read back."""
    tokens = Tokens(**json.loads(raw))
    register_secrets([tokens.access_token, tokens.refresh_token])
    return tokens


@runtime_checkable
class TokenStore(Protocol):
    """Where a tenant's tokens live between runs and between processes."""

    def load(self, tenant: str) -> Tokens | None: ...

    def save(self, tenant: str, tokens: Tokens) -> None: ...

    def delete(self, tenant: str) -> None: ...


class MemoryTokenStore:
    """Tokens in this process only."""

    def __init__(self) -> None:
        self._data: dict[str, Tokens] = {}
        self._lock = threading.Lock()

    def load(self, tenant: str) -> Tokens | None:
        with self._lock:
            return self._data.get(tenant)

    def save(self, tenant: str, tokens: Tokens) -> None:
        with self._lock:
            self._data[tenant] = tokens

    def delete(self, tenant: str) -> None:
        with self._lock:
            self._data.pop(tenant, None)


class SqliteTokenStore:
    """Tokens in a sqlite file, so a restart (or another process on this machine) reuses them."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS tokens (tenant TEXT PRIMARY KEY, data TEXT NOT NULL)")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a connection of its own, closed after (sqlite3's ``with`` only commits)."""
        db = open_sqlite(self.path, autocommit=False)
        try:
            with db:
                yield db
        finally:
            db.close()

    def load(self, tenant: str) -> Tokens | None:
        with self._connect() as db:
            row = db.execute("SELECT data FROM tokens WHERE tenant = ?", (tenant,)).fetchone()
        return stored_tokens(row[0]) if row is not None else None

    def save(self, tenant: str, tokens: Tokens) -> None:
        data = json.dumps(tokens.__dict__)
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO tokens (tenant, data) VALUES (?, ?)", (tenant, data))

    def delete(self, tenant: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM tokens WHERE tenant = ?", (tenant,))

    @contextlib.contextmanager
    def refresh_lock(self, tenant: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold the store's refresh lock across processes (an exclusive ``flock`` on ``<path>.lock``), so one
        process refreshes and the others reload what it saved. The kernel drops the lock when its holder
        dies, so a crash never wedges a refresh. Where ``flock`` does not exist (Windows) it is a no-op."""
        try:
            import fcntl
        except ImportError:  # UNVERIFIED platforms: single flight stays per process
            yield
            return
        import time

        with open(self.path + ".lock", "a+b") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"token refresh lock of {tenant} held for over {timeout:.0f}s"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class OAuth:
    """An installed OAuth 2.0 application acting on one portal (``tenant`` = its domain)."""

    kind = "oauth"

    def __init__(
        self,
        domain: str,
        access_token: str,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        *,
        token_store: TokenStore | str | None = None,
        oauth_server: str = DEFAULT_OAUTH_SERVER,
        member_id: str | None = None,
        client_endpoint: str | None = None,
        expires_at: float = 0.0,
        user_id: str | int | None = None,
    ) -> None:
        if not domain or "/" in domain.strip("/").split("://")[-1]:
            raise ConfigError("OAuth domain must be a host name like portal.bitrix24.com")
        register_secrets([access_token, refresh_token, client_secret])
        self.portal = domain.split("://")[-1].strip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.oauth_server = oauth_server
        self.store: TokenStore = _resolve_store(token_store)
        self._lock = threading.Lock()
        # Tokens belong to one application (and, when given, one user) on one portal: a second app or user on
        # the same portal must never pick up the first one's tokens from a shared store.
        self.store_key = "|".join(
            [self.portal, str(client_id), *([str(user_id)] if user_id is not None else [])]
        )
        stored = self.store.load(self.store_key)
        if stored is None:
            stored = Tokens(
                access_token=access_token,
                refresh_token=refresh_token,
                expires_at=expires_at,
                domain=self.portal,
                member_id=member_id,
                client_endpoint=client_endpoint,
            )
            self.store.save(self.store_key, stored)
        self._tokens = stored

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    @property
    def access_token(self) -> str:
        return self._tokens.access_token

    def reload(self) -> Tokens:
        """Pick up tokens another process may have refreshed meanwhile."""
        stored = self.store.load(self.store_key)
        if stored is not None:
            self._tokens = stored
        return self._tokens

    def url(self, method: str, api: str) -> str:
        endpoint = self._tokens.client_endpoint or f"https://{self.portal}/rest/"
        if not endpoint.endswith("/"):
            endpoint += "/"
        if api == "v3":
            return f"{endpoint}api/{method}"
        return f"{endpoint}{method}"

    def refresh_request(self) -> tuple[str, dict[str, str]]:
        """The token-server request that trades the refresh token for new tokens (protocol.md §8)."""
        return self.oauth_server, {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._tokens.refresh_token,
        }

    def accept_refresh(self, status: int, body: bytes, *, now: float | None = None) -> Tokens:
        """Parse the token server's answer; persist the new tokens *before* anyone retries with them."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InvalidResponse(
                "INVALID_RESPONSE", f"token server answered HTTP {status} with non-JSON"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidResponse("INVALID_RESPONSE", "token server answered with a non-object")
        if "error" in data:
            code = str(data.get("error"))
            err = error_from(code, str(data.get("error_description") or ""), status, "oauth/token")
            if code in ("invalid_grant", "expired_token", "invalid_token", "NO_AUTH_FOUND"):
                raise ReauthorizationRequired(
                    "invalid_grant",
                    "the refresh token was rejected; reinstall the application or re-authorize it "
                    f"(token server said {code})",
                    status,
                    "oauth/token",
                )
            raise err
        fresh = Tokens.from_response(data, now=now)
        fresh = replace(
            fresh,
            domain=fresh.domain or self.portal,
            member_id=fresh.member_id or self._tokens.member_id,
            client_endpoint=fresh.client_endpoint or self._tokens.client_endpoint,
        )
        self.store.save(self.store_key, fresh)
        self._tokens = fresh
        return fresh

    def __repr__(self) -> str:
        return f"OAuth(domain={self.portal!r}, client_id={self.client_id!r}, tokens='***')"


def _resolve_store(store: TokenStore | str | None) -> TokenStore:
    if store is None:
        return MemoryTokenStore()
    if isinstance(store, str):
        if store.startswith(("redis://", "rediss://", "unix://")):
            from bitrix24_agent_tools import redis_backends  # optional extra: only imported when asked for

            return redis_backends.RedisTokenStore.from_url(store)
        if store.startswith(("postgres://", "postgresql://")):
            from bitrix24_agent_tools.stores.postgres import PostgresTokenStore  # optional extra

            return PostgresTokenStore(store)
        return SqliteTokenStore(store)
    return store


Auth = Webhook | OAuth


def portal_of_url(url: str) -> str:
    return urlsplit(url).netloc
