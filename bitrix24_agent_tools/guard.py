"""The guard every tool call passes: allowlist → risk → policy → confirmation → idempotency → call → audit.

It is written as a generator flow (like the client's pipeline) that yields what it needs — a portal call or a
person's decision — so one implementation serves the sync and async toolbox, every framework face and the CLI.
A handler never holds a client: the only way to the portal is through :meth:`Guard.flow`.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from bitrix24_agent_tools.masking import MASK, mask_params, mask_text
from bitrix24_agent_tools.packs.base import RISK_ORDER, Call, CallRefused, Risk, ToolSpec
from bitrix24_agent_tools.risk import CATALOG, AmbiguousCall, CanonicalCall, canonical_call, pack_of
from bitrix24_agent_tools.stores import (
    AuditRow,
    AuditStore,
    IdempotencyStore,
    MemoryAuditStore,
    MemoryIdempotencyStore,
    MemoryPlanStore,
    PlanStore,
    StoredPlan,
)

# --- policy -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """Which risks may run at all. Destructive calls need a policy that allows them *and* a person's yes."""

    name: str
    allow_write: bool = False
    allow_destructive: bool = False
    deny: tuple[str, ...] = ()  # method patterns never allowed
    only: tuple[str, ...] = ()  # when set, only methods matching one of these may run at all
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
        return (
            risk == "read"
            or (risk == "write" and self.allow_write)
            or (risk == "destructive" and self.allow_destructive)
        )


# --- what a person sees and answers
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmationRequest:
    tool: str
    method: str
    params: dict[str, Any]  # masked
    risk: Risk
    tenant: str
    summary: str
    current: dict[str, Any] | None = None
    request_id: str = ""  # stable for the same call: an answer is bound to it

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "method": self.method,
            "params": self.params,
            "risk": self.risk,
            "tenant": self.tenant,
            "summary": self.summary,
            "current": self.current,
            "request_id": self.request_id,
        }


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
        """Accept a Decision, a bool, or a dict like ``{"approve": true}`` / ``{"reject": "why"}`` /
        ``{"edit": {...}}``."""
        if isinstance(value, Decision):
            return value
        if isinstance(value, bool):
            return cls.approve() if value else cls.reject()
        if isinstance(value, Mapping):
            decisions = value.get("decisions")
            if isinstance(decisions, list):  # LangChain v1 HumanInTheLoopMiddleware: {"decisions": [{...}]}
                if len(decisions) != 1:
                    return cls.reject("expected exactly one decision for this request; treated as no")
                return cls.coerce(decisions[0])
            if value.get("type") == "edit" and isinstance(value.get("edited_action"), Mapping):
                args = value["edited_action"].get("args")
                if isinstance(args, Mapping):
                    return cls.edit(dict(args), by=value.get("by"))
                return cls.reject("an edit needs edited_action.args; treated as no")
            if value.get("type") == "reject" and value.get("message"):
                return cls.reject(str(value["message"]), by=value.get("by"))
            if value.get("edit") is not None and isinstance(value["edit"], Mapping):
                return cls.edit(dict(value["edit"]), by=value.get("by"))
            if value.get("type") in ("approve", "accept") or value.get("approve") is True:
                return cls.approve(by=value.get("by"))
            if "reject" in value or value.get("type") == "reject":
                return cls.reject(
                    str(value.get("reject") or value.get("reason") or "rejected by the reviewer")
                )
            if value.get("kind") in ("approve", "reject", "edit", "defer"):
                return cls(
                    value["kind"], str(value.get("reason") or ""), value.get("params"), value.get("by")
                )
        if isinstance(value, str) and value.strip().lower() in ("y", "yes", "approve", "ok", "да"):
            return cls.approve()
        return cls.reject(f"unrecognised answer {str(value)[:40]!r}; treated as no")


Confirmer = Callable[[ConfirmationRequest], "Decision | Awaitable[Decision] | Any"]


# --- the steps a flow yields
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalCall:
    call: Call


@dataclass(frozen=True)
class AskPerson:
    request: ConfirmationRequest
    confirm: Confirmer | None = None  # who answers, when not the guard's own confirmer (a plan's executor)


GuardFlow = Generator[PortalCall | AskPerson, Any, Any]

