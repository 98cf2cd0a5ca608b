"""MCP face: the selected packs as MCP tools; every write is confirmed by the *person* through elicitation.

No argument a model can send approves a write. A client without elicitation gets no write at all: the call is
stored as a plan and only a person can run it (``b24-agent-tools call --execute-plan ID --confirm-write``).
No logic lives here: calls go through :class:`~bitrix24_agent_tools.toolbox.Toolbox` and the guard.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server

from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.masking import mask_params
from bitrix24_agent_tools.packs.base import CallRefused
from bitrix24_agent_tools.packs.loader import LOADER, PACK_NAMES, loader_spec, tool_packs
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.selection import select_tools
from bitrix24_agent_tools.stores import PlanStore, SqlitePlanStore, state_path
from bitrix24_agent_tools.toolbox import MAX_WAIT, Toolbox, register_pause

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("b24_mcp_request", default=None)
ROUTE_TOOL = "b24_route"
STATUS_TOOL = "b24_approval_status"
_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {
            "type": "string",
            "enum": ["approve", "reject"],
            "description": "approve or reject this change",
        },
        "reason": {"type": "string", "description": "why (shown to the agent when rejecting)"},
        "fields": {
            "type": "string",
            "description": 'optional: edited fields as JSON, e.g. {"OPPORTUNITY": 5000}',
        },
    },
    "required": ["decision"],
}


class NeedsInput(Exception):
    """Raised inside a tool call on the modern protocol era: answer with InputRequiredResult and ask the
    client."""

    def __init__(self, key: str, request: ConfirmationRequest) -> None:
        super().__init__(key)
        self.key = key
        self.request = request


register_pause(NeedsInput)  # the InputRequired round: the guard lets it through to _call_tool


class Elicitations:
    """The confirmations this server asked for on modern sessions: a random single-use nonce per request,
    expiring.

    An ``input_responses`` entry counts only under a nonce this server issued, for the very request it was
    issued for, before it expires, and once: a client cannot answer a prompt it was never shown, guess a key,
    or replay one.
    """

    def __init__(self, ttl: float = 600.0, clock: Any = None) -> None:
        import time

        self.ttl = ttl
        self.clock = clock or time.monotonic
        self._issued: dict[str, tuple[str, float, dict[str, types.ElicitResult]]] = {}

    def issue(
        self, request: ConfirmationRequest, carried: dict[str, types.ElicitResult] | None = None
    ) -> str:
        """A nonce for ``request``; ``carried`` are the answers this tool call already has (an edit's earlier
        rounds), handed back when the nonce is redeemed — the client never holds them."""
        import secrets

        now = self.clock()
        self._issued = {k: v for k, v in self._issued.items() if v[1] > now}
        # The same request still unanswered (a client that re-runs the tool call before answering — LangGraph
        # replays the node on resume) gets the same nonce back: its answer binds; once redeemed, it is gone.
        for nonce, (request_id, _expires, _carried) in self._issued.items():
            if request_id == request.request_id:
                self._issued[nonce] = (request_id, now + self.ttl, {**_carried, **(carried or {})})
                return nonce
        nonce = "confirm-" + secrets.token_urlsafe(18)
        self._issued[nonce] = (request.request_id, now + self.ttl, dict(carried or {}))
        return nonce

    def redeem_all(self, answers: dict[str, types.ElicitResult]) -> dict[str, types.ElicitResult]:
        """Every answer among ``answers`` under a nonce this server issued and that is still valid, by the
        request it was issued for, with the answers its nonce carried (each nonce used up)."""
        now = self.clock()
        known: dict[str, types.ElicitResult] = {}
        for nonce in list(answers):
            issued = self._issued.pop(nonce, None)
            if issued is not None and issued[1] > now:
                known.update(issued[2])
                known[issued[0]] = answers.pop(nonce)
        return known


def _message(request: ConfirmationRequest) -> str:
    return f"[{request.risk}] {request.summary}\nportal: {request.tenant} · tool: {request.tool}"


def decision_from(answer: types.ElicitResult, request: ConfirmationRequest) -> Decision:
    """A person's elicitation answer as a guard Decision (edits are re-checked by the guard)."""
    if answer.action != "accept" or not answer.content:
        said = {"decline": "declined", "cancel": "cancelled"}.get(answer.action, answer.action)
        return Decision.reject(f"the person {said}", by="mcp-elicitation")
    content = dict(answer.content)
    if content.get("decision") != "approve":
        return Decision.reject(str(content.get("reason") or "rejected by the person"), by="mcp-elicitation")
    edited = str(content.get("fields") or "").strip()
    if not edited:
        return Decision.approve(by="mcp-elicitation")
    try:
        fields = json.loads(edited)
    except ValueError:
        return Decision.reject("edited fields were not valid JSON", by="mcp-elicitation")
    if not isinstance(fields, dict):
        return Decision.reject("edited fields must be a JSON object", by="mcp-elicitation")
    # The keys as the person saw them (any case, nested or not): the guard lands each where the method's
    # contract reads it, refuses one that matches nothing, and shows the edited call again.
    return Decision.edit(fields, by="mcp-elicitation")


