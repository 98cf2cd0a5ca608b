"""The guard every tool call passes: allowlist → contract → risk → policy → the person → idempotency → call →
audit.

It is written as a generator flow (like the client's pipeline) that yields what it needs — a portal call or a
person's decision — so one implementation serves the sync and async toolbox, every framework face and the CLI.
A handler never holds a client: the only way to the portal is through :meth:`Guard.flow`.
"""

from __future__ import annotations

import difflib
import fnmatch
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from bitrix24_agent_tools import tracing
from bitrix24_agent_tools.contracts import contract_for
from bitrix24_agent_tools.guard.answers import ConfirmationRequest, Confirmer, Decision, bound_decision
from bitrix24_agent_tools.guard.canonical import judged, lenient, unverified
from bitrix24_agent_tools.guard.edits import apply_edit
from bitrix24_agent_tools.guard.policy import Policy
from bitrix24_agent_tools.guard.render import entities, lookups, record_name, render
from bitrix24_agent_tools.masking import get_logger, mask_params, mask_registered_params
from bitrix24_agent_tools.packs.base import Call, CallRefused, Risk, ToolSpec
from bitrix24_agent_tools.risk import (
    CATALOG,
    AmbiguousCall,
    CanonicalCall,
    canonical_call,
    canonical_method,
    classify_one,
    pack_of,
    riskiest,
)
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

log = get_logger(__name__)
MAX_EDITS = 5  # edit rounds before the request is dropped as a no


@dataclass(frozen=True)
class PortalCall:
    call: Call


@dataclass(frozen=True)
class AskPerson:
    request: ConfirmationRequest
    confirm: Confirmer | None = None  # who answers, when not the guard's own confirmer (a plan's executor)


GuardFlow = Generator[PortalCall | AskPerson, Any, Any]
_CATALOG_LOWER = {pack: frozenset(m.lower() for m in methods) for pack, methods in CATALOG.items()}
_ALL_METHODS = {m.lower(): m for catalog in CATALOG.values() for m in catalog}


def canonical_key(tenant: str, method: str, params: Mapping[str, Any]) -> str:
    """An idempotency key for the whole call: the canonical method and every parameter, per tenant."""
    return _key_of(tenant, lenient(method, params))


def _key_of(tenant: str, call: CanonicalCall) -> str:
    return f"{call.method}:{call.fingerprint(tenant)}"


