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

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from bitrix24_agent_tools.approvals import ApprovalService
    from bitrix24_agent_tools.guard import Confirmer, Guard, Policy

_given_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("b24_env", default=None)


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(p).strip() for p in value if str(p).strip())
    return tuple(p.strip() for p in str(value or "").split(",") if p.strip())


class _GivenEnv(EnvSettingsSource):
    """The environment a caller passed to :meth:`Settings.from_env` (tests, several configurations in one
    process), instead of ``os.environ``."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _given_env.get()
        return (
            {k.lower(): v for k, v in (given or {}).items()}
            if given is not None
            else super()._load_env_vars()
        )


class Settings(BaseSettings):
    """The ``B24_*`` configuration, read and validated once (pydantic-settings); see the module doc."""

    model_config = SettingsConfigDict(env_prefix="B24_", frozen=True, extra="ignore", populate_by_name=True)

    packs: Annotated[tuple[str, ...], NoDecode] = ("core",)
    method_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    require_plan: bool = False
    audit_file: str | None = None
    rate: float | None = Field(None, validation_alias=AliasChoices("B24_RATE_LIMITER_RATE", "rate"))
    burst: int | None = Field(None, validation_alias=AliasChoices("B24_RATE_LIMITER_BURST", "burst"))
    redis_url: str | None = None
    approvers: Annotated[tuple[str, ...], NoDecode] = ()
    approval_store: str | None = None
    approval_url: str | None = None
    approval_ttl: float = 900.0

    @field_validator("packs", "method_allowlist", "approvers", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> tuple[str, ...]:
        return _list(value)

    @field_validator("packs", mode="after")
    @classmethod
    def _some_pack(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return value or ("core",)

    @field_validator(
        "audit_file", "redis_url", "approval_store", "approval_url", "rate", "burst", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: Any,
        env_settings: Any,
        dotenv_settings: Any,
        file_secret_settings: Any,
    ) -> tuple[Any, ...]:
        return (init_settings, _GivenEnv(settings_cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings ``env`` (default ``os.environ``) describes; a value that does not parse raises
        ConfigError naming the variable and what it holds."""
        token = _given_env.set(dict(env) if env is not None else None)
        try:
            return cls()
        except ValidationError as exc:
            from bitrix24_agent_tools.client.errors import ConfigError

            error = exc.errors()[0]
            field = str(error["loc"][0]) if error.get("loc") else "?"
            name = {"rate": "B24_RATE_LIMITER_RATE", "burst": "B24_RATE_LIMITER_BURST"}.get(
                field, field if field.startswith("B24_") else f"B24_{field.upper()}"
            )
            kind = {"float_parsing": "float", "int_parsing": "int"}.get(str(error.get("type")), "")
            expected = f" ({kind} expected)" if kind else f": {error.get('msg')}"
            raise ConfigError(f"{name}={error.get('input')!r} is not a number{expected}" if kind
                              else f"{name}={error.get('input')!r}{expected}") from None  # fmt: skip
        finally:
            _given_env.reset(token)

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
        plan = RatePlan.custom(self.rate or 2.0, self.burst or 50) if (self.rate or self.burst) else None
        if plan is not None:
            options["plan"] = plan
        if self.redis_url:  # the settings build the shared objects; the client takes them as given
            from bitrix24_agent_tools.stores.redis import RedisLimiter

            options["limiter"] = RedisLimiter.from_url(self.redis_url, plan=plan or RatePlan.standard())
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
            from bitrix24_agent_tools.guard.flow import _shared_store

            if "idempotency" not in kwargs:
                kwargs["idempotency"] = _shared_store(self.redis_url, "idempotency")
            if "plans" not in kwargs:
                kwargs["plans"] = _shared_store(self.redis_url, "plans")
        return Guard(policy, confirm, **kwargs)
