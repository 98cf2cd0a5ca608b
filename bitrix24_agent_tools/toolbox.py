"""Toolbox: the one place where a tool call from any face becomes guarded portal calls and a short, masked
result.

Faces (LangChain, LlamaIndex, MCP, CLI) only ever call :meth:`Toolbox.run` / :meth:`Toolbox.arun`. Neither
raises for bad model input, refusals or portal errors: the model gets one line it can act on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Generator, Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from bitrix24_agent_tools import tracing
from bitrix24_agent_tools._fetch import fetch_public
from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24, Bitrix24Error
from bitrix24_agent_tools.guard import AskPerson, Decision, Guard, PortalCall
from bitrix24_agent_tools.masking import get_logger, mask_params, mask_text
from bitrix24_agent_tools.packs import (
    PACKS,
    Call,
    CallRefused,
    Fetch,
    ToolContext,
    ToolOutput,
    ToolSpec,
    adrive,
    drive,
    specs_for,
)
from bitrix24_agent_tools.router import RouteDecision, route

log = get_logger(__name__)
MAX_ERROR = 300
# A tool call waits at most this long for the portal's rate or operating budget; beyond it the model is told
# when to try again (QueueFull, nothing sent) instead of the call hanging in a queue without bound.
MAX_WAIT = 10.0
MAX_DEPTH = 32


# Exceptions a framework uses to pause a run while a person answers (LangGraph's interrupt, a LlamaIndex
# workflow waiting for an event, our MCP InputRequired round): they must reach the framework. Each face
# declares its own with ``register_pause`` when it is imported; the core knows no framework. Anything else a
# confirmer raises — a bug, a closed terminal, a timeout — counts as a "no".
_PAUSES: set[type[BaseException]] = set()


def register_pause(*kinds: type[BaseException]) -> None:
    """Declare exceptions that pause a run for a person's answer (they pass through the guard untouched)."""
    _PAUSES.update(kinds)


def _is_pause(exc: BaseException) -> bool:
    return not isinstance(exc, Exception) or isinstance(exc, tuple(_PAUSES))