def summarize(method: str, params: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """Everything a write will do, one line per parameter and per batch command (no names looked up)."""
    return render(lenient(method, params), current).summary


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
        # redis://… (extra `redis`) or postgresql://… (extra `postgres`) URLs name shared stores
        self.idempotency: IdempotencyStore = (
            _shared_store(idempotency, "idempotency")
            if isinstance(idempotency, str)
            else idempotency
            if idempotency is not None
            else MemoryIdempotencyStore()
        )
        self.plans: PlanStore = (
            _shared_store(plans, "plans")
            if isinstance(plans, str)
            else plans
            if plans is not None
            else MemoryPlanStore()
        )
        self.idempotency_ttl = idempotency_ttl
        self.plan_ttl = plan_ttl
        # A claim is taken only after the person said yes and lasts while the call runs: a crash then blocks
        # the same write for this long, not for a day.
        self.inflight_ttl = inflight_ttl
        self.fetch_current = fetch_current
        self.confirm_timeout = confirm_timeout  # seconds a person has to answer; silence is a "no"
        self.clock = clock

    # -- checks ---------------------------------------------------------------------------------------------
    def _allowed(
        self, method: str, spec: ToolSpec, packs: tuple[str, ...], *, in_batch: bool = False
    ) -> bool:
        """Is ``method`` (canonical) reachable through ``spec``? Deny patterns win over everything. A typed
        tool's own calls are held to its methods; a batch command to the catalogs of the tool's pack (generic)
        or packs."""
        if self.policy.denies(method):
            return False
        if any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.allow):
            return True
        if spec.generic:
            return method in _CATALOG_LOWER.get(spec.pack, frozenset())
        if spec.methods and not in_batch:
            return method in {m.lower() for m in spec.methods}
        return any(method in _CATALOG_LOWER.get(p, frozenset()) for p in packs)

    def _risk(self, method: str, params: Mapping[str, Any]) -> Risk:
        base = classify_one(method, params)
        if self.policy.marks_destructive(method):
            return "destructive"
        if unverified(method):  # nothing says what it reads: never below write
            return riskiest([base, "write"])
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
            return riskiest([self._risk(c.method, c.params) for c in call.commands])
        return self._risk(call.method, call.params)

    def canonical(self, call: Call) -> tuple[Call, CanonicalCall]:
        """The call as the portal will read it, checked against its contract; refuses what it could read two
        ways, a parameter it does not read, or what carries credentials."""
        if not isinstance(call.params, Mapping):
            raise CallRefused("params must be an object", code="BAD_PARAMS")
        canon = judged(call.method, call.params)
        return replace(call, method=canon.method, params=canon.params), canon

    def check(self, spec: ToolSpec, call: Call, packs: Iterable[str]) -> Risk:
        """Allowlist, contract, risk and policy for one call (each batch command on its own); raises
        CallRefused."""
        return self._check(spec, call, tuple(packs))[0]

    def _check(self, spec: ToolSpec, call: Call, packs: tuple[str, ...]) -> tuple[Risk, Call]:
        if not isinstance(call.params, Mapping):
            raise CallRefused("params must be an object", code="BAD_PARAMS")
        try:
            method = canonical_method(call.method)
        except AmbiguousCall:
            method = str(call.method).strip().lower()
        # The allowlist speaks first: a method nobody allowed learns nothing of its contract.
        if method != "batch" and not self._allowed(method, spec, packs):
            raise CallRefused(_not_allowed(method, spec), code="NOT_ALLOWED")
        call, canon = self.canonical(call)
        if canon.method == "batch":
            if not self._allowed("batch", spec, packs):
                raise CallRefused("batch is not allowed for this tool", code="NOT_ALLOWED")
            for command in canon.commands:
                if not self._allowed(command.method, spec, packs, in_batch=True):
                    raise CallRefused(
                        _not_allowed(command.method, spec, "batch command "), code="NOT_ALLOWED"
                    )
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
        decision, call, risk, shown_unknown = yield from self._ask(spec, call, tenant, risk, packs)
        return (
            yield from self._once(
                spec,
                call,
                tenant,
                risk,
                "edited" if decision.kind == "edit" else "approved",
                decision.by,
                started,
                retry_unknown=shown_unknown,
            )
        )

    def _key(self, tenant: str, call: Call) -> str:
        return call.idempotency_key or canonical_key(tenant, call.method, call.params)

    def _shown_unknown(self, tenant: str, call: Call) -> bool:
        """Was the person just shown that an identical write's outcome is unknown (so their yes sends it)?"""
        try:
            return self.idempotency.peek(tenant, self._key(tenant, call)) == "unknown"
        except Exception:  # the store is unreachable: the claim that follows refuses the write
            return False

    def _once(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        decision: str,
        by: str | None,
        started: float,
        *,
        retry_unknown: bool = False,
    ) -> GuardFlow:
        """Run an approved write at most once per idempotency key. A repeat is not sent: the person and the
        model are told plainly that the same write was already made, and when — never that it was made now.
        A write whose outcome is unknown (a dropped answer, a 5xx, a store that failed mid-write) is recorded
        as unknown and sent again only after a person who was shown that says yes."""
        key = self._key(tenant, call)
        call = replace(call, idempotency_key=call.idempotency_key or key)
        try:
            claim = self.idempotency.begin(tenant, key, self.inflight_ttl, retry_unknown=retry_unknown)
        except (
            Exception
        ) as exc:  # no record can be kept: nothing is sent (it could not be kept from repeating)
            log.warning("idempotency store unreachable (%s): write not sent", type(exc).__name__)
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="idempotency store unreachable")
            raise CallRefused(
                "not sent: the store that keeps writes from running twice is unreachable; try again shortly",
                code="STORE_DOWN",
            ) from None
        if isinstance(claim, dict):
            self._audit(tenant, spec, call, risk, "replayed", "skipped", by=by)
            raise CallRefused(_already_done(claim), code="ALREADY_DONE")
        if claim == "inflight":
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="same write already in flight")
            raise CallRefused("the same write is already running; wait for its result", code="IN_FLIGHT")
        if claim == "unknown":
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="earlier outcome unknown")
            raise CallRefused(_UNKNOWN, code="OUTCOME_UNKNOWN")
        try:
            response = yield from self._execute(spec, call, tenant, risk, decision, by, started)
        except BaseException as exc:
            if _not_written(exc):
                self.idempotency.fail(tenant, key)  # our own claim only: nothing reached the portal
            else:
                self.idempotency.unknown(tenant, key, f"{type(exc).__name__}: {str(exc)[:120]}")
            raise
        try:
            self.idempotency.complete(
                tenant,
                key,
                {
                    "result": response.result,
                    "total": response.total,
                    "next": response.next,
                    "at": self.clock(),
                },
                self.idempotency_ttl,
            )
        except Exception:  # the write happened, its record did not: the claim expires into "unknown"
            log.exception("the idempotency store failed after a write; a repeat will need a person's yes")
        return response

    def request_for(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        current: Mapping[str, Any] | None,
        names: Mapping[tuple[str, str], str | None] | None = None,
        *,
        canon: CanonicalCall | None = None,
    ) -> ConfirmationRequest:
        canon = canon or lenient(call.method, call.params)
        shown = render(canon, current, names)
        contract = contract_for(canon.method)
        return ConfirmationRequest(
            spec.name,
            canon.method,
            mask_registered_params(dict(call.params)),
            risk,
            tenant,
            shown.summary,
            mask_registered_params(dict(current)) if current else None,
            request_id=_key_of(tenant, canon),
            flags=shown.flags,
            fields=shown.fields,
            doc=contract.doc if contract else "",
        )

    def _ask(
        self,
        spec: ToolSpec,
        call: Call,
        tenant: str,
        risk: Risk,
        packs: tuple[str, ...],
        confirm: Confirmer | None = None,
    ) -> Generator[Any, Any, tuple[Decision, Call, Risk, bool]]:
        """Ask until a yes or a no: returns the decision, the call as approved, its risk, and whether the
        person was shown that an identical write's outcome is unknown (only then may their yes send it
        again)."""
        if (confirm or self.confirm) is None:
            self._audit(tenant, spec, call, risk, "refused", "skipped", error="no confirmation callback")
            raise CallRefused(
                f"{risk} call refused: no person can confirm it here (configure a confirmer, e.g. "
                "Guard(confirm=...); on the command line add --confirm-write)",
                code="NO_CONFIRMER",
            )
        edited = False
        for _round in range(MAX_EDITS + 1):
            canon = lenient(call.method, call.params)  # the call as shown this round (an edit changes it)
            current = (yield from self._current(call)) if self.fetch_current else None
            names = (
                (yield from self._names(call, canon, skip_record=current is not None))
                if self.fetch_current
                else {}
            )
            request = self.request_for(spec, call, tenant, risk, current, names, canon=canon)
            shown_unknown = self._shown_unknown(tenant, call)
            if shown_unknown:
                warning = (
                    "an identical write was tried before and its outcome is unknown (it may already be on "
                    "the portal): approving sends it again — check the portal first"
                )
                request = replace(
                    request, flags=(*request.flags, warning), summary=f"{request.summary}\nCheck: {warning}"
                )
            answer = yield AskPerson(request, confirm)
            decision = bound_decision(answer, request.request_id)
            if decision.kind == "defer" and confirm is not None:
                decision = Decision.reject(
                    f"not answered yet ({decision.reason}); nothing was written"
                    if decision.reason
                    else "the plan's executor deferred it again; nothing was written",
                    by=decision.by,
                )
            if decision.kind == "hold":
                self._audit(
                    tenant, spec, call, risk, "held", "skipped", by=decision.by, error=decision.reason
                )
                raise CallRefused(f"not run yet: {decision.reason or 'waiting for a person'}", code="HELD")
            if decision.kind == "defer":
                plan = self.plan(spec, call, tenant=tenant, risk=risk, summary=request.summary)
                self._audit(tenant, spec, call, risk, "deferred", "skipped", by=decision.by)
                raise CallRefused(
                    f"not run yet: {decision.reason}; stored as plan {plan.id}, which runs once they say yes "
                    "(make the same call again, or execute the plan)"
                    if decision.reason
                    else f"not run yet: stored as plan {plan.id} for a person to execute "
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
                previous = call.params
                try:
                    params = apply_edit(call.method, call.params, decision.params, request)
                    risk, call = self._check(
                        spec, replace(call, params=params, idempotency_key=None, current=None), packs
                    )
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
                if edited and dict(call.params) == dict(previous):
                    # The same edit again, on the call as just shown: the person's yes to exactly that call.
                    return decision, call, risk, shown_unknown
                edited = True
                if risk == "read":
                    return decision, call, risk, False
                continue  # the edited call is checked, shown again and needs its own yes
            return (Decision("edit", by=decision.by) if edited else decision), call, risk, shown_unknown
        self._audit(tenant, spec, call, risk, "rejected", "skipped", error="too many edits")
        raise CallRefused(f"more than {MAX_EDITS} edits; nothing was written", code="REJECTED")

    def _current(self, call: Call) -> Generator[Any, Any, dict[str, Any] | None]:
        """The record a write changes, as it is now (its contract names the record and how to read it)."""
        if call.current is not None:
            return dict(call.current)
        contract = contract_for(str(call.method))
        if contract is None or contract.record is None or contract.risk == "read":
            return None
        param, entity = contract.record
        how = entities().get(entity)
        ident = call.params.get(param)
        if how is None or ident in (None, "") or isinstance(ident, (Mapping, list)):
            return None
        params: dict[str, Any] = {how["param"]: ident}
        params.update({k: call.params[k] for k in how.get("with", []) if k in call.params})
        try:
            response = yield PortalCall(Call(how["get"], params, call.api, risk="read"))
        except Exception:  # the write itself will report a missing record; the request just has no "before"
            return None
        result = response.result
        if isinstance(result, list):
            result = result[0] if result else None
        if isinstance(result, Mapping):
            wrap = how.get("unwrap")
            if wrap and isinstance(result.get(wrap), Mapping):
                return dict(result[wrap])
            return dict(result)
        return None

    def _names(
        self, call: Call, canon: CanonicalCall, *, skip_record: bool = False
    ) -> Generator[Any, Any, dict[tuple[str, str], str | None]]:
        """Names of the records and users a write refers to, read through the portal (the record itself is
        named by its current values when they were read)."""
        names: dict[tuple[str, str], str | None] = {}
        contract = contract_for(str(call.method))
        own = (
            (contract.record[1], str(call.params.get(contract.record[0])))
            if skip_record and contract is not None and contract.record
            else None
        )
        for entity, ident, extra in lookups(canon):
            if (entity, ident) == own:
                continue
            how = entities()[entity]
            value: Any = ident
            try:
                response = yield PortalCall(
                    Call(how["get"], {how["param"]: value, **extra}, call.api, risk="read")
                )
            except Exception:
                names[(entity, ident)] = None
                continue
            names[(entity, ident)] = record_name(entity, response.result)
        return names

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
        tracing.decision(str(call.method), risk, decision, status)
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

    def show_plan(self, plan_id: str, *, tenant: str) -> StoredPlan:
        """A stored plan as it would run — without approving, running or using it up."""
        plan = self.plans.get(plan_id)
        if plan is None or plan.tenant != tenant or (plan.expires_at and plan.expires_at < self.clock()):
            from bitrix24_agent_tools.stores import PlanError

            raise PlanError(f"no plan {plan_id} for this portal (or it expired)")
        return replace(plan, summary=summarize(plan.method, plan.params, None))

    def plan_flow(
        self,
        plan_id: str,
        *,
        tenant: str,
        specs: Mapping[str, ToolSpec],
        packs: Iterable[str],
        confirm: Confirmer | None = None,
    ) -> GuardFlow:
        """Run a stored plan once, as a fresh call: allowlist, contract, deny patterns and policy are checked
        again and the person running it is shown everything it does and asked. The plan is used up only
        after their yes: an attempt nobody answered leaves it for the next one."""
        plan = self.plans.get(plan_id)
        if plan is None or plan.tenant != tenant or (plan.expires_at and plan.expires_at < self.clock()):
            self.plans.claim(
                plan_id, tenant, self.clock()
            )  # raises the store's own "no plan"/"expired" error
        assert plan is not None
        spec = specs.get(plan.tool)
        if spec is None:
            raise CallRefused(
                f"plan {plan_id} was made by tool {plan.tool}, which is not active here", code="NOT_ALLOWED"
            )
        packs = tuple(packs)
        started = self.clock()
        # The plan's own idempotency key: a run that died between the person's yes and the portal's answer
        # resumes as "already made" or "outcome unknown", never as a blind second write.
        call = Call(
            plan.method, plan.params, "v3" if plan.api == "v3" else "v2", idempotency_key=f"plan:{plan_id}"
        )
        try:
            risk, call = self._check(spec, call, packs)
        except CallRefused as refused:
            self._audit(
                tenant, spec, call, "?", "refused", "skipped", error=f"plan {plan_id}: {refused.reason}"
            )
            raise
        if risk == "read":
            self.plans.claim(plan_id, tenant, self.clock())
            self.plans.finish(plan_id)
            return (yield from self._execute(spec, call, tenant, risk, "plan", "plan-executor", started))
        decision, call, risk, shown_unknown = yield from self._ask(
            spec, call, tenant, risk, packs, confirm or self.confirm
        )
        self.plans.claim(plan_id, tenant, self.clock())  # claimed → sent → executed: a crash can resume
        try:
            response = yield from self._once(
                spec,
                call,
                tenant,
                risk,
                "plan",
                decision.by or "plan-executor",
                started,
                retry_unknown=shown_unknown,
            )
        except CallRefused as refused:
            if refused.code == "ALREADY_DONE":  # an earlier run made it: the plan is done
                self.plans.finish(plan_id)
            raise
        self.plans.finish(plan_id)
        return response


def _shared_store(url: str, kind: str) -> Any:
    """An idempotency or plan store from a URL: PostgreSQL for ``postgres(ql)://``, else Redis."""
    if url.startswith(("postgres://", "postgresql://")):
        from bitrix24_agent_tools.stores import postgres

        return (
            postgres.PostgresIdempotencyStore(url)
            if kind == "idempotency"
            else postgres.PostgresPlanStore(url)
        )
    from bitrix24_agent_tools.stores import redis

    return (
        redis.RedisIdempotencyStore.from_url(url)
        if kind == "idempotency"
        else redis.RedisPlanStore.from_url(url)
    )


_UNKNOWN = (
    "not sent: an identical write was tried before and its outcome is unknown (the portal's answer was "
    "lost); check the portal, then ask the person again — they will be shown this before they approve"
)


def _not_written(exc: BaseException) -> bool:
    """Did the portal certainly not write? Only when it answered with an error, or the request never left."""
    from bitrix24_agent_tools.client.errors import (
        Bitrix24Error,
        InvalidResponse,
        NetworkError,
        OperatingLimit,
        RateLimited,
        ServerError,
    )

    if isinstance(exc, (CallRefused, RateLimited, OperatingLimit)):  # refused before processing
        return True
    if isinstance(exc, NetworkError):
        return getattr(exc, "sent", True) is False
    if isinstance(exc, (ServerError, InvalidResponse)):
        return False
    return isinstance(exc, Bitrix24Error) and exc.status is not None and 400 <= int(exc.status) < 500


def _already_done(claim: Mapping[str, Any]) -> str:
    from bitrix24_agent_tools.packs.render import dumps

    at = claim.get("at")
    when = (
        datetime.fromtimestamp(float(at), tz=timezone.utc).astimezone().isoformat(timespec="seconds")
        if isinstance(at, (int, float))
        else "earlier"
    )
    result = mask_params(claim.get("result"))
    return (
        f"not sent again: this exact write was already made ({when}); its result then: "
        f"{dumps(result)[:200]}. Change something if a second one is meant"
    )


def _likeness(asked: str, method: str) -> float:
    """How near a method name is to the one asked: the verb (last part) weighs most, then the whole name."""
    a, m = asked.lower(), method.lower()
    verb = difflib.SequenceMatcher(None, a.rsplit(".", 1)[-1], m.rsplit(".", 1)[-1]).ratio()
    return 2 * verb + difflib.SequenceMatcher(None, a, m).ratio()


def _not_allowed(method: str, spec: ToolSpec, what: str = "") -> str:
    pack = pack_of(method)
    if pack:
        where = f"; it is in the {pack} pack (use b24_{pack}_call or activate that pack)"
    else:
        near = difflib.get_close_matches(method.lower(), _ALL_METHODS, n=2, cutoff=0.75)
        hint = f"did you mean {' or '.join(_ALL_METHODS[m] for m in near)}? " if near else ""
        where = f"; no pack lists it ({hint}a user may allow it explicitly with allow=[...])"
    if spec.generic:  # say what the tool does take: the pack's methods of the same family, else all of them
        own = list(CATALOG.get(spec.pack, {}))
        family = [m for m in own if m.split(".", 1)[0] == method.split(".", 1)[0]] or own
        # the nearest names first: landing.page.publish → landing.landing.publication, …
        family.sort(key=lambda m: -_likeness(method, m))
        where += f". {spec.name} takes: {', '.join(family[:24])}" + (" …" if len(family) > 24 else "")
    return f"{what}{method} is not allowed for {spec.name}{where}"
