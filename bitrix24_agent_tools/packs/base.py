"""The framework-neutral tool contract: ToolSpec, the Calls a handler yields, ToolOutput, and the drivers.

A handler is written once, as a generator, and runs unchanged under a sync client, an async client and the
guard: it *yields* each Bitrix24 call it wants (:class:`Call`) and receives the client's response back; it
*returns* a :class:`ToolOutput`. Whoever drives the generator decides how the call is made — that is where
the guard checks, confirms, executes and audits every single call (see ``guard.py``). A handler never holds a
client, so it cannot bypass the guard.

    def list_deals(ctx: ToolContext, args: ListDeals) -> Handler:
        response = yield Call("crm.deal.list", {"filter": args.filter, "start": -1})
        return ToolOutput(content=compact(response.result), artifact=response.result)

If the guard refuses a call (policy, allowlist, a person's "no"), :class:`CallRefused` is thrown into the
generator at the ``yield``; a handler normally lets it propagate and the runner turns its reason into the
tool's result for the model.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from bitrix24_agent_tools._steps import adrive, drive
from bitrix24_agent_tools.risk import RISK_ORDER, Risk, riskiest

ApiVersion = Literal["v2", "v3"]
__all__ = [
    "RISK_ORDER",
    "ApiVersion",
    "Call",
    "CallRefused",
    "Fetch",
    "Handler",
    "HandlerGen",
    "Risk",
    "ToolContext",
    "ToolOutput",
    "ToolSpec",
    "adrive",
    "drive",
    "riskiest",
]


@dataclass(frozen=True)
class Call:
    """One Bitrix24 call a handler asks for. ``batch`` is a Call too; the guard checks its commands."""

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    api: ApiVersion = "v2"
    idempotency_key: str | None = None
    risk: Risk | None = None  # set by the guard; the client retries on it, never on a verb list of its own
    # The record as the handler just read it (through the guard), so the confirmation need not read it again.
    current: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Fetch:
    """Bytes a handler needs from a URL, never through the model: a file the portal serves (``portal=True``:
    a ``DOWNLOAD_URL`` it returned, fetched by the client on the portal's host only) or a public web address
    a person named for an upload (``portal=False``: private, loopback and link-local addresses are refused
    unless the toolbox allows them). The driver sends back the bytes."""

    url: str
    portal: bool = True
    max_bytes: int = 50 * 2**20


@dataclass(frozen=True)
class ToolOutput:
    """What a tool returns: compact text for the model, the full data as the artifact."""

    content: str
    artifact: Any = None
    is_error: bool = False


@dataclass(frozen=True)
class ToolContext:
    """Per-run settings a handler may read. Holds no client and no secret."""

    tenant: str = "default"
    max_items: int = 20
    max_chars: int = 300
    extra: Mapping[str, Any] = field(default_factory=dict)


class CallRefused(Exception):
    """Thrown into a handler when the guard refuses one of its calls; ``reason`` goes back to the model."""

    def __init__(self, reason: str, *, code: str = "REFUSED") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


HandlerGen = Generator["Call | Fetch", Any, ToolOutput]
Handler = Callable[[ToolContext, Any], HandlerGen]


@dataclass(frozen=True)
class ToolSpec:
    """A tool, independent of any agent framework.

    ``methods`` lists the Bitrix24 methods the handler may call (the generic call tool of a pack lists the
    pack's whole catalog). ``risk`` is the tool's highest risk, used for annotations and the UI; the guard
    still classifies every call on its own.
    """

    name: str
    description: str
    args: type[BaseModel]
    risk: Risk
    methods: tuple[str, ...]
    handler: Handler
    pack: str
    generic: bool = False