def _answered(flow: Generator[Any, Any, ToolOutput]) -> Generator[Any, Any, ToolOutput]:
    """A tool's flow with the person's answers settled, written once for both drivers
    (``_steps.drive``/``adrive`` perform the steps): a confirmer that fails is a "no"; a pause its face
    declared closes the flow first — which releases what the guard holds, the in-flight idempotency key — and
    reaches the framework."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, AskPerson):
                try:
                    answer = yield step
                except BaseException as exc:
                    if _is_pause(exc):
                        flow.close()
                        raise
                    answer = _failed_confirmer(exc)
                step = flow.send(answer)
                continue
            try:
                value = yield step
            except Exception as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(value)
    except StopIteration as stop:
        result: ToolOutput = stop.value
        return result
    finally:
        flow.close()  # ended early (the framework's pause, a driver that stops): nothing stays claimed


def validation_message(exc: ValidationError) -> str:
    """Pydantic errors as one short line: ``invalid arguments: limit: must be ≤ 500; entity: required``."""
    parts = []
    for err in exc.errors()[:4]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = f" (+{len(exc.errors()) - 4} more)" if len(exc.errors()) > 4 else ""
    return mask_text("invalid arguments: " + "; ".join(parts) + more)[:MAX_ERROR]


def _short(text: str) -> str:
    text = mask_text(" ".join(str(text).split()))
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


class Toolbox:
    """ToolSpecs of some packs, bound to a client (sync, async or both) and a guard."""

    def __init__(
        self,
        client: Bitrix24 | None = None,
        aclient: AsyncBitrix24 | None = None,
        *,
        packs: Iterable[str] = ("core",),
        guard: Guard | None = None,
        context: ToolContext | None = None,
        tenant: str | None = None,
        loader: bool = False,
        boundary: Iterable[str] | None = None,
        files_dir: str | None = None,
        allow_private_urls: bool = False,
        max_wait: float | None = MAX_WAIT,
    ) -> None:
        """``files_dir``: the one local folder file tools may read uploads from and write downloads to
        (default ``B24_FILES_DIR``; none: such tools are refused). ``allow_private_urls``: uploads from URLs
        may reach private and loopback addresses (off: a model cannot make this process read its network).
        ``max_wait``: the longest a tool's portal call waits for the plan's rate or operating budget; beyond
        it the tool answers when to try again (``None``: wait as long as it takes)."""
        if client is None and aclient is None:
            raise ValueError("a Toolbox needs a client: Bitrix24(...) and/or AsyncBitrix24(...)")
        self.client = client
        self.aclient = aclient
        self.packs = tuple(dict.fromkeys(packs))
        # The operator's packs: routing, the loader and b24_load_pack narrow or widen within these, never
        # beyond (default: the packs given here).
        self.boundary = tuple(dict.fromkeys(boundary)) if boundary is not None else self.packs
        unknown = [p for p in self.packs if p not in self.boundary]
        if unknown:
            raise ValueError(
                f"packs {', '.join(unknown)} lie outside the boundary {', '.join(self.boundary)}"
            )
        self.guard = guard or Guard()
        portal = (client or aclient).portal  # type: ignore[union-attr]
        self.tenant = tenant or portal
        base = context or ToolContext()
        from bitrix24_agent_tools.packs.preflight import MetadataCache

        cache = base.extra.get("metadata_cache") or MetadataCache()  # shared by toolboxes made from this one
        self.allow_private_urls = allow_private_urls
        self.max_wait = max_wait
        files = {"files_dir": files_dir} if files_dir else {}
        self.context = replace(
            base,
            tenant=self.tenant,
            extra={**base.extra, **files, "packs": self.packs, "metadata_cache": cache},
        )
        self.specs: list[ToolSpec] = specs_for(self.packs)
        if loader:
            from bitrix24_agent_tools.packs.loader import loader_spec

            self.specs.append(loader_spec())
        self._by_name = {s.name: s for s in self.specs}
        self.route: RouteDecision | None = None

    def for_request(self, text: str, *, budget: int | None = None) -> Toolbox:
        """A toolbox with only the packs the router picks for ``text`` (same client, guard and context).

        With ``budget`` (o200k tokens, e.g. 400): below the pack level — only the tools the request points to,
        within the budget, and ``b24_load_pack`` for every other tool or pack (``selection.select_tools``)."""
        decision = route(text)
        inside = self._inside
        if budget is None:
            box = Toolbox(
                self.client,
                self.aclient,
                packs=inside(decision.packs),
                guard=self.guard,
                context=self.context,
                tenant=self.tenant,
                boundary=self.boundary,
                allow_private_urls=self.allow_private_urls,
                max_wait=self.max_wait,
            )
            box.route = decision
            return box
        from bitrix24_agent_tools.selection import select_tools

        chosen = select_tools(text, budget)
        box = Toolbox(
            self.client,
            self.aclient,
            packs=inside(chosen.packs or ("core",)),
            guard=self.guard,
            context=self.context,
            tenant=self.tenant,
            loader=True,
            boundary=self.boundary,
            allow_private_urls=self.allow_private_urls,
            max_wait=self.max_wait,
        )
        every = {s.name: s for s in box.specs}
        box.specs = [
            every[name] for name in chosen.tools if name in every
        ]  # the selection's order: most wanted first
        box._by_name = {s.name: s for s in box.specs}
        box.route = decision
        return box

    def _inside(self, packs: Iterable[str]) -> tuple[str, ...]:
        """``packs`` within the operator's boundary (the boundary's first pack when none is)."""
        kept = tuple(p for p in packs if p in self.boundary)
        return kept or self.boundary[:1]

    def spec(self, name: str) -> ToolSpec:
        return self._by_name[name]

    def for_scopes(self, scopes: Iterable[str]) -> Toolbox:
        """A view of this toolbox without the typed tools whose methods the credential's scopes cannot call
        (fewer tokens, no dead ends); this toolbox is left as it is. Generic ``b24_<pack>_call`` tools stay:
        the guard and the portal judge those."""
        box = Toolbox(
            self.client,
            self.aclient,
            packs=self.packs,
            guard=self.guard,
            context=self.context,
            tenant=self.tenant,
            boundary=self.boundary,
            allow_private_urls=self.allow_private_urls,
            max_wait=self.max_wait,
        )
        box.specs = [s for s in self.specs if s.name not in _unreachable(self.specs, scopes)]
        box._by_name = {s.name: s for s in box.specs}
        box.route = self.route
        return box

    def restrict_to_scopes(self, scopes: Iterable[str]) -> list[str]:
        """:meth:`for_scopes`, applied to this toolbox in place; returns the names removed."""
        removed = _unreachable(self.specs, scopes)
        self.specs = [s for s in self.specs if s.name not in removed]
        for name in removed:
            self._by_name.pop(name, None)
        return removed

    def restrict_to_portal_scopes(self) -> list[str]:
        """Ask the portal (``scope``) which scopes this credential has, then :meth:`restrict_to_scopes`."""
        if self.client is None:
            raise ValueError("restrict_to_portal_scopes needs a sync client; use restrict_to_scopes(...)")
        scopes = self.client.call("scope").result
        return self.restrict_to_scopes(scopes if isinstance(scopes, list) else [])

    def load(self, pack: str, tools: Iterable[str] | None = None) -> None:
        """Offer one more pack's tools (or only the named ones of it) from now on (what ``b24_load_pack``
        asks for). A pack outside the operator's boundary is refused (CallRefused)."""
        if pack not in self.boundary:
            raise CallRefused(
                f"pack {pack} is not enabled here (enabled: {', '.join(self.boundary)}); ask the operator",
                code="NOT_ALLOWED",
            )
        wanted = set(tools) if tools is not None else None
        added = [
            s
            for s in specs_for([pack])
            if s.name not in self._by_name and (wanted is None or s.name in wanted)
        ]
        if pack not in self.packs:
            self.packs = (*self.packs, pack)
            self.context = replace(self.context, extra={**self.context.extra, "packs": self.packs})
        self.specs = [
            *[s for s in self.specs if s.pack != "loader"],
            *added,
            *[s for s in self.specs if s.pack == "loader"],
        ]
        self._by_name.update({s.name: s for s in added})

    # -- the shared flow ------------------------------------------------------------------------------------
    def _flow(self, name: str, raw_args: Any) -> Generator[PortalCall | AskPerson | Fetch, Any, ToolOutput]:
        spec = self._by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(self._by_name))
            shown = str(name)[:60]
            if any(name == s.name for p in PACKS.values() for s in p.specs):
                return ToolOutput(
                    _short(f"tool {shown} is not in the active packs; available: {known}"), is_error=True
                )
            return ToolOutput(_short(f"unknown tool {shown!r}; available: {known}"), is_error=True)
        if isinstance(raw_args, (str, bytes)):
            try:
                raw_args = json.loads(raw_args or "{}")
            except (ValueError, RecursionError):
                return ToolOutput("invalid arguments: expected a JSON object", is_error=True)
        if raw_args is None:
            raw_args = {}
        if not isinstance(raw_args, Mapping):
            return ToolOutput(
                f"invalid arguments: expected an object, got {type(raw_args).__name__}", is_error=True
            )
        if _depth(raw_args) > MAX_DEPTH:
            return ToolOutput(f"invalid arguments: nested deeper than {MAX_DEPTH} levels", is_error=True)
        try:
            args = spec.args.model_validate(dict(raw_args))
        except ValidationError as exc:
            return ToolOutput(validation_message(exc), is_error=True)
        except RecursionError:
            return ToolOutput(f"invalid arguments: nested deeper than {MAX_DEPTH} levels", is_error=True)
        try:
            gen = spec.handler(self.context, args)
            call = next(gen)
            while True:
                if isinstance(call, Fetch):
                    try:
                        data = yield call
                    except (ValueError, Bitrix24Error) as exc:
                        call = gen.throw(exc)
                    else:
                        call = gen.send(data)
                    continue
                if not isinstance(call, Call):
                    raise TypeError(f"handler of {spec.name} yielded {type(call).__name__}, not Call")
                try:
                    value = yield from self.guard.flow(spec, call, tenant=self.tenant, packs=self.packs)
                except (CallRefused, Bitrix24Error) as exc:
                    call = gen.throw(exc)
                else:
                    call = gen.send(value)
        except StopIteration as stop:
            out: ToolOutput = stop.value
            try:
                if isinstance(out.artifact, Mapping) and out.artifact.get("loaded_pack") in PACKS:
                    self.load(str(out.artifact["loaded_pack"]))
                elif isinstance(out.artifact, Mapping) and out.artifact.get("loaded_tools"):
                    self.load(str(out.artifact["pack"]), out.artifact["loaded_tools"])
            except CallRefused as refused:
                return ToolOutput(_short(refused.reason), {"refused": refused.code}, is_error=True)
            # Artifacts reach the client too (LangChain artifact, MCP structuredContent): masked like the
            # text.
            return ToolOutput(mask_text(out.content), mask_params(out.artifact), out.is_error)
        except CallRefused as refused:
            return ToolOutput(_short(refused.reason), {"refused": refused.code}, is_error=True)
        except Bitrix24Error as err:
            return ToolOutput(_short(err.short()), {"error": err.code, "status": err.status}, is_error=True)
        except (ValueError, TypeError) as exc:
            return ToolOutput(_short(f"invalid arguments: {exc}"), is_error=True)
        except Exception as exc:  # a bug of ours must not crash the agent loop; it is logged in full
            log.exception("tool %s failed", name)
            return ToolOutput(_short(f"internal error in {name}: {type(exc).__name__}: {exc}"), is_error=True)

    # -- drivers --------------------------------------------------------------------------------------------
    def run(self, name: str, raw_args: Any = None) -> ToolOutput:
        """Run a tool synchronously. Never raises for bad input, refusals or portal errors."""
        with tracing.tool_span(str(name)) as current:
            out = self._drive_sync(self._flow(name, raw_args))
            tracing.outcome(current, out.is_error, _code(out))
            return out

    async def arun(self, name: str, raw_args: Any = None) -> ToolOutput:
        """Run a tool on asyncio (the async client if there is one, else the sync client in a thread)."""
        with tracing.tool_span(str(name)) as current:
            out = await self._drive_async(self._flow(name, raw_args))
            tracing.outcome(current, out.is_error, _code(out))
            return out

    def execute_plan(self, plan_id: str, confirm: Any = None) -> ToolOutput:
        """Run a stored plan once (a person's command, e.g. ``b24-agent-tools call --execute-plan``).

        It is checked again like a new call (allowlist, deny patterns, policy) and ``confirm`` (else the
        guard's confirmer) is shown everything it does and answers for it.
        """
        return self._drive_sync(self._plan_flow(plan_id, confirm))

    async def aexecute_plan(self, plan_id: str, confirm: Any = None) -> ToolOutput:
        """:meth:`execute_plan` on asyncio."""
        return await self._drive_async(self._plan_flow(plan_id, confirm))

    def _plan_flow(self, plan_id: str, confirm: Any = None) -> Generator[Any, Any, ToolOutput]:
        from bitrix24_agent_tools.packs.render import dumps
        from bitrix24_agent_tools.stores import PlanError

        try:
            response = yield from self.guard.plan_flow(
                plan_id, tenant=self.tenant, specs=self._by_name, packs=self.packs, confirm=confirm
            )
        except PlanError as exc:
            return ToolOutput(_short(str(exc)), is_error=True)
        except CallRefused as refused:
            return ToolOutput(_short(refused.reason), is_error=True)
        except Bitrix24Error as err:
            return ToolOutput(_short(err.short()), is_error=True)
        return ToolOutput(f"plan {plan_id} executed: {dumps(response.result)[:MAX_ERROR]}", response.result)

    def _drive_sync(self, flow: Generator[Any, Any, ToolOutput]) -> ToolOutput:
        steps = _answered(flow)
        try:
            return drive(steps, self._do_sync)
        finally:
            steps.close()

    def _portal_kwargs(self, step: PortalCall) -> dict[str, Any]:
        c = step.call
        return {"api": c.api, "idempotency_key": c.idempotency_key, "risk": c.risk, "max_wait": self.max_wait}

    def _do_sync(self, step: Any) -> Any:
        if isinstance(step, Fetch):
            if not step.portal:
                return fetch_public(step, allow_private=self.allow_private_urls)
            if self.client is None:
                raise CallRefused("this toolbox has only an async client; use arun()", code="NO_CLIENT")
            return self.client.download(step.url, max_bytes=step.max_bytes)
        if isinstance(step, PortalCall):
            if self.client is None:
                raise CallRefused("this toolbox has only an async client; use arun()", code="NO_CLIENT")
            c = step.call
            return self.client.call(c.method, dict(c.params), **self._portal_kwargs(step))
        if isinstance(step, AskPerson):
            timeout = self.guard.confirm_timeout
            confirm = step.confirm or self.guard.confirm
            if _is_async(confirm):
                return _run_coroutine(confirm(step.request), timeout)  # type: ignore[misc]
            if timeout is not None:
                import concurrent.futures
                import contextvars

                pool = concurrent.futures.ThreadPoolExecutor(1)
                try:
                    context = contextvars.copy_context()  # a framework's pause (LangGraph) reads its context
                    answer = pool.submit(context.run, confirm, step.request).result(timeout=timeout)  # type: ignore[arg-type]
                finally:
                    pool.shutdown(wait=False)
            else:
                answer = confirm(step.request)  # type: ignore[misc]
            if inspect.isawaitable(answer):
                answer = _run_coroutine(answer, timeout)
            return answer
        raise TypeError(f"unknown step {step!r}")

    async def _drive_async(self, flow: Generator[Any, Any, ToolOutput]) -> ToolOutput:
        steps = _answered(flow)
        try:
            return await adrive(steps, self._do_async)
        finally:
            steps.close()

    async def _do_async(self, step: Any) -> Any:
        if isinstance(step, Fetch):
            if step.portal and self.aclient is not None:
                return await self.aclient.download(step.url, max_bytes=step.max_bytes)
            return await asyncio.to_thread(self._do_sync, step)
        if isinstance(step, PortalCall):
            c = step.call
            if self.aclient is not None:
                return await self.aclient.call(c.method, dict(c.params), **self._portal_kwargs(step))
            assert self.client is not None
            return await asyncio.to_thread(
                self.client.call, c.method, dict(c.params), **self._portal_kwargs(step)
            )
        if isinstance(step, AskPerson):
            timeout = self.guard.confirm_timeout
            confirm = step.confirm or self.guard.confirm
            if _is_async(confirm) or timeout is None:
                answer = confirm(step.request)  # type: ignore[misc]
            else:  # a blocking confirmer runs in a thread so that its silence can time out
                answer = await asyncio.wait_for(asyncio.to_thread(confirm, step.request), timeout)  # type: ignore[arg-type]
            if inspect.isawaitable(answer):
                answer = await (asyncio.wait_for(answer, timeout) if timeout is not None else answer)
            return answer
        raise TypeError(f"unknown step {step!r}")