class ElicitationConfirmer:
    """Ask the person at the MCP client; without elicitation support, defer the write to a plan.

    Legacy sessions get an ``elicitation/create`` request mid-call; modern (2026-07-28+) sessions get an
    ``InputRequiredResult`` and the client calls again with the person's answer (``input_responses``).

    With an :class:`~bitrix24_agent_tools.approvals.ApprovalService` (``approvals``) the person is asked
    through it instead: a client that supports URL-mode elicitation opens the request's approval page and
    the call completes once they answer there (or in Bitrix24 chat); any other client gets one line with the
    link, the write is stored as a plan, and ``b24_approval_status`` runs it after the person's yes.
    """

    def __init__(self, approvals: Any = None, *, wait: float = 600.0) -> None:
        self.elicitations = Elicitations()
        self.approvals = approvals
        self.wait = wait

    async def __call__(self, request: ConfirmationRequest) -> Decision:
        state: tuple[Any, dict[str, types.ElicitResult], dict[str, types.ElicitResult]] = _request.get() or (
            None,
            {},
            {},
        )
        ctx, answers, known = state
        if self.approvals is not None:
            return await self._through_service(ctx, request)
        if ctx is None or not ctx.session.check_client_capability(
            types.ClientCapabilities(elicitation=types.ElicitationCapability())
        ):
            return Decision.defer(by="mcp: client has no elicitation")
        # Modern sessions run the tool again for every round: the answers of this call's earlier rounds (the
        # request as first shown, then as edited) come back with the nonce the client answered.
        known.update(self.elicitations.redeem_all(answers))
        answer = known.get(request.request_id)
        if answer is not None:
            return decision_from(answer, request)
        if not ctx.session.can_send_request:
            raise NeedsInput(self.elicitations.issue(request, known), request)
        answer = await ctx.session.elicit_form(
            _message(request), _ANSWER_SCHEMA, related_request_id=ctx.request_id
        )
        return decision_from(answer, request)

    async def _through_service(self, ctx: Any, request: ConfirmationRequest) -> Decision:
        """The approval service: an answer already given to this call is taken; else the request is opened on
        every channel and, for a client with URL-mode elicitation, its page opened there and awaited."""
        import asyncio

        from bitrix24_agent_tools.approvals import ApprovalError, ApprovalService, waiting_text

        service: ApprovalService = self.approvals
        taken = await asyncio.to_thread(service.take, request.tenant, request.request_id)
        if taken is not None:
            return taken
        try:
            approval = await asyncio.to_thread(service.open, request)
        except ApprovalError as exc:
            return Decision.reject(f"{exc}; nothing was written", by="approval-service")
        link = service.link(approval)
        url_mode = types.ClientCapabilities(
            elicitation=types.ElicitationCapability(url=types.UrlElicitationCapability())
        )
        if (
            ctx is None
            or link is None
            or not ctx.session.can_send_request
            or not ctx.session.check_client_capability(url_mode)
        ):
            return Decision.defer(by="approval-service", reason=waiting_text(service, approval))
        opened = await ctx.session.elicit_url(
            f"[{request.risk}] {request.method}: approve or reject it on its page", link, approval.id
        )
        if opened.action != "accept":
            return Decision.reject("the person did not open the approval page", by="mcp-elicitation")
        return await service.answer_for(request, approval, self.wait)


# Methods that only add (a new record, a message, a file): every other write may overwrite or remove what is
# there, which is what the MCP spec's destructiveHint means (false = additive only).
_ADDITIVE = ("add", "create", "register", "send", "start", "addsubfolder", "uploadfile", "copyto", "addtask")


