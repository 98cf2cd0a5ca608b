"""One configuration root: the ``B24_*`` environment read in one place, and the one factory that builds a
guard.

Every face and the CLI build their guard here, so a variable means the same everywhere (design.md
"Configuration"). Explicit arguments always win over the environment.

=========================  =============================================================================
``B24_PACKS``              packs a toolkit offers (comma-separated; default ``core``)
``B24_METHOD_ALLOWLIST``   only methods matching these patterns may run at all (comma-separated, ``*``)
``B24_REQUIRE_PLAN``       ``1``: no write runs now; each is stored as a plan a person executes
``B24_AUDIT_FILE``         audit rows to this sqlite file (default: in memory)
``B24_RATE_LIMITER_RATE``  requests per second the client allows itself (with ``…_BURST``)
``B24_RATE_LIMITER_BURST`` the bucket size that goes with it
``B24_REDIS_URL``          shared limiter, token store, idempotency and plan stores
``B24_APPROVERS``          Bitrix24 user IDs who may approve writes (comma-separated): every write is then
                           asked through the approval service (Bitrix24 chat, the web page, MCP)
``B24_APPROVAL_STORE``     where requests and answers live: a sqlite path, ``postgresql://…`` or
                           ``redis://…`` (default: a sqlite file in the user data directory)
``B24_APPROVAL_URL``       the public base URL of the approval pages (``…/approvals/<id>``)
``B24_APPROVAL_TTL``       seconds a person has to answer (default 900)
=========================  =============================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bitrix24_agent_tools.approvals import ApprovalService
    from bitrix24_agent_tools.guard import Confirmer, Guard, Policy


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "y", "on")


def _number(name: str, value: str | None, kind: type) -> None:
    """A numeric variable that does not parse is named in the error, with what it holds."""
    if value in (None, ""):
        return
    try:
        kind(value)
    except ValueError:
        from bitrix24_agent_tools.client.errors import ConfigError

        raise ConfigError(f"{name}={value!r} is not a number ({kind.__name__} expected)") from None


@dataclass(frozen=True)
class Settings:
    packs: tuple[str, ...] = ("core",)
    method_allowlist: tuple[str, ...] = ()
    require_plan: bool = False
    audit_file: str | None = None
    rate: float | None = None
    burst: int | None = None
    redis_url: str | None = None
    approvers: tuple[str, ...] = ()
    approval_store: str | None = None
    approval_url: str | None = None
    approval_ttl: float = 900.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        rate, burst = env.get("B24_RATE_LIMITER_RATE"), env.get("B24_RATE_LIMITER_BURST")
        _number("B24_RATE_LIMITER_RATE", rate, float)
        _number("B24_RATE_LIMITER_BURST", burst, int)
        ttl = env.get("B24_APPROVAL_TTL")
        _number("B24_APPROVAL_TTL", ttl, float)
        return cls(
            packs=_list(env.get("B24_PACKS")) or ("core",),
            method_allowlist=_list(env.get("B24_METHOD_ALLOWLIST")),
            require_plan=_truthy(env.get("B24_REQUIRE_PLAN")),
            audit_file=env.get("B24_AUDIT_FILE") or None,
            rate=float(rate) if rate else None,
            burst=int(burst) if burst else None,
            redis_url=env.get("B24_REDIS_URL") or None,
            approvers=_list(env.get("B24_APPROVERS")),
            approval_store=env.get("B24_APPROVAL_STORE") or None,
            approval_url=env.get("B24_APPROVAL_URL") or None,
            approval_ttl=float(ttl) if ttl else 900.0,
        )

    def approvals(self) -> ApprovalService | None:
        """The approval service these settings describe (None without ``B24_APPROVERS``)."""
        if not self.approvers:
            return None
        from bitrix24_agent_tools.approvals import ApprovalService
        from bitrix24_agent_tools.stores import state_path

        return ApprovalService(
            self.approval_store or state_path("approvals.sqlite3"),
            approvers=self.approvers,
            ttl=self.approval_ttl,
            web_url=self.approval_url,
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Bitrix24(...)`` / ``AsyncBitrix24(...)``."""
        from bitrix24_agent_tools.client.limits import RatePlan

        options: dict[str, Any] = {}
        if self.rate is not None or self.burst is not None:
            options["plan"] = RatePlan.custom(self.rate or 2.0, self.burst or 50)
        if self.redis_url:
            options["limiter"] = self.redis_url
        return options

    def guard(self, confirm: Confirmer | None = None, policy: Policy | None = None, **kwargs: Any) -> Guard:
        """The guard these settings describe; ``confirm``/``policy``/``kwargs`` as given win. With no
        ``confirm`` and ``B24_APPROVERS`` set, writes wait for an approver's answer through the service."""
        from dataclasses import replace

        from bitrix24_agent_tools.confirmers import DeferredConfirmer
        from bitrix24_agent_tools.guard import Guard, Policy
        from bitrix24_agent_tools.stores import SqliteAuditStore

        policy = policy or Policy.writer()
        if self.method_allowlist:
            policy = replace(policy, only=(*policy.only, *self.method_allowlist))
        if self.require_plan:
            confirm = DeferredConfirmer()
        elif confirm is None and self.approvers:
            service = self.approvals()
            confirm = service.confirmer() if service is not None else None
        if self.audit_file and "audit" not in kwargs:
            kwargs["audit"] = SqliteAuditStore(self.audit_file)
        if self.redis_url:
            kwargs.setdefault("idempotency", self.redis_url)
            kwargs.setdefault("plans", self.redis_url)
        return Guard(policy, confirm, **kwargs)