def _unreachable(specs: Iterable[ToolSpec], scopes: Iterable[str]) -> list[str]:
    """Typed tools none of whose own methods the granted scopes can call."""
    from bitrix24_agent_tools.packs.preflight import METHODS as CHECKS
    from bitrix24_agent_tools.risk import scope_of

    granted = {s.lower() for s in scopes}
    helpers = {*CHECKS, "user.current", "tasks.task.get"}  # reads a tool makes to check or name things
    removed = []
    for spec in specs:
        main = [m for m in spec.methods if m not in helpers] or list(spec.methods)
        if spec.generic or not main:
            continue
        # Kept when the credential can call at least one of the methods the tool is about.
        if not any(scope_of(m) is None or scope_of(m) in granted for m in main):
            removed.append(spec.name)
    return removed


def _code(out: ToolOutput) -> str | None:
    """A failed tool's code (a refusal's or the portal's error), for its trace."""
    if not out.is_error:
        return None
    artifact = out.artifact if isinstance(out.artifact, Mapping) else {}
    return str(artifact.get("refused") or artifact.get("error") or "TOOL_ERROR")


def _failed_confirmer(exc: BaseException) -> Decision:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or type(exc).__name__ == "TimeoutError":
        return Decision.reject("no answer from the reviewer in time")
    log.warning("confirmation callback failed (%s); treated as a rejection", type(exc).__name__)
    return Decision.reject(f"the confirmation step failed ({type(exc).__name__}); nothing was written")


def _is_async(confirm: Any) -> bool:
    return inspect.iscoroutinefunction(confirm) or (
        callable(confirm) and inspect.iscoroutinefunction(confirm.__call__)
    )


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, (list, tuple)):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _run_coroutine(awaitable: Any, timeout: float | None = None) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(asyncio.wait_for(awaitable, timeout) if timeout is not None else awaitable))
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
    raise RuntimeError("an async confirmer cannot be used from run() inside a running event loop; use arun()")


async def _await(awaitable: Any) -> Any:
    return await awaitable