_GET_FOR: dict[str, tuple[str, str]] = {
    **{
        f"crm.{e}.{v}": (f"crm.{e}.get", "id")
        for e in ("lead", "deal", "contact", "company")
        for v in ("update", "delete")
    },
    "crm.item.update": ("crm.item.get", "id"),
    "crm.item.delete": ("crm.item.get", "id"),
    **{f"tasks.task.{v}": ("tasks.task.get", "taskId") for v in ("update", "complete", "delete")},
}
_TITLE_KEYS = ("title", "name")
_ID_KEYS = ("id", "taskid")
_VERBS = {"add": "Create", "update": "Update", "delete": "Delete", "complete": "Complete", "start": "Start"}
FOLD = 200  # characters of one value shown before it is folded with an explicit "(+N chars)" marker


_CATALOG_LOWER = {pack: frozenset(m.lower() for m in methods) for pack, methods in CATALOG.items()}


def _lenient(method: str, params: Mapping[str, Any]) -> CanonicalCall:
    """The canonical call, or — for showing and keying a call the guard will refuse anyway — its plain
    form."""
    try:
        return canonical_call(method, params)
    except AmbiguousCall:
        return CanonicalCall(str(method).strip().lower(), dict(params))


def batch_commands(params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (method, params) of each command of a batch call, as the portal will read them."""
    try:
        call = canonical_call("batch", params)
    except AmbiguousCall as exc:
        raise CallRefused(str(exc), code="AMBIGUOUS") from None
    return [(c.method, c.params) for c in call.commands]


def canonical_key(tenant: str, method: str, params: Mapping[str, Any]) -> str:
    """An idempotency key for the whole call: the canonical method and every parameter, per tenant."""
    call = _lenient(method, params)
    return f"{call.method}:{call.fingerprint(tenant)}"


def fold(value: Any, limit: int = FOLD) -> str:
    """A value as a person reads it: masked first, then folded with an explicit marker — never cut
    silently."""
    text = (
        value if isinstance(value, str) else json.dumps(mask_params(value), ensure_ascii=False, default=str)
    )
    text = mask_text(" ".join(str(text).split()) if isinstance(value, str) else text)
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit} chars)"


def _ci(mapping: Mapping[str, Any] | None, key: str) -> Any:
    if not mapping:
        return None
    for k, v in mapping.items():
        if str(k).lower() == key.lower():
            return v
    return None


def _describe(method: str, params: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[str]:
    """The lines that show one call whole: what, on which record, and every field and parameter."""
    parts = method.split(".")
    verb = _VERBS.get(parts[-1].lower(), parts[-1])
    noun = parts[-2] if len(parts) >= 2 else method
    entity = _ci(params, "entityTypeId")
    if noun == "item" and entity:
        noun = f"item (type {entity})"
    ident = next((v for k in _ID_KEYS if (v := _ci(params, k)) not in (None, "")), None)
    head = f"{verb} {noun}" + (f" #{fold(ident, 40)}" if ident is not None else "") + f" ({method})"
    title = next((_ci(current, k) for k in _TITLE_KEYS if _ci(current, k)), None)
    if title:
        head += f" '{fold(title, 80)}'"
    lines = [head]
    fields = _ci(params, "fields")
    for key, value in params.items():
        low = str(key).lower()
        if low in _ID_KEYS or low == "entitytypeid" or (low == "fields" and isinstance(fields, Mapping)):
            continue
        lines.append(f"  {key} = {fold(value)}")
    if isinstance(fields, Mapping):
        for key, new in fields.items():
            if current is not None:
                lines.append(f"  {key}: {fold(_ci(current, str(key)), 80)} → {fold(new)}")
            else:
                lines.append(f"  {key} = {fold(new)}")
    return lines


def summarize(method: str, params: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """Everything a write will do, one line per field and per batch command, masked before it is folded."""
    call = _lenient(method, params)
    if call.method != "batch":
        return mask_text("\n".join(_describe(call.method, call.params, current)))
    lines = [f"Batch of {len(call.commands)} command(s){', stops at the first error' if call.halt else ''}:"]
    for command in call.commands:
        sub = _describe(command.method, command.params, None)
        lines.append(f"[{command.key}] {sub[0]}")
        lines.extend("  " + line for line in sub[1:])
    return mask_text("\n".join(lines))


def restore_masked(edited: Any, original: Any) -> Any:
    """An edit made on the masked request, with every still-masked value put back to the real one.

    A person edits what they were shown; where they left a masked value as it was, the original is meant,
    never the mask itself. A mask with no original behind it is refused (it would write ``***`` to the
    portal).
    """
    if isinstance(edited, Mapping):
        orig = original if isinstance(original, Mapping) else {}
        return {
            k: restore_masked(v, _ci(orig, str(k)) if str(k) not in orig else orig[str(k)])
            for k, v in edited.items()
        }
    if isinstance(edited, list):
        orig_list = original if isinstance(original, list) else []
        return [restore_masked(v, orig_list[i] if i < len(orig_list) else None) for i, v in enumerate(edited)]
    if original is not None and edited == mask_params(original):
        return original
    if isinstance(edited, str) and MASK in edited:
        raise CallRefused(
            "the edit contains a masked value (***) that does not match the original; "
            "type the new value in full",
            code="BAD_EDIT",
        )
    return edited


class Guard:
    """Wraps every call a tool makes. No confirm callback → every write is refused, with a message saying
    so."""

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
        inflight_ttl: float = 300.0,
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
        self.idempotency: IdempotencyStore = (
            idempotency if idempotency is not None else MemoryIdempotencyStore()
        )
        self.plans: PlanStore = plans if plans is not None else MemoryPlanStore()
        self.idempotency_ttl = idempotency_ttl
        self.plan_ttl = plan_ttl
        # A claim is taken only after the person said yes and lasts while the call runs: a crash then blocks
        # the same write for this long, not for a day.
        self.inflight_ttl = inflight_ttl
        self.fetch_current = fetch_current
        self.confirm_timeout = confirm_timeout  # seconds a person has to answer; silence is a "no"
        self.clock = clock

    # -- checks ---------------------------------------------------------------------------------------------
    def _denied(self, method: str) -> bool:
        if self.policy.only and not any(
            fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.policy.only
        ):
            return True
        return any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.policy.deny)

    def _allowed(
        self, method: str, spec: ToolSpec, packs: tuple[str, ...], *, in_batch: bool = False
    ) -> bool:
        """Is ``method`` (canonical) reachable through ``spec``? Deny patterns win over everything. A typed
        tool's own calls are held to its methods; a batch command to the catalogs of the tool's pack (generic)
        or packs."""
        if self._denied(method):
            return False
        if any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.allow):
            return True
        if spec.generic:
            return method in _CATALOG_LOWER.get(spec.pack, frozenset())
        if spec.methods and not in_batch:
            return method in {m.lower() for m in spec.methods}
        return any(method in _CATALOG_LOWER.get(p, frozenset()) for p in packs)

    def _risk(self, method: str, params: Mapping[str, Any], base: Risk) -> Risk:
        if any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.policy.destructive):
            return "destructive"
        return base

    def risk_of(self, method: str, params: Mapping[str, Any]) -> Risk:
        """The risk the guard gives a call (the one the client retries on)."""
        try:
            call = canonical_call(method, params)
        except AmbiguousCall:
            return "destructive"
        return self._canonical_risk(call)

    def _canonical_risk(self, call: CanonicalCall) -> Risk:
        if call.method == "batch":
            from bitrix24_agent_tools.risk import classify_one, riskiest

            return riskiest(
                [self._risk(c.method, c.params, classify_one(c.method, c.params)) for c in call.commands]
            )
        return self._risk(call.method, call.params, call.risk)

    def canonical(self, call: Call) -> tuple[Call, CanonicalCall]:
        """The call as the portal will read it; refuses what it could read two ways or what carries
        credentials."""
        if not isinstance(call.params, Mapping):
            raise CallRefused("params must be an object", code="BAD_PARAMS")
        if any(str(k).lower() == "auth" for k in call.params):
            raise CallRefused(
                "params must not carry 'auth'; credentials are added by the client", code="BAD_PARAMS"
            )
        try:
            canon = canonical_call(call.method, call.params)
        except AmbiguousCall as exc:
            raise CallRefused(f"refused, ambiguous request: {exc}", code="AMBIGUOUS") from None
        except RecursionError:
            raise CallRefused("params are nested too deeply", code="BAD_PARAMS") from None
        return replace(call, method=canon.method, params=canon.params), canon

    def check(self, spec: ToolSpec, call: Call, packs: Iterable[str]) -> Risk:
        """Allowlist, risk and policy for one call (each batch command on its own); raises CallRefused."""
        return self._check(spec, call, tuple(packs))[0]

    def _check(self, spec: ToolSpec, call: Call, packs: tuple[str, ...]) -> tuple[Risk, Call]:
        call, canon = self.canonical(call)
        if canon.method == "batch":
            if not self._allowed("batch", spec, packs):
                raise CallRefused("batch is not allowed for this tool", code="NOT_ALLOWED")
            for command in canon.commands:
                if not self._allowed(command.method, spec, packs, in_batch=True):
                    raise CallRefused(
                        _not_allowed(command.method, spec, "batch command "), code="NOT_ALLOWED"
                    )
        elif not self._allowed(canon.method, spec, packs):
            raise CallRefused(_not_allowed(canon.method, spec), code="NOT_ALLOWED")
        risk = self._canonical_risk(canon)
        if not self.policy.permits(risk):
            raise CallRefused(
                f"policy '{self.policy.name}' does not allow {risk} calls ({canon.method})", code="POLICY"
            )
        return risk, replace(call, risk=risk)

    # -- the flow -------------------------------------------------------------------------------------------
    def flow(self, spec: ToolSpec, call: Call, *, tenant: str, packs: Iterable[str]) -> GuardFlow:
        """Check, confirm, make and audit one call; returns the portal's Response. Raises CallRefused."""
        packs = tuple(packs)
        started = self.clock()
        try:
            risk, call = self._check(spec, call, packs)
        except CallRefused as refused:
            self._audit(tenant, spec, call, "?", "refused", "skipped", error=refused.reason)
            raise
        if risk == "read":
            return (yield from self._execute(spec, call, tenant, risk, "read", None, started))
        decision, call, risk = yield from self._ask(spec, call, tenant, risk, packs)
        return (
            yield from self._once(
                spec,
                call,
                tenant,
                risk,
                "edited" if decision.kind == "edit" else "approved",
                decision.by,
                started,
            )
        )

    def _once(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        decision: str,
        by: str | None,
        started: float,
    ) -> GuardFlow:
        """Run an approved write at most once per idempotency key: a repeat gets the stored result."""
        key = call.idempotency_key or canonical_key(tenant, call.method, call.params)
        call = replace(call, idempotency_key=call.idempotency_key or key)
        claim = self.idempotency.begin(tenant, key, self.inflight_ttl)
        if isinstance(claim, dict):
            self._audit(tenant, spec, call, risk, "replayed", "ok", by=by)
            from bitrix24_agent_tools.client import Response

            return Response(claim.get("result"), claim.get("total"), claim.get("next"), None)
        if claim == "inflight":
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="same write already in flight")
            raise CallRefused("the same write is already running; wait for its result", code="IN_FLIGHT")
        try:
            response = yield from self._execute(spec, call, tenant, risk, decision, by, started)
        except BaseException:
            self.idempotency.fail(tenant, key)  # our own claim only
            raise
        self.idempotency.complete(
            tenant,
            key,
            {"result": response.result, "total": response.total, "next": response.next},
            self.idempotency_ttl,
        )
        return response

    def request_for(
        self, spec: ToolSpec, call: Call, tenant: str, risk: Risk, current: Mapping[str, Any] | None
    ) -> ConfirmationRequest:
        return ConfirmationRequest(
            spec.name,
            call.method,
            mask_params(dict(call.params)),
            risk,
            tenant,
            summarize(call.method, call.params, current),
            mask_params(dict(current)) if current else None,
            request_id=canonical_key(tenant, call.method, call.params),
        )

    def _ask(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        packs: tuple[str, ...],
        confirm: Confirmer | None = None,
    ) -> Generator[Any, Any, tuple[Decision, Call, Risk]]:
        current = None
        if self.fetch_current and call.method in _GET_FOR:
            current = dict(call.current) if call.current is not None else (yield from self._current(call))
        request = self.request_for(spec, call, tenant, risk, current)
        if (confirm or self.confirm) is None:
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="no confirmation callback")
            raise CallRefused(
                f"{risk} call refused: no person can confirm it here (configure a confirmer, e.g. "
                "Guard(confirm=...); "
                "on the command line add --confirm-write)",
                code="NO_CONFIRMER",
            )
        answer = yield AskPerson(request, confirm)
        decision = bound_decision(answer, request.request_id)
        if decision.kind == "defer" and confirm is not None:
            decision = Decision.reject(
                "the plan's executor deferred it again; nothing was written", by=decision.by
            )
        if decision.kind == "defer":
            plan = self.plan(spec, call, tenant=tenant, risk=risk, summary=request.summary)
            self._audit(tenant, spec, call, risk, "deferred", "skipped", by=decision.by)
            raise CallRefused(
                f"not run yet: stored as plan {plan.id} for a person to execute "
                f"(b24-agent-tools call --execute-plan {plan.id} --confirm-write)",
                code="DEFERRED",
            )
        if decision.kind == "reject":
            self._audit(
                tenant, spec, call, risk, "rejected", "skipped", by=decision.by, error=decision.reason
            )
            raise CallRefused(
                f"rejected by the reviewer: {decision.reason}"
                if decision.reason
                else "rejected by the reviewer",
                code="REJECTED",
            )
        if decision.kind == "edit" and decision.params is not None:
            try:
                edited = replace(
                    call, params=restore_masked(decision.params, call.params), idempotency_key=None
                )
                risk, call = self._check(spec, edited, packs)  # the edited call passes the whole guard again
            except CallRefused as refused:
                self._audit(
                    tenant,
                    spec,
                    call,
                    risk,
                    "refused",
                    "skipped",
                    by=decision.by,
                    error=f"edit refused: {refused.reason}",
                )
                raise
        return decision, call, risk

    def _current(self, call: Call) -> Generator[Any, Any, dict[str, Any] | None]:
        get_method, key = _GET_FOR[call.method]
        ident = next((v for k in _ID_KEYS if (v := _ci(call.params, k)) not in (None, "")), None)
        if not ident:
            return None
        params: dict[str, Any] = {key: ident}
        entity = _ci(call.params, "entityTypeId")
        if entity is not None:
            params["entityTypeId"] = entity
        try:
            response = yield PortalCall(Call(get_method, params, call.api, risk="read"))
        except Exception:  # the write itself will report a missing record; the request just has no "before"
            return None
        result = response.result
        if isinstance(result, Mapping):
            for wrap in ("item", "task"):
                if isinstance(result.get(wrap), Mapping):
                    return dict(result[wrap])
            return dict(result)
        return None

    def _execute(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        decision: str,
        by: str | None,
        started: float,
    ) -> GuardFlow:
        call = replace(call, risk=risk)
        try:
            response = yield PortalCall(call)
        except Exception as exc:
            self._audit(tenant, spec, call, risk, decision, "error", by=by, error=str(exc), started=started)
            raise
        self._audit(tenant, spec, call, risk, decision, "ok", by=by, started=started)
        return response

    def _audit(
        self,
        tenant: str,
        spec: ToolSpec,
        call: Call,
        risk: str,
        decision: str,
        status: str,
        *,
        by: str | None = None,
        error: str | None = None,
        started: float | None = None,
    ) -> None:
        duration = (self.clock() - started) * 1000 if started is not None else 0.0
        params = dict(call.params) if isinstance(call.params, Mapping) else {"params": str(call.params)[:200]}
        self.audit.record(
            AuditRow(
                tenant,
                spec.name,
                str(call.method),
                risk,
                decision,
                status,
                by,
                error,
                params,
                self.clock(),
                duration,
            )
        )

    # -- plans ----------------------------------------------------------------------------------------------
    def plan(
        self, spec: ToolSpec, call: Call, *, tenant: str, risk: Risk | None = None, summary: str | None = None
    ) -> StoredPlan:
        """Store the exact call for later; ``execute_plan`` runs it once, for the same tenant, before it
        expires."""
        now = self.clock()
        plan = StoredPlan(
            StoredPlan.new_id(),
            tenant,
            spec.name,
            call.method,
            dict(call.params),
            risk or self.risk_of(call.method, call.params),
            summary or summarize(call.method, call.params, None),
            call.api,
            now,
            now + self.plan_ttl,
        )
        self.plans.save(plan)
        return plan

    def plan_flow(
        self,
        plan_id: str,
        *,
        tenant: str,
        specs: Mapping[str, ToolSpec],
        packs: Iterable[str],
        confirm: Confirmer | None = None,
    ) -> GuardFlow:
        """Run a stored plan once, as a fresh call: allowlist, deny patterns and policy are checked again and
        the person running it is shown everything it does and asked (their yes is the confirmation)."""
        plan = self.plans.get(plan_id)
        if plan is None or plan.tenant != tenant:
            self.plans.claim(plan_id, tenant, self.clock())  # raises the store's own "no plan" error
        assert plan is not None
        spec = specs.get(plan.tool)
        if spec is None:
            raise CallRefused(
                f"plan {plan_id} was made by tool {plan.tool}, which is not active here", code="NOT_ALLOWED"
            )
        packs = tuple(packs)
        started = self.clock()
        call = Call(plan.method, plan.params, "v3" if plan.api == "v3" else "v2")
        try:
            risk, call = self._check(spec, call, packs)
        except CallRefused as refused:
            self._audit(
                tenant, spec, call, "?", "refused", "skipped", error=f"plan {plan_id}: {refused.reason}"
            )
            raise
        self.plans.claim(plan_id, tenant, self.clock())  # single use, before anything runs
        if risk == "read":
            return (yield from self._execute(spec, call, tenant, risk, "plan", "plan-executor", started))
        decision, call, risk = yield from self._ask(spec, call, tenant, risk, packs, confirm or self.confirm)
        return (
            yield from self._once(spec, call, tenant, risk, "plan", decision.by or "plan-executor", started)
        )