def _overwrites(spec: Any) -> bool:
    if spec.risk == "destructive" or spec.generic:
        return bool(spec.risk != "read")
    from bitrix24_agent_tools.risk import classify

    writes = [m for m in spec.methods if classify(m) != "read"]
    return any(classify(m) == "destructive" or m.rsplit(".", 1)[-1].lower() not in _ADDITIVE for m in writes)


def _annotations(risk: str, title: str, overwrites: bool = False) -> types.ToolAnnotations:
    return types.ToolAnnotations(
        title=title,
        read_only_hint=risk == "read",
        destructive_hint=risk != "read" and (risk == "destructive" or overwrites),
        idempotent_hint=risk == "read",
        open_world_hint=True,
    )


def _title(spec: Any) -> str:
    """A person's name for a tool: its description's first clause."""
    text = str(spec.description).split(":")[0].split(";")[0].rstrip(". ")
    return text if len(text) <= 60 else text[:57].rstrip() + "…"


def _version() -> str:
    from bitrix24_agent_tools._meta import package_version

    return package_version()


class _Server(Server[Any]):
    """Our server: its capabilities say whether the tool list changes (it does with routing)."""

    def __init__(self, *args: Any, tools_changed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tools_changed = tools_changed

    def get_capabilities(
        self,
        notification_options: Any = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        """The SDK's capabilities, with ``tools.listChanged`` true when the tool list does change."""
        from mcp.server.lowlevel.server import NotificationOptions

        given = notification_options or NotificationOptions()
        if self._tools_changed and not given.tools_changed:
            given = NotificationOptions(given.prompts_changed, given.resources_changed, tools_changed=True)
        return super().get_capabilities(
            given, experimental_capabilities, extensions, protocol_version=protocol_version
        )


class Bitrix24MCP:
    """An MCP server over one portal. ``route=True`` starts with ``core`` plus a tool that adds routed
    packs."""

    def __init__(
        self,
        client: Any = None,
        *,
        aclient: Any = None,
        packs: Iterable[str] | None = None,
        route: bool = False,
        policy: Policy | None = None,
        plans: PlanStore | None = None,
        writes: bool = True,
        structured: bool = False,
        guard: Guard | None = None,
        approvals: Any = None,
        approval_wait: float = 20.0,
    ) -> None:
        # writes=False (HTTP without a bearer token): any local process could both call and answer the prompt.
        policy = policy or (guard.policy if guard is not None else Policy.writer())
        if not writes:
            policy = replace(
                policy,
                name=f"{policy.name} (read-only: no bearer token)",
                allow_write=False,
                allow_destructive=False,
            )
        self.approvals = approvals
        self.after_call: Any = (
            None  # a hook over every tool's output (the team server watches for ended grants)
        )
        self.approval_wait = approval_wait  # how long b24_approval_status waits for an answer per call
        if guard is None:
            guard = Guard(policy, ElicitationConfirmer(approvals) if writes else None, plans=plans)
        elif not writes:  # the operator's guard (Settings), read-only without a bearer token
            guard.policy, guard.confirm = policy, None
        from bitrix24_agent_tools.packs import PACKS

        # The operator's packs bound routing and loading; with route=True and none named, every pack.
        packs = tuple(packs) if packs is not None else (tuple(PACKS) if route else ("core",))
        self.toolbox = Toolbox(
            client, aclient, packs=("core",) if route else packs, guard=guard, boundary=packs
        )
        if route:  # the first list is the routing tool and the loader: the request decides what comes next
            self.toolbox.specs, self.toolbox._by_name = [], {}
        self.routing = route
        # A result goes to the model once: as compact text (default), or with structured=True as
        # structuredContent (every field, for hosts that read it) beside a one-line text pointer, never both
        # in full (a host that passes both would pay for the data twice).
        self.structured = structured
        self.server: Server[Any] = _Server(
            "bitrix24-agent-tools",
            version=_version(),
            title="Bitrix24 agent tools",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            tools_changed=route,
        )

    def tools(self) -> list[types.Tool]:
        out = [
            types.Tool(
                name=s.name,
                description=s.description,
                input_schema=compact_schema(s.args),
                title=_title(s),
                annotations=_annotations(s.risk, _title(s), _overwrites(s)),
            )
            for s in self.toolbox.specs
        ]
        if self.approvals is not None:
            out.append(
                types.Tool(
                    name=STATUS_TOOL,
                    description="After a write waits for a person: wait for their answer, then run it once.",
                    input_schema={
                        "type": "object",
                        "properties": {
                            "plan": {"type": "string", "description": "the plan id the write gave"}
                        },
                        "required": ["plan"],
                    },
                    title="Wait for an approval",
                    annotations=_annotations("write", "Wait for an approval", True),
                )
            )
        if self.routing:
            spec = loader_spec()
            out.append(
                types.Tool(
                    name=LOADER,
                    description=spec.description,
                    input_schema=compact_schema(spec.args),
                    annotations=_annotations("read", "Load a pack's tools"),
                )
            )
            out.append(
                types.Tool(
                    name=ROUTE_TOOL,
                    description="First step: add the tools a request needs.",
                    input_schema={
                        "type": "object",
                        "properties": {"request": {"type": "string"}},
                        "required": ["request"],
                    },
                    annotations=_annotations("read", "Route a request to the tools it needs"),
                )
            )
        return out

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        from bitrix24_agent_tools.tracing import mcp_span

        with mcp_span(str(params.name)):
            return await self._call_tool_traced(ctx, params)

    async def _call_tool_traced(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        arguments = dict(params.arguments or {})
        if (
            self.routing and params.name == LOADER
        ):  # deferred tools: offer the loaded pack or tool from the next step
            name = str(arguments.get("pack") or "").strip().lower()
            owner = tool_packs().get(name)
            if name not in PACK_NAMES and owner is None:
                return types.CallToolResult(
                    content=[
                        types.TextContent(
                            type="text",
                            text=f"pack must be one of {', '.join(PACK_NAMES)} (or a tool's name)",
                        )
                    ],
                    is_error=True,
                )
            count = len(self.toolbox.specs)
            try:
                self.toolbox.load(owner or name, [name] if owner else None)
            except CallRefused as refused:
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text=refused.reason)], is_error=True
                )
            if len(self.toolbox.specs) != count:
                await ctx.session.send_tool_list_changed()
            names = [name] if owner else [s.name for s in self.toolbox.specs if s.pack == name]
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"loaded {', '.join(names)}")]
            )
        if self.routing and params.name == ROUTE_TOOL:
            chosen = select_tools(str(arguments.get("request") or ""))
            present = {s.name for s in self.toolbox.specs}
            for tool in chosen.tools:
                owner = tool_packs().get(tool)
                if owner is not None and owner in self.toolbox.boundary:
                    self.toolbox.load(owner, [tool])
            added = [s.name for s in self.toolbox.specs if s.name not in present]
            if added:
                await ctx.session.send_tool_list_changed()
            text = (
                f"added tools: {', '.join(added)} (more with {LOADER})"
                if added
                else f"no new tools needed ({chosen.reason})"
            )
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])
        if self.approvals is not None and params.name == STATUS_TOOL:
            text, failed = await self._approval_status(str(arguments.get("plan") or ""))
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=failed)
        answers: dict[str, types.ElicitResult] = {}
        for key, value in (params.input_responses or {}).items():
            if isinstance(value, types.ElicitResult):
                answers[key] = value
        token = _request.set((ctx, answers, {}))  # the answers the client sent; those redeemed this round
        try:
            out = await self.toolbox.arun(params.name, arguments)
        except NeedsInput as needed:
            ask = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message=_message(needed.request), requested_schema=_ANSWER_SCHEMA
                )
            )
            return types.InputRequiredResult(input_requests={needed.key: ask})
        finally:
            _request.reset(token)
        if self.after_call is not None:
            out = self.after_call(out)
        if not self.structured or out.artifact is None or out.is_error:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=out.content)], is_error=out.is_error
            )
        data = json.loads(json.dumps(mask_params(out.artifact), default=str))
        size = f"{len(data)} rows" if isinstance(data, list) else "one object"
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"result in structuredContent.data ({size})")],
            structured_content={"data": data},
        )

    async def _approval_status(self, plan_id: str) -> tuple[str, bool]:
        """Wait (up to ``approval_wait`` s) for the person's answer to the plan's request; on a yes run the
        plan once through the guard, which takes that answer; a no or an expiry writes nothing."""
        import asyncio

        from bitrix24_agent_tools.approvals import waiting_text
        from bitrix24_agent_tools.guard.flow import canonical_key
        from bitrix24_agent_tools.stores import PlanError

        service, toolbox = self.approvals, self.toolbox
        try:
            plan = await asyncio.to_thread(toolbox.guard.show_plan, plan_id, tenant=toolbox.tenant)
        except PlanError as exc:
            return str(exc), True
        request_id = canonical_key(toolbox.tenant, plan.method, plan.params)
        found = await asyncio.to_thread(service.store.find, toolbox.tenant, request_id)
        if not found:
            return f"no approval was asked for plan {plan_id}", True
        latest = found[0]
        if latest.state == "pending" and not latest.expired(service.clock()):
            latest = await service.wait_async(latest.id, self.approval_wait)
        if latest.state == "pending":
            if latest.expired(service.clock()):
                return "nobody answered before the request expired; nothing was written", True
            return f"still {waiting_text(service, latest)}; call again to keep waiting", False
        from bitrix24_agent_tools.approvals import ApprovalConfirmer

        out = await toolbox.aexecute_plan(plan_id, confirm=ApprovalConfirmer(service, wait=0))
        return out.content, out.is_error


