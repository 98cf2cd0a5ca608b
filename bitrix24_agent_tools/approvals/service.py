"""The approval service: every write waits on it, whatever the face or the channel the person answers in.

A request (the canonical call, its rendering, who may answer, expiry) is stored durably and answered once,
by an allowed person, through any channel; the guard then takes the answer once. Nothing here talks to the
portal: channels (``approvals.chat``, ``approvals.web``, MCP elicitation) deliver the request and bring the
answer back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal, Protocol, runtime_checkable

from bitrix24_agent_tools.guard.answers import ConfirmationRequest, Decision
from bitrix24_agent_tools.masking import get_logger
from bitrix24_agent_tools.stores import Approval, ApprovalStore, MemoryApprovalStore, SqliteApprovalStore

log = get_logger(__name__)
Answer = Literal["approve", "reject", "edit"]
ApproverSource = (
    Iterable[str | int]
    | Mapping[str, Iterable[str | int]]
    | Callable[[ConfirmationRequest], Iterable[str | int]]
    | None
)
_STATE = {"approve": "approved", "reject": "rejected", "edit": "edited"}


class ApprovalError(Exception):
    """An answer that changes nothing: unknown or another portal's request, not an approver, expired, or
    already answered. ``code`` says which; the message is safe to show the person."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class Channel(Protocol):
    """Where a request reaches a person: ``notify`` sends it (a chat message, a link); ``answered`` tells
    them what became of it. A channel that fails is logged; the request still waits for other channels."""

    name: str

    def notify(self, approval: Approval, service: ApprovalService) -> None: ...

    def answered(self, approval: Approval, service: ApprovalService) -> None: ...


def open_store(store: ApprovalStore | str | None) -> ApprovalStore:
    """A store from a URL or path: ``postgresql://`` (extra ``postgres``), ``redis://`` (extra ``redis``), a
    sqlite file path; None is in memory (one process only)."""
    if store is None:
        return MemoryApprovalStore()
    if not isinstance(store, str):
        return store
    if store.startswith(("postgres://", "postgresql://")):
        from bitrix24_agent_tools.stores.postgres import PostgresApprovalStore

        return PostgresApprovalStore(store)
    if store.startswith(("redis://", "rediss://", "unix://")):
        from bitrix24_agent_tools.stores.redis import RedisApprovalStore

        return RedisApprovalStore.from_url(store)
    return SqliteApprovalStore(store)