def _not_allowed(method: str, spec: ToolSpec, what: str = "") -> str:
    pack = pack_of(method)
    if pack:
        where = f"; it is in the {pack} pack (use b24_{pack}_call or activate that pack)"
    else:
        near = difflib.get_close_matches(method.lower(), _ALL_METHODS, n=2, cutoff=0.75)
        hint = f"did you mean {' or '.join(_ALL_METHODS[m] for m in near)}? " if near else ""
        where = f"; no pack lists it ({hint}a user may allow it explicitly with allow=[...])"
    return f"{what}{method} is not allowed for {spec.name}{where}"


_ALL_METHODS = {m.lower(): m for catalog in CATALOG.values() for m in catalog}


def bound_decision(answer: Any, request_id: str) -> Decision:
    """A person's answer, accepted only for the request it names when it names one.

    Answers may be keyed by request id (``{request_id: answer}``) — several writes pending at once each get
    their own — or carry ``request_id``; an answer naming another request is a "no" for this one.
    """
    if isinstance(answer, Mapping) and not isinstance(answer, Decision):
        if request_id in answer:
            return Decision.coerce(answer[request_id])
        named = answer.get("request_id")
        if named is not None and str(named) != request_id:
            return Decision.reject("that answer was for another request; nothing was written")
        decisions = answer.get("decisions")
        if isinstance(decisions, list) and any(
            isinstance(d, Mapping) and d.get("request_id") for d in decisions
        ):
            mine = [d for d in decisions if isinstance(d, Mapping) and str(d.get("request_id")) == request_id]
            return (
                Decision.coerce(mine[0])
                if len(mine) == 1
                else Decision.reject("no answer for this request; nothing was written")
            )
        if any(isinstance(k, str) and re.fullmatch(r"[a-z0-9_.]+:[0-9a-f]{32}", k) for k in answer):
            return Decision.reject("no answer for this request; nothing was written")
    return Decision.coerce(answer)


def risk_at_least(risk: Risk, floor: Risk) -> bool:
    return RISK_ORDER[risk] >= RISK_ORDER[floor]


__all__ = [
    "AskPerson",
    "ConfirmationRequest",
    "Confirmer",
    "Decision",
    "Guard",
    "Policy",
    "PortalCall",
    "bound_decision",
    "summarize",
]