# --- CLI
# -----------------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("mcp", help="serve the tools over MCP (stdio by default)")
    parser.add_argument(
        "--packs",
        default=None,
        help="packs to serve (comma-separated; default core, or every pack with --route)",
    )
    parser.add_argument("--route", action="store_true", help="start with core plus a routing tool")
    parser.add_argument(
        "--structured",
        action="store_true",
        help="send results as structuredContent (every field) with a one-line text, not as text",
    )
    parser.add_argument("--sandbox", action="store_true", help="serve a seeded in-process sandbox portal")
    parser.add_argument("--http", metavar="HOST:PORT", help="streamable HTTP instead of stdio")
    parser.add_argument(
        "--token",
        help="one bearer token for a single person; without it, --http serves each person signed in with "
        "their own Bitrix24 account (B24_PUBLIC_URL, B24_DOMAIN, B24_CLIENT_ID, B24_CLIENT_SECRET, "
        "B24_STATE_URL; or --sandbox)",
    )
    parser.add_argument(
        "--plans", default=None, help="plan store (sqlite file; default: the user data directory)"
    )
    parser.set_defaults(func=_cli)


def _client(args: argparse.Namespace) -> Any:
    from bitrix24_agent_tools.client import AsyncBitrix24

    if args.sandbox:
        from bitrix24_agent_tools.sandbox import Portal

        portal = Portal(seed=1)
        return AsyncBitrix24(portal.webhook_url, transport=portal.async_transport(), max_wait=MAX_WAIT)
    return AsyncBitrix24.from_env(max_wait=MAX_WAIT)