class ApprovalService:
    """Requests and answers, stored durably, answered once by an allowed person.

    ``approvers`` — who may answer: Bitrix24 user IDs (one list for every portal), a mapping of portal →
    IDs, or a callable given the request. Nobody to ask means no write. ``web_url`` is the base address of
    the approval pages (``approvals.web``): each request gets ``{web_url}/approvals/{id}``.
    """

    def __init__(
        self,
        store: ApprovalStore | str | None = None,
        *,
        approvers: ApproverSource = None,
        channels: Iterable[Channel] = (),
        ttl: float = 900.0,
        web_url: str | None = None,
        clock: Callable[[], float] = time.time,
        poll: float = 0.2,
    ) -> None:
        self.store = open_store(store)
        self.approvers = approvers
        self.channels: list[Channel] = list(channels)
        self.ttl = ttl
        self.web_url = web_url.rstrip("/") if web_url else None
        self.clock = clock
        self.poll = poll

    # -- who and where --------------------------------------------------------------------------------------
    def approvers_for(self, request: ConfirmationRequest) -> tuple[str, ...]:
        source = self.approvers
        if source is None:
            return ()
        if callable(source):
            found: Iterable[str | int] = source(request) or ()
        elif isinstance(source, Mapping):
            found = source.get(request.tenant, ())
        else:
            found = source
        return tuple(dict.fromkeys(str(u).strip() for u in found if str(u).strip()))

    def link(self, approval: Approval) -> str | None:
        return f"{self.web_url}/approvals/{approval.id}" if self.web_url else None

    # -- requests -------------------------------------------------------------------------------------------
    def open(
        self,
        request: ConfirmationRequest,
        *,
        approvers: Iterable[str | int] | None = None,
        ttl: float | None = None,
    ) -> Approval:
        """Store a request and send it through every channel; a pending one for the same call is reused
        (the person is not asked twice). Raises ApprovalError(NO_APPROVER) when nobody may answer."""
        who = (
            tuple(dict.fromkeys(str(u) for u in approvers))
            if approvers is not None
            else self.approvers_for(request)
        )
        if not who:
            raise ApprovalError(
                "no approver is configured for this portal: nobody may approve writes", "NO_APPROVER"
            )
        now = self.clock()
        for found in self.store.find(request.tenant, request.request_id):
            if found.state == "pending" and not found.expired(now) and set(found.approvers) == set(who):
                return found
        approval = Approval(
            Approval.new_id(),
            request.tenant,
            request.request_id,
            request.tool,
            request.method,
            request.risk,
            request.summary,
            dict(request.params),
            who,
            now,
            now + (ttl if ttl is not None else self.ttl),
            flags=tuple(request.flags),
            fields=tuple(request.fields),
            doc=request.doc,
        )
        self.store.create(approval)
        for channel in self.channels:
            try:
                channel.notify(approval, self)
            except Exception as exc:  # the request waits for the other channels, and expires if none works
                log.warning("approval channel %s failed to notify: %s", channel.name, type(exc).__name__)
        return self.store.get(approval.id) or approval

    def note(self, approval_id: str, key: str, value: Any) -> None:
        """Keep a channel's bookkeeping (e.g. the chat message IDs) on a pending approval."""
        for _ in range(5):
            current = self.store.get(approval_id)
            if current is None:
                return
            notes = {**current.notes, key: value}
            if self.store.transition(approval_id, current.state, {"notes": notes}) is not None:
                return

    def get(self, approval_id: str, *, tenant: str | None = None) -> Approval | None:
        found = self.store.get(approval_id)
        if found is None or (tenant is not None and tenant not in (found.tenant, portal_of(found.tenant))):
            return None
        return found

    def answer(
        self,
        approval_id: str,
        answer: Answer,
        *,
        user: str | int,
        channel: str,
        tenant: str | None = None,
        reason: str = "",
        edit: Mapping[str, Any] | None = None,
    ) -> Approval:
        """Record a person's answer: only by an approver of that request, before it expires, once. Raises
        ApprovalError otherwise (nothing changes)."""
        if answer not in _STATE:
            raise ApprovalError(f"unknown answer {answer!r}", "BAD_ANSWER")
        if answer == "edit" and not isinstance(edit, Mapping):
            raise ApprovalError("an edit needs the changed fields as an object", "BAD_ANSWER")
        found = self.get(approval_id, tenant=tenant)
        if found is None:  # another portal's request reads as unknown: nothing leaks
            raise ApprovalError("no such request for this portal", "NOT_FOUND")
        who = str(user).strip()
        if who not in found.approvers:
            raise ApprovalError("you are not an approver of this request", "NOT_APPROVER")
        now = self.clock()
        if found.state != "pending":
            raise ApprovalError("this request was already answered", "ANSWERED")
        if found.expired(now):
            raise ApprovalError("this request expired; nothing was written", "EXPIRED")
        changes: dict[str, Any] = {
            "state": _STATE[answer],
            "answer": _STATE[answer],
            "reason": str(reason or "")[:500],
            "edit": dict(edit) if answer == "edit" and edit is not None else None,
            "answered_by": who,
            "channel": channel,
            "answered_at": now,
        }
        done = self.store.transition(approval_id, "pending", changes)
        if done is None:
            raise ApprovalError("this request was already answered", "ANSWERED")
        for each in self.channels:
            try:
                each.answered(done, self)
            except Exception as exc:
                log.warning("approval channel %s failed to report: %s", each.name, type(exc).__name__)
        return done

    def take(self, tenant: str, request_id: str) -> Decision | None:
        """The answer given to this exact call, used up (each answer counts once); None while nobody has
        answered. A pending request past its expiry is not an answer."""
        for found in self.store.find(tenant, request_id):
            if found.state not in ("approved", "rejected", "edited"):
                continue
            used = self.store.transition(found.id, found.state, {"state": "used"})
            if used is not None:
                return decision_of(found)
        return None

    def pending(self, tenant: str, request_id: str) -> Approval | None:
        now = self.clock()
        for found in self.store.find(tenant, request_id):
            if found.state == "pending" and not found.expired(now):
                return found
        return None

    # -- waiting --------------------------------------------------------------------------------------------
    def wait(self, approval_id: str, timeout: float) -> Approval:
        """Block until the request is answered or expires, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.store.get(approval_id)
            if found is None or found.state != "pending" or found.expired(self.clock()):
                return found or _gone(approval_id)
            if time.monotonic() >= deadline:
                return found
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    async def wait_async(self, approval_id: str, timeout: float) -> Approval:
        """:meth:`wait` for an event loop (the store is read off the loop)."""
        deadline = time.monotonic() + timeout
        while True:
            found = await asyncio.to_thread(self.store.get, approval_id)
            if found is None or found.state != "pending" or found.expired(self.clock()):
                return found or _gone(approval_id)
            if time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    async def answer_for(
        self, request: ConfirmationRequest, approval: Approval, wait: float | None
    ) -> Decision:
        """Wait (at most ``wait`` s, never past the request's expiry) for the answer to ``approval`` and take
        it for ``request``; silence, or a request that expired while it was being sent, is a no."""
        left = approval.expires_at - self.clock()
        if left > 0:
            final = await self.wait_async(approval.id, min(wait, left) if wait is not None else left)
            if final.state != "pending":
                taken = await asyncio.to_thread(self.take, request.tenant, request.request_id)
                return taken or Decision.reject(
                    "the answer was already used; nothing was written", by="approval-service"
                )
        return Decision.reject(
            "no answer from an approver in time; nothing was written", by="approval-service"
        )

    def confirmer(
        self, *, wait: float | None = None, approvers: Iterable[str | int] | None = None
    ) -> ApprovalConfirmer:
        """A guard confirmer that asks through this service: ``wait`` seconds for the answer (default: the
        request's lifetime); ``wait=0`` never waits — the write is stored as a plan and runs when the same
        call (or its plan) is made again after the person's yes."""
        return ApprovalConfirmer(self, wait=wait, approvers=approvers)


def portal_of(tenant: str) -> str:
    """The portal of a tenant key: a team server keys each person as ``<portal>#<user id>``."""
    return tenant.split("#", 1)[0]


def decision_of(approval: Approval) -> Decision:
    """An answered approval as the guard's Decision, bound to its request."""
    by = f"user {approval.answered_by} via {approval.channel}"
    state = approval.answer or approval.state
    if state == "approved":
        return replace(Decision.approve(by=by), request_id=approval.request_id)
    if state == "edited" and approval.edit is not None:
        return replace(Decision.edit(dict(approval.edit), by=by), request_id=approval.request_id)
    return replace(
        Decision.reject(approval.reason or "rejected by the approver", by=by), request_id=approval.request_id
    )


def _gone(approval_id: str) -> Approval:
    raise ApprovalError(f"approval {approval_id[:8]}… is gone from the store", "NOT_FOUND")


class ApprovalConfirmer:
    """Asks through the :class:`ApprovalService` and waits (async; the sync toolbox drives it too).

    An answer already given to this exact call is taken first (resume later: the same call, or its plan, made
    again after the person answered runs once). Otherwise the request is opened on every channel and awaited;
    silence until it expires is a no. ``wait=0`` returns at once and the guard stores the write as a plan.
    """

    def __init__(
        self,
        service: ApprovalService,
        *,
        wait: float | None = None,
        approvers: Iterable[str | int] | None = None,
    ) -> None:
        self.service = service
        self.wait = wait
        self.approvers = tuple(approvers) if approvers is not None else None

    async def __call__(self, request: ConfirmationRequest) -> Decision:
        service = self.service
        taken = await asyncio.to_thread(service.take, request.tenant, request.request_id)
        if taken is not None:
            return taken
        try:
            approval = await asyncio.to_thread(service.open, request, approvers=self.approvers)
        except ApprovalError as exc:
            return Decision.reject(f"{exc}; nothing was written", by="approval-service")
        if self.wait is not None and self.wait <= 0:  # resume later: the write is stored as a plan
            return Decision.defer(by="approval-service", reason=waiting_text(service, approval))
        return await service.answer_for(request, approval, self.wait)


def waiting_text(service: ApprovalService, approval: Approval) -> str:
    """One line for the model: who is asked, where, and until when."""
    link = service.link(approval)
    who = ", ".join(f"user {u}" for u in approval.approvers)
    until = time.strftime("%H:%M:%S UTC", time.gmtime(approval.expires_at))
    return (
        f"waiting for {who} to answer"
        + (f" at {link}" if link else " in Bitrix24 chat")
        + f" (until {until})"
    )
