"""The guard every tool call passes: allowlist → risk → policy → confirmation → idempotency → call → audit.

It is written as a generator flow (like the client's pipeline) that yields what it needs — a portal call or a
person's decision — so one implementation serves the sync and async toolbox, every framework face and the CLI.
A handler never holds a client: the only way to the portal is through :meth:`Guard.flow`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel

from bitrix24_agent_tools.masking import mask_params, mask_text
from bitrix24_agent_tools.packs.base import RISK_ORDER, Call, CallRefused, Risk, ToolSpec, riskiest
from bitrix24_agent_tools.packs.catalog import CATALOG, classify
from bitrix24_agent_tools.stores import (
    AuditRow,
    AuditStore,
    IdempotencyStore,
    MemoryAuditStore,
    MemoryIdempotencyStore,
    MemoryPlanStore,
    Plan,
    PlanStore,
)

# --- policy -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """Which risks may run at all. Destructive calls need a policy that allows them *and* a person's yes."""

    name: str
    allow_write: bool = False
    allow_destructive: bool = False
    deny: tuple[str, ...] = ()  # method patterns never allowed
    destructive: tuple[str, ...] = ()  # method patterns treated as destructive (e.g. a template that deletes)

    @classmethod
    def read_only(cls) -> Policy:
        return cls("read_only")

    @classmethod
    def writer(cls) -> Policy:
        return cls("writer", allow_write=True)

    @classmethod
    def admin(cls) -> Policy:
        return cls("admin", allow_write=True, allow_destructive=True)

    def permits(self, risk: Risk) -> bool:
        return risk == "read" or (risk == "write" and self.allow_write) or (risk == "destructive" and self.allow_destructive)


# --- what a person sees and answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmationRequest:
    tool: str
    method: str
    params: dict[str, Any]  # masked
    risk: Risk
    tenant: str
    summary: str
    current: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "method": self.method, "params": self.params, "risk": self.risk,
                "tenant": self.tenant, "summary": self.summary, "current": self.current}


@dataclass(frozen=True)
class Decision:
    kind: Literal["approve", "reject", "edit", "defer"]
    reason: str = ""
    params: dict[str, Any] | None = None
    by: str | None = None

    @classmethod
    def approve(cls, by: str | None = None) -> Decision:
        return cls("approve", by=by)

    @classmethod
    def reject(cls, reason: str = "rejected by the reviewer", by: str | None = None) -> Decision:
        return cls("reject", reason=reason, by=by)

    @classmethod
    def edit(cls, params: dict[str, Any], by: str | None = None) -> Decision:
        return cls("edit", params=dict(params), by=by)

    @classmethod
    def defer(cls, by: str | None = None) -> Decision:
        return cls("defer", by=by)

    @classmethod
    def coerce(cls, value: Any) -> Decision:
        """Accept a Decision, a bool, or a dict like ``{"approve": true}`` / ``{"reject": "why"}`` / ``{"edit": {...}}``."""
        if isinstance(value, Decision):
            return value
        if isinstance(value, bool):
            return cls.approve() if value else cls.reject()
        if isinstance(value, Mapping):
            if value.get("edit") is not None and isinstance(value["edit"], Mapping):
                return cls.edit(dict(value["edit"]), by=value.get("by"))
            if value.get("type") in ("approve", "accept") or value.get("approve") is True:
                return cls.approve(by=value.get("by"))
            if "reject" in value or value.get("type") == "reject":
                return cls.reject(str(value.get("reject") or value.get("reason") or "rejected by the reviewer"))
            if value.get("kind") in ("approve", "reject", "edit", "defer"):
                return cls(value["kind"], str(value.get("reason") or ""), value.get("params"), value.get("by"))
        if isinstance(value, str) and value.strip().lower() in ("y", "yes", "approve", "ok", "да"):
            return cls.approve()
        return cls.reject(f"unrecognised answer {str(value)[:40]!r}; treated as no")


Confirmer = Callable[[ConfirmationRequest], "Decision | Awaitable[Decision] | Any"]


# --- the steps a flow yields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalCall:
    call: Call


@dataclass(frozen=True)
class AskPerson:
    request: ConfirmationRequest


GuardFlow = Generator[PortalCall | AskPerson, Any, Any]

_GET_FOR: dict[str, tuple[str, str]] = {
    **{f"crm.{e}.{v}": (f"crm.{e}.get", "id") for e in ("lead", "deal", "contact", "company") for v in ("update", "delete")},
    "crm.item.update": ("crm.item.get", "id"),
    "crm.item.delete": ("crm.item.get", "id"),
    **{f"tasks.task.{v}": ("tasks.task.get", "taskId") for v in ("update", "complete", "delete")},
}
_TITLE_KEYS = ("TITLE", "title", "NAME", "name")
_VERBS = {"add": "Create", "update": "Update", "delete": "Delete", "complete": "Complete", "start": "Start"}


