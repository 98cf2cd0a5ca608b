"""What a person is asked (ConfirmationRequest) and what they answer (Decision), bound to one request."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bitrix24_agent_tools.risk import Risk


@dataclass(frozen=True)
class ConfirmationRequest:
    """One write waiting for a person: the call as the portal will read it, rendered for a person.

    ``params`` is the canonical call (only registered secrets masked: what the model wrote is shown, a
    secret-shaped word it wrote is flagged in ``flags``, never hidden); ``summary`` renders every parameter
    the portal will read from the method's contract; ``fields`` lists the keys an edit may change.
    """

    tool: str
    method: str
    params: dict[str, Any]
    risk: Risk
    tenant: str
    summary: str
    current: dict[str, Any] | None = None
    request_id: str = ""  # stable for the same call: an answer is bound to it
    flags: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    doc: str = ""

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
            "flags": list(self.flags),
            "fields": list(self.fields),
            "doc": self.doc,
        }


@dataclass(frozen=True)
class Decision:
    kind: Literal["approve", "reject", "edit", "defer", "hold"]
    reason: str = ""
    params: dict[str, Any] | None = None
    by: str | None = None
    request_id: str | None = field(default=None, compare=False)

    @classmethod
    def approve(cls, by: str | None = None) -> Decision:
        return cls("approve", by=by)

    @classmethod
    def reject(cls, reason: str = "rejected by the reviewer", by: str | None = None) -> Decision:
        return cls("reject", reason=reason, by=by)

    @classmethod
    def edit(cls, params: dict[str, Any], by: str | None = None) -> Decision:
        """Approve with changes: ``params`` holds only the keys to change (any case, nested as shown or
        at the top level), or the whole edited call; the guard applies it through the contract and asks
        again."""
        return cls("edit", params=dict(params), by=by)

    @classmethod
    def defer(cls, by: str | None = None, reason: str = "") -> Decision:
        """Not now: the guard stores the write as a plan; ``reason`` (e.g. where the person is being asked)
        is passed on to the model."""
        return cls("defer", reason=reason, by=by)

    @classmethod
    def hold(cls, reason: str, by: str | None = None) -> Decision:
        """Not now and not stored: the framework pauses the tool call for the person itself (OpenAI Agents
        SDK ``needs_approval``, pydantic-ai approval-required tools); the call is made again once they
        answer."""
        return cls("hold", reason=reason, by=by)

    @classmethod
    def coerce(cls, value: Any) -> Decision:
        """Accept a Decision, a bool, or a dict like ``{"approve": true}`` / ``{"reject": "why"}`` /
        ``{"edit": {...}}`` / ``{"type": "approve"}``. A framework's own shapes are read by its face
        (LangGraph's HumanInTheLoopMiddleware decisions: ``integrations.langchain.hitl_decision``)."""
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
_REQUEST_ID = re.compile(r"[a-z0-9_.]+:[0-9a-f]{32}")


def named_request(answer: Any) -> str | None:
    """The request an answer names (``{request_id: …}``, ``{"request_id": …}``, decisions carrying one)."""
    if isinstance(answer, Decision):
        return answer.request_id
    if not isinstance(answer, Mapping):
        return None
    if answer.get("request_id") is not None:
        return str(answer["request_id"])
    keys = [k for k in answer if isinstance(k, str) and _REQUEST_ID.fullmatch(k)]
    return keys[0] if len(keys) == 1 else None


def bound_decision(answer: Any, request_id: str, *, require_binding: bool = False) -> Decision:
    """A person's answer, accepted only for the request it names.

    Answers may be keyed by request id (``{request_id: answer}``) — several writes pending at once each get
    their own — or carry ``request_id``; an answer naming another request is a "no" for this one. With
    ``require_binding`` (a channel where more than one request can be pending, e.g. LangGraph), an answer
    that names no request is a "no" too.
    """
    if isinstance(answer, Decision):
        if answer.request_id is not None and answer.request_id != request_id:
            return Decision.reject("that answer was for another request; nothing was written")
        if require_binding and answer.request_id is None:
            return Decision.reject(_UNBOUND)
        return answer
    if isinstance(answer, Mapping):
        if request_id in answer:
            return Decision.coerce(answer[request_id])
        named = answer.get("request_id")
        if named is not None and str(named) != request_id:
            return Decision.reject("that answer was for another request; nothing was written")
        if any(isinstance(k, str) and _REQUEST_ID.fullmatch(k) for k in answer):
            return Decision.reject("no answer for this request; nothing was written")
        if named is not None:
            return Decision.coerce(answer)
    if require_binding:
        return Decision.reject(_UNBOUND)
    return Decision.coerce(answer)


_UNBOUND = (
    "the answer names no request, and more than one can be pending here; answer {request_id: decision}. "
    "Nothing was written"
)