def build_app(args: argparse.Namespace) -> tuple[Bitrix24MCP, list[str], Any]:
    """The server the command line describes: packs, routing, and the guard from the one Settings path
    (B24_METHOD_ALLOWLIST, B24_REQUIRE_PLAN, B24_AUDIT_FILE, B24_REDIS_URL and B24_APPROVERS mean here what
    they mean in the CLI and the toolkits). Returns the app, its packs and its plan store."""
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.settings import Settings

    default = ",".join(PACKS) if args.route else "core"
    packs = [p.strip() for p in (args.packs or default).split(",") if p.strip()]
    plans = SqlitePlanStore(args.plans or state_path("plans.sqlite3"))
    settings = Settings.from_env()
    approvals = settings.approvals()  # B24_APPROVERS: writes are asked through the approval service
    guard = settings.guard(ElicitationConfirmer(approvals), plans=plans)
    app = Bitrix24MCP(
        aclient=_client(args),
        packs=packs,
        route=args.route,
        guard=guard,
        structured=args.structured,
        approvals=approvals,
    )
    return app, packs, plans


def _cli(args: argparse.Namespace) -> int:
    import anyio

    from bitrix24_agent_tools.settings import Settings

    if args.http and not args.token:
        host, _, port = args.http.rpartition(":")
        team = _team(args, host, int(port))
        if team is not None:  # each person signs in with their own Bitrix24 account
            import uvicorn

            print(f"connector URL (paste it into your MCP client): {team.settings.resource}", file=sys.stderr)
            uvicorn.run(team.asgi_app(host), host=host, port=int(port), log_level="warning")
            return 0
    app, packs, plans = build_app(args)
    policy = app.toolbox.guard.policy
    if not args.http:
        from mcp.server.stdio import stdio_server

        async def serve_stdio() -> None:
            async with stdio_server() as (read, write):
                await app.server.run(read, write, app.server.create_initialization_options())

        anyio.run(serve_stdio)
        return 0
    host, _, port = args.http.rpartition(":")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not args.token:
        print(
            "refusing to serve beyond loopback without --token (a bearer token clients must send) or a "
            "team configuration (B24_PUBLIC_URL, B24_DOMAIN, B24_CLIENT_ID, B24_CLIENT_SECRET: each person "
            "signs in)"
        )
        return 2
    if not args.token:
        # Any local process can reach a loopback port: without a token it could call a write and answer its
        # own confirmation prompt. Serve reads only.
        print(
            "no --token: serving read-only tools; writes need a bearer token, loopback included",
            file=sys.stderr,
        )
        app = Bitrix24MCP(
            aclient=_client(args),
            packs=packs,
            route=args.route,
            writes=False,
            policy=replace(policy, allow_write=False, allow_destructive=False),
            guard=Settings.from_env().guard(None, plans=plans),
            structured=args.structured,
        )
    import uvicorn

    asgi = app.server.streamable_http_app(host=host)
    served = _bearer(asgi, args.token) if args.token else asgi
    pages = approval_pages(app.approvals)
    if pages is not None:  # the people answer in a browser, signed in through Bitrix24, not with the token
        served = with_approval_pages(served, pages.asgi_app())
    uvicorn.run(served, host=host, port=int(port), log_level="warning")
    return 0


