"""Small value types of the sandbox portal: who is calling, registered apps, the request log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Caller:
    kind: Literal["webhook", "oauth"]
    user_id: int
    is_admin: bool
    scopes: frozenset[str]
    app_id: str | None = None
    credential: str = ""


@dataclass
class SandboxApp:
    client_id: str
    client_secret: str
    application_token: str
    scopes: frozenset[str]
    access_lifetime: float = 3600.0
    redirect_uri: str = ""  # the application's return address (settings/oauth/index.md: from its settings)

    def __repr__(self) -> str:
        return f"SandboxApp(client_id={self.client_id!r}, scopes={sorted(self.scopes)!r})"


@dataclass
class RequestRecord:
    method: str
    api: str
    auth_kind: str
    status: int = 200
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    encoding: str = "json"
    path: str = ""

    def __repr__(self) -> str:
        from bitrix24_sandbox.hooks import mask

        return mask(
            f"RequestRecord(method={self.method!r}, api={self.api!r}, auth_kind={self.auth_kind!r}, "
            f"status={self.status}, error={self.error!r}, params={self.params!r}, at={self.at})"
        )