def batch_commands(params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (method, params) of each command of a batch call, whatever shape ``cmd`` came in."""
    cmd = params.get("cmd")
    items = cmd.values() if isinstance(cmd, Mapping) else cmd if isinstance(cmd, list) else None
    if items is None:
        raise CallRefused("batch needs 'cmd': a map or list of 'method?query' strings", code="BAD_BATCH")
    out = []
    for item in items:
        if isinstance(item, (list, tuple)) and item:
            out.append((str(item[0]), dict(item[1]) if len(item) > 1 and isinstance(item[1], Mapping) else {}))
        else:
            method, _, query = str(item).partition("?")
            out.append((method.strip(), dict(parse_qsl(query))))
    return out


def canonical_key(tenant: str, method: str, params: Mapping[str, Any]) -> str:
    """An idempotency key derived from the call: an origin/external id when there is one, else the params."""
    fields = params.get("fields") if isinstance(params.get("fields"), Mapping) else {}
    for name in ("ORIGIN_ID", "originId", "XML_ID", "xmlId", "EXTERNAL_ID"):
        if fields and fields.get(name):
            return f"{method.lower()}:{name}:{fields[name]}"
    blob = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
    return f"{method.lower()}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def summarize(method: str, params: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """One line a person can judge: "Update deal #42 'Big order': STAGE_ID NEW → WON, OPPORTUNITY 1000 → 5000"."""
    parts = method.split(".")
    verb = _VERBS.get(parts[-1].lower(), parts[-1])
    noun = parts[-2] if len(parts) >= 2 else method
    if noun == "item" and params.get("entityTypeId"):
        noun = f"item (type {params['entityTypeId']})"
    ident = params.get("id") or params.get("ID") or params.get("taskId")
    text = f"{verb} {noun}" + (f" #{ident}" if ident else "")
    title = next((current[k] for k in _TITLE_KEYS if current and current.get(k)), None)
    if title:
        text += f" '{str(title)[:60]}'"
    fields = params.get("fields") if isinstance(params.get("fields"), Mapping) else None
    if fields:
        changes = []
        for key, new in list(fields.items())[:8]:
            old = current.get(key) if current else None
            if old is None and current:
                old = next((v for k, v in current.items() if k.lower() == str(key).lower()), None)
            shown_new = str(new)[:60]
            changes.append(f"{key} {str(old)[:40]} → {shown_new}" if current is not None else f"{key}={shown_new}")
        text += ": " + ", ".join(changes)
    elif method.lower() != "batch" and params and not ident:
        text += ": " + ", ".join(f"{k}={str(v)[:40]}" for k, v in list(params.items())[:5])
    return mask_text(text)


class Guard:
    """Wraps every call a tool makes. No confirm callback → every write is refused, with a message saying so."""

    def __init__(
        self,
        policy: Policy | None = None,
        confirm: Confirmer | None = None,
        *,
        allow: Iterable[str] = (),
        audit: AuditStore | None = None,
        idempotency: IdempotencyStore | str | None = None,
        plans: PlanStore | str | None = None,
        idempotency_ttl: float = 24 * 3600,
        plan_ttl: float = 24 * 3600,
        fetch_current: bool = True,
        confirm_timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy or Policy.writer()
        self.confirm = confirm
        self.allow = tuple(allow)
        self.audit: AuditStore = audit if audit is not None else MemoryAuditStore()
        if isinstance(idempotency, str) or isinstance(plans, str):  # redis://… URLs (extra `redis`)
            from bitrix24_agent_tools import redis_backends

            if isinstance(idempotency, str):
                idempotency = redis_backends.RedisIdempotencyStore.from_url(idempotency)
            if isinstance(plans, str):
                plans = redis_backends.RedisPlanStore.from_url(plans)
        self.idempotency: IdempotencyStore = idempotency if idempotency is not None else MemoryIdempotencyStore()
        self.plans: PlanStore = plans if plans is not None else MemoryPlanStore()
        self.idempotency_ttl = idempotency_ttl
        self.plan_ttl = plan_ttl
        self.fetch_current = fetch_current
        self.confirm_timeout = confirm_timeout  # seconds a person has to answer; silence is a "no"
        self.clock = clock

    # -- checks ---------------------------------------------------------------------------------------------
    def _allowed(self, method: str, spec: ToolSpec, packs: Iterable[str]) -> bool:
        lower = method.lower()
        if any(fnmatch.fnmatchcase(lower, p.lower()) for p in self.policy.deny):
            return False
        if any(fnmatch.fnmatchcase(lower, p.lower()) for p in self.allow):
            return True
        if not spec.generic and spec.methods:
            return lower in {m.lower() for m in spec.methods}
        if spec.generic:
            return lower in {m.lower() for m in CATALOG.get(spec.pack, {})}
        return any(lower in {m.lower() for m in CATALOG.get(p, {})} for p in packs)

    def risk_of(self, method: str, params: Mapping[str, Any]) -> Risk:
        if any(fnmatch.fnmatchcase(method.lower(), p.lower()) for p in self.policy.destructive):
            return "destructive"
        return classify(method, params)

    def check(self, spec: ToolSpec, call: Call, packs: Iterable[str]) -> Risk:
        """Allowlist, risk and policy for one call (each batch command on its own); raises CallRefused."""
        packs = tuple(packs)
        if not isinstance(call.params, Mapping):
            raise CallRefused("params must be an object", code="BAD_PARAMS")
        if any(str(k).lower() == "auth" for k in call.params):
            raise CallRefused("params must not carry 'auth'; credentials are added by the client", code="BAD_PARAMS")
        if call.method.lower() == "batch":
            if not (spec.generic and self._allowed("batch", spec, packs)) and not self._allowed("batch", spec, packs):
                raise CallRefused("batch is not allowed for this tool", code="NOT_ALLOWED")
            risks: list[Risk] = []
            for method, params in batch_commands(call.params):
                if method.lower() == "batch":
                    raise CallRefused("a batch inside a batch is refused", code="NESTED_BATCH")
                if not self._allowed_any(method, spec, packs):
                    raise CallRefused(f"batch command {method} is not in the allowlist of the active packs", code="NOT_ALLOWED")
                risks.append(self.risk_of(method, params))
            risk = riskiest(risks)
        else:
            if not self._allowed(call.method, spec, packs):
                raise CallRefused(f"{call.method} is not allowed for {spec.name} (pack allowlist)", code="NOT_ALLOWED")
            risk = self.risk_of(call.method, call.params)
        if not self.policy.permits(risk):
            raise CallRefused(f"policy '{self.policy.name}' does not allow {risk} calls ({call.method})", code="POLICY")
        return risk

    def _allowed_any(self, method: str, spec: ToolSpec, packs: tuple[str, ...]) -> bool:
        lower = method.lower()
        if any(fnmatch.fnmatchcase(lower, p.lower()) for p in self.policy.deny):
            return False
        if any(fnmatch.fnmatchcase(lower, p.lower()) for p in self.allow):
            return True
        scope = (spec.pack,) if spec.generic else packs
        return any(lower in {m.lower() for m in CATALOG.get(p, {})} for p in scope)

    # -- the flow -------------------------------------------------------------------------------------------
    def flow(self, spec: ToolSpec, call: Call, *, tenant: str, packs: Iterable[str]) -> GuardFlow:
        """Check, confirm, make and audit one call; returns the portal's Response. Raises CallRefused."""
        packs = tuple(packs)
        started = self.clock()
        try:
            risk = self.check(spec, call, packs)
        except CallRefused as refused:
            self._audit(tenant, spec, call, "?", "refused", "skipped", error=refused.reason)
            raise
        if risk == "read":
            return (yield from self._execute(spec, call, tenant, risk, "read", None, started))

        key = call.idempotency_key or canonical_key(tenant, call.method, call.params)
        claim = self.idempotency.begin(tenant, key, self.idempotency_ttl)
        if isinstance(claim, dict):
            self._audit(tenant, spec, call, risk, "replayed", "ok")
            from bitrix24_agent_tools.client import Response

            return Response(claim.get("result"), claim.get("total"), claim.get("next"), None)
        if claim == "inflight":
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="same write already in flight")
            raise CallRefused("the same write is already running; wait for its result", code="IN_FLIGHT")
        try:
            decision, call = yield from self._ask(spec, call, tenant, risk, packs)
            if decision.kind == "edit":
                risk = self.check(spec, call, packs)  # the edited call passes the whole guard again
                new_key = call.idempotency_key or canonical_key(tenant, call.method, call.params)
                if new_key != key:
                    self.idempotency.fail(tenant, key)
                    key = new_key
                    claim = self.idempotency.begin(tenant, key, self.idempotency_ttl)
                    if claim != "new":
                        raise CallRefused("an identical write already ran or is running", code="IN_FLIGHT")
            response = yield from self._execute(spec, call, tenant, risk, "edited" if decision.kind == "edit" else "approved",
                                                decision.by, started)
        except BaseException:
            self.idempotency.fail(tenant, key)
            raise
        self.idempotency.complete(tenant, key, {"result": response.result, "total": response.total, "next": response.next},
                                  self.idempotency_ttl)
        return response

    def _ask(self, spec: ToolSpec, call: Call, tenant: str, risk: Risk, packs: tuple[str, ...]) -> Generator[Any, Any, tuple[Decision, Call]]:
        current = None
        if self.fetch_current and call.method.lower() in _GET_FOR:
            current = yield from self._current(call)
        request = ConfirmationRequest(spec.name, call.method, mask_params(dict(call.params)), risk, tenant,
                                      summarize(call.method, call.params, current), mask_params(current) if current else None)
        if self.confirm is None:
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="no confirmation callback")
            raise CallRefused(
                f"{risk} call refused: no confirmation callback is configured (pass confirm=... to the Guard)",
                code="NO_CONFIRMER",
            )
        decision = Decision.coerce((yield AskPerson(request)))
        if decision.kind == "defer":
            plan = self.plan(spec, call, tenant=tenant, risk=risk, summary=request.summary)
            self._audit(tenant, spec, call, risk, "deferred", "skipped", by=decision.by)
            raise CallRefused(
                f"not run yet: stored as plan {plan.id} for a person to execute "
                f"(b24-agent-tools call --execute-plan {plan.id} --confirm-write)", code="DEFERRED")
        if decision.kind == "reject":
            self._audit(tenant, spec, call, risk, "rejected", "skipped", by=decision.by, error=decision.reason)
            raise CallRefused(f"rejected by the reviewer: {decision.reason}" if decision.reason else "rejected by the reviewer",
                              code="REJECTED")
        if decision.kind == "edit" and decision.params is not None:
            call = replace(call, params=decision.params)
        return decision, call

    def _current(self, call: Call) -> Generator[Any, Any, dict[str, Any] | None]:
        get_method, key = _GET_FOR[call.method.lower()]
        ident = call.params.get("id") or call.params.get("ID") or call.params.get("taskId")
        if not ident:
            return None
        params: dict[str, Any] = {key: ident}
        if "entityTypeId" in call.params:
            params["entityTypeId"] = call.params["entityTypeId"]
        try:
            response = yield PortalCall(Call(get_method, params, call.api))
        except Exception:  # the write itself will report a missing record; the request just has no "before"
            return None
        result = response.result
        if isinstance(result, Mapping):
            for wrap in ("item", "task"):
                if isinstance(result.get(wrap), Mapping):
                    return dict(result[wrap])
            return dict(result)
        return None

    def _execute(self, spec: ToolSpec, call: Call, tenant: str, risk: Risk, decision: str, by: str | None,
                 started: float) -> GuardFlow:
        try:
            response = yield PortalCall(call)
        except Exception as exc:
            self._audit(tenant, spec, call, risk, decision, "error", by=by, error=str(exc), started=started)
            raise
        self._audit(tenant, spec, call, risk, decision, "ok", by=by, started=started)
        return response

    def _audit(self, tenant: str, spec: ToolSpec, call: Call, risk: str, decision: str, status: str, *,
               by: str | None = None, error: str | None = None, started: float | None = None) -> None:
        duration = (self.clock() - started) * 1000 if started is not None else 0.0
        self.audit.record(AuditRow(tenant, spec.name, call.method, risk, decision, status, by, error,
                                   dict(call.params), self.clock(), duration))

    # -- plans ----------------------------------------------------------------------------------------------
    def plan(self, spec: ToolSpec, call: Call, *, tenant: str, risk: Risk | None = None, summary: str | None = None) -> Plan:
        """Store the exact call for later; ``execute_plan`` runs it once, for the same tenant, before it expires."""
        now = self.clock()
        plan = Plan(Plan.new_id(), tenant, spec.name, call.method, dict(call.params),
                    risk or self.risk_of(call.method, call.params), summary or summarize(call.method, call.params, None),
                    call.api, now, now + self.plan_ttl)
        self.plans.save(plan)
        return plan

    def plan_flow(self, plan_id: str, *, tenant: str) -> GuardFlow:
        """Run a stored plan once; the person running it is the confirmation. Policy still applies."""
        plan = self.plans.claim(plan_id, tenant, self.clock())
        if not self.policy.permits(plan.risk):  # type: ignore[arg-type]
            raise CallRefused(f"policy '{self.policy.name}' does not allow {plan.risk} calls", code="POLICY")
        call = Call(plan.method, plan.params, plan.api)  # type: ignore[arg-type]
        spec = ToolSpec(plan.tool, "", _NoArgs, plan.risk, (plan.method,), _no_handler, "plan")  # type: ignore[arg-type]
        return (yield from self._execute(spec, call, tenant, plan.risk, "plan", "plan-executor", self.clock()))  # type: ignore[arg-type]



class _NoArgs(BaseModel):
    pass


def _no_handler(ctx: Any, args: Any) -> Any:  # pragma: no cover - plans never run a handler
    raise NotImplementedError


def risk_at_least(risk: Risk, floor: Risk) -> bool:
    return RISK_ORDER[risk] >= RISK_ORDER[floor]


__all__ = ["AskPerson", "ConfirmationRequest", "Confirmer", "Decision", "Guard", "Policy", "PortalCall", "summarize"]