def approval_pages(service: Any, env: Any = None) -> Any:
    """The approval pages the environment describes, served beside MCP at ``/approvals/…``: needs the
    approval service (``B24_APPROVERS``), ``B24_APPROVAL_URL``, the application's ``B24_CLIENT_ID`` /
    ``B24_CLIENT_SECRET`` and the portal ``B24_DOMAIN``; ``B24_APPROVAL_SECRET`` signs sessions (the same in
    every process). None when any is missing."""
    import os

    env = os.environ if env is None else env
    needed = ("B24_APPROVAL_URL", "B24_CLIENT_ID", "B24_CLIENT_SECRET", "B24_DOMAIN")
    if service is None or not all(env.get(k) for k in needed):
        return None
    from bitrix24_agent_tools.approvals.web import ApprovalPages

    domain = str(env["B24_DOMAIN"])
    return ApprovalPages(
        service,
        portal_url=domain if domain.startswith(("http://", "https://")) else f"https://{domain}",
        client_id=str(env["B24_CLIENT_ID"]),
        client_secret=str(env["B24_CLIENT_SECRET"]),
        oauth_server=str(env.get("B24_OAUTH_SERVER") or "https://oauth.bitrix.info/oauth/token/"),
        secret=env.get("B24_APPROVAL_SECRET") or None,
    )


def with_approval_pages(mcp_app: Any, pages: Any) -> Any:
    """One ASGI app: ``/approvals/…`` to the approval pages (their own sign-in), everything else to MCP."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/approvals/"):
            await pages(scope, receive, send)
            return
        await mcp_app(scope, receive, send)

    return app


def _team(args: argparse.Namespace, host: str, port: int) -> Any:
    """The team server the environment (or ``--sandbox``) describes, or None. With ``--sandbox`` everything
    is made here: a seeded sandbox portal served on a loopback port, showing its own sign-in form, with an
    installed application whose redirect URL is this server's callback."""
    from bitrix24_agent_tools.integrations.mcp_team import CALLBACK, TeamMCP, TeamSettings

    public = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    packs = tuple(p.strip() for p in (args.packs or "core").split(",") if p.strip())
    if args.sandbox:
        if host not in ("127.0.0.1", "localhost", "::1"):
            return None  # the sandbox's sign-in form lets anyone be anyone: loopback only
        from bitrix24_agent_tools.sandbox import Portal

        portal = Portal(seed=1)
        portal.signed_in = None  # the person chooses who they are on the portal's sign-in form
        server = portal.serve()
        app = portal.register_app(redirect_uri=f"{public}{CALLBACK}")
        print(f"sandbox portal: {server.url} (sign in as any of its users)", file=sys.stderr)
        settings = TeamSettings(
            public_url=public,
            portal_url=server.url,
            client_id=app.client_id,
            client_secret=app.client_secret,
            oauth_server=f"{server.url}/oauth/token/",
            packs=packs,
        )
        team = TeamMCP(settings)
        team._sandbox = server  # type: ignore[attr-defined]  # kept alive with the server
        return team
    settings_ = TeamSettings.from_env()
    if settings_ is None:
        return None
    if args.packs:
        settings_ = replace(settings_, packs=packs)
    return TeamMCP(settings_)


def _bearer(app: Any, token: str) -> Any:
    import hmac

    from bitrix24_agent_tools.masking import register_secret

    register_secret(token)
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                )
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
                return
        await app(scope, receive, send)

    return guarded
