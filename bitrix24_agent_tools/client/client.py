"""Bitrix24 and AsyncBitrix24: the I/O shells that drive the shared pipeline (``_flow``, ``_batch``,
``_paging``) over httpx."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from bitrix24_agent_tools.client._batch import batch_flow
from bitrix24_agent_tools.client._flow import (
    BatchResult,
    Emit,
    Flow,
    Next,
    RawResponse,
    Refresh,
    Response,
    Send,
    Settings,
    Sleep,
    Spawn,
    call_flow,
)
from bitrix24_agent_tools.client._paging import export_flow, in_id_order, iterate_flow
from bitrix24_agent_tools.client.auth import DEFAULT_OAUTH_SERVER, OAuth, TokenStore, Webhook
from bitrix24_agent_tools.client.errors import Bitrix24Error, ConfigError, NetworkError, error_from
from bitrix24_agent_tools.client.limits import (
    LeakyBucketLimiter,
    Limiter,
    OperatingTracker,
    RatePlan,
    RetryPolicy,
)
from bitrix24_agent_tools.masking import get_logger, mask_text
from bitrix24_agent_tools.tracing import request_span

log = get_logger(__name__)

_shared_limiters: dict[tuple[float, int], LeakyBucketLimiter] = {}
_shared_lock = threading.Lock()


def _network_error(exc: Exception, method: str, *, sent: bool) -> NetworkError:
    err = NetworkError("NETWORK_ERROR", f"{type(exc).__name__}: {mask_text(str(exc))}", None, method)
    err.sent = sent  # type: ignore[attr-defined]
    return err


def _was_sent(exc: httpx.HTTPError) -> bool:
    # A refused or unreachable connection never carried the request; anything later is ambiguous.
    return not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _store_lock(auth: OAuth) -> Any:
    """The token store's cross-process refresh lock (RedisTokenStore has one), or a no-op."""
    import contextlib

    lock = getattr(auth.store, "refresh_lock", None)
    return lock(auth.store_key) if lock is not None else contextlib.nullcontext()


def _resolve_auth(auth: Webhook | OAuth | str) -> Webhook | OAuth:
    if isinstance(auth, (Webhook, OAuth)):
        return auth
    if isinstance(auth, str):
        return Webhook(auth)
    raise ConfigError("auth must be a Webhook, an OAuth or a webhook URL string")


def _resolve_limiter(
    limiter: Limiter | str | None, plan: RatePlan, clock: Callable[[], float] | None
) -> Limiter:
    if isinstance(limiter, str):
        from bitrix24_agent_tools import redis_backends  # optional extra: only imported when asked for

        return redis_backends.RedisLimiter.from_url(limiter, plan=plan)
    if limiter is not None:
        return limiter
    if clock is not None:
        return LeakyBucketLimiter.for_plan(plan, clock=clock)
    # One bucket per plan per process, keyed by portal inside: clients of one portal share it.
    with _shared_lock:
        key = (plan.rate, plan.burst)
        if key not in _shared_limiters:
            _shared_limiters[key] = LeakyBucketLimiter.for_plan(plan)
        return _shared_limiters[key]


def auth_from_env(
    env: Mapping[str, str] | None = None, token_store: TokenStore | str | None = None
) -> Webhook | OAuth:
    """Credentials from ``B24_*`` variables (design.md "Configuration"); webhook first, then OAuth."""
    env = os.environ if env is None else env
    url = env.get("B24_WEBHOOK_URL")
    if not url and env.get("B24_WEBHOOK_CODE") and env.get("B24_DOMAIN"):
        user = env.get("B24_WEBHOOK_USER_ID", "1")
        url = f"https://{env['B24_DOMAIN']}/rest/{user}/{env['B24_WEBHOOK_CODE']}/"
    mode = env.get("B24_AUTH_MODE", "").lower()
    if url and mode != "oauth":
        return Webhook(url)
    needed = ["B24_DOMAIN", "B24_ACCESS_TOKEN", "B24_REFRESH_TOKEN", "B24_CLIENT_ID", "B24_CLIENT_SECRET"]
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise ConfigError(
            "no Bitrix24 credentials: set B24_WEBHOOK_URL, or the OAuth variables " + ", ".join(missing)
        )
    return OAuth(
        env["B24_DOMAIN"],
        env["B24_ACCESS_TOKEN"],
        env["B24_REFRESH_TOKEN"],
        env["B24_CLIENT_ID"],
        env["B24_CLIENT_SECRET"],
        oauth_server=env.get("B24_OAUTH_SERVER") or DEFAULT_OAUTH_SERVER,
        token_store=token_store if token_store is not None else env.get("B24_REDIS_URL"),
    )


_C = TypeVar("_C", bound="_Base")
# Keep as many connections alive as an export keeps requests in flight (httpx keeps 20 by default: a 40-wide
# export closed half its connections after each wave and paid a TLS handshake to reopen them).
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=64)


class _Base:
    def __init__(
        self,
        auth: Webhook | OAuth | str,
        *,
        limiter: Limiter | str | None = None,
        plan: str | RatePlan = "standard",
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        max_wait: float | None = None,
    ) -> None:
        self.auth = _resolve_auth(auth)
        self.plan = RatePlan.named(plan)
        self.settings = Settings(
            auth=self.auth,
            limiter=_resolve_limiter(limiter, self.plan, clock),
            operating=OperatingTracker(self.plan.operating_limit, clock=clock or time.time),
            retry=retry or RetryPolicy(),
            rng=random.Random(seed),
            max_wait=max_wait,
        )

    @classmethod
    def from_env(cls: type[_C], **overrides: Any) -> _C:
        """Credentials from ``B24_*``; the options of ``settings.Settings`` (``B24_REDIS_URL`` shares the rate
        bucket and tokens across processes, ``B24_RATE_LIMITER_RATE``/``BURST`` set the plan) unless given."""
        from bitrix24_agent_tools.settings import Settings as EnvSettings  # pydantic-settings: on use only

        for key, value in EnvSettings.from_env().client_options().items():
            overrides.setdefault(key, value)
        return cls(auth_from_env(), **overrides)

    @property
    def portal(self) -> str:
        """The tenant key: the portal's domain."""
        return self.auth.portal

    def auto_parallel(self) -> int:
        """Batch requests an export keeps in flight by default: what the plan's burst holds, less a margin
        for the portal's other callers (standard plan: 40 of 50), at most 48. The limiter still paces every
        request, so a busier bucket makes them wait rather than fail; ``parallel=`` overrides it."""
        return max(1, min(48, self.plan.burst - 10))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def _download_target(self, url: str) -> str:
        """A download URL the portal itself gave (a Drive file's ``DOWNLOAD_URL``): on the portal's own host,
        so a link elsewhere never receives a request from here."""
        parts = urlsplit(str(url))
        if parts.scheme not in ("https", "http") or (parts.hostname or "").lower() != self.portal.lower():
            raise ValueError(f"not a download URL of {self.portal}: {parts.scheme}://{parts.hostname}")
        return str(url)


def _take(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_bytes:
            raise ValueError(f"the file is larger than {max_bytes} bytes")
    return bytes(out)


def _download_error(status: int, url: str) -> Bitrix24Error:
    return error_from(
        "ERROR_NOT_FOUND" if status == 404 else "INTERNAL_SERVER_ERROR",
        f"download answered HTTP {status}",
        status=status,
        method="download",
    )


class Bitrix24(_Base):
    """A synchronous Bitrix24 client. Thread-safe; one instance per portal is enough."""

    def __init__(
        self,
        auth: Webhook | OAuth | str,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: Limiter | str | None = None,
        plan: str | RatePlan = "standard",
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        max_wait: float | None = None,
    ) -> None:
        """``max_wait``: refuse a call (QueueFull, with when to retry; nothing sent) rather than wait longer
        than this for the portal's rate or operating budget — for interactive callers (tools, MCP)."""
        super().__init__(
            auth, limiter=limiter, plan=plan, retry=retry, clock=clock, seed=seed, max_wait=max_wait
        )
        self._http = httpx.Client(transport=transport, timeout=timeout, verify=verify, limits=_LIMITS)
        self._sleep = sleep
        # Batches an export spawns run side by side in threads (the client, limiter and trackers are
        # thread-safe); with an injected clock or sleep (deterministic tests) they run one after another.
        self._threads = clock is None and sleep is time.sleep

    # -- I/O ----------------------------------------------------------------------------------------------
    def _run(self, flow: Flow) -> Any:
        """Run a flow to its end and return its result (only an export emits rows, through ``_drive``)."""
        drive = self._drive(flow)
        try:
            while True:
                next(drive)
        except StopIteration as stop:
            return stop.value

    def _drive(self, flow: Flow, chunks: bool = False) -> Generator[Any, None, Any]:
        """Do each I/O step a flow asks for; yield the rows it emits; return its result. Spawned flows run
        side by side in threads (one pool per drive), ``Next`` hands back whichever finished first; without
        threads a spawned flow runs to its end at once and ``Next`` hands them back in order."""
        import concurrent.futures as cf

        finished: deque[tuple[Any, Any, BaseException | None]] = deque()
        running: dict[cf.Future[Any], Any] = {}
        pool: cf.ThreadPoolExecutor | None = None
        try:
            op = next(flow)
            while True:
                if isinstance(op, Emit):
                    if chunks:
                        yield op.rows
                    else:
                        yield from op.rows
                    op = flow.send(None)
                    continue
                if isinstance(op, Spawn):
                    if self._threads:
                        if pool is None:
                            pool = cf.ThreadPoolExecutor(max_workers=64, thread_name_prefix="b24-batch")
                        running[pool.submit(self._run, op.flow)] = op.key
                    else:
                        try:
                            finished.append((op.key, self._run(op.flow), None))
                        except Exception as exc:
                            finished.append((op.key, None, exc))
                    op = flow.send(None)
                    continue
                if isinstance(op, Next):
                    if not finished and running:
                        done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                        for future in done:
                            key = running.pop(future)
                            error = future.exception()
                            finished.append((key, None if error else future.result(), error))
                    key, value, error = finished.popleft()
                    op = flow.throw(error) if error is not None else flow.send((key, value))
                    continue
                try:
                    value = self._do(op)
                except Exception as exc:  # handed to the flow (batch/parallel may decide)
                    op = flow.throw(exc)
                else:
                    op = flow.send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _do(self, op: Any) -> Any:
        if isinstance(op, Send):
            try:
                reply = self._http.post(op.url, content=op.body, headers=op.headers)
            except httpx.HTTPError as exc:
                return _network_error(exc, op.method, sent=_was_sent(exc))
            return RawResponse(reply.status_code, reply.content, reply.headers)
        if isinstance(op, Sleep):
            self._sleep(op.seconds)
            return None
        if isinstance(op, Refresh):
            self._refresh(op.stale_access_token)
            return None
        raise TypeError(f"unknown pipeline step {op!r}")

    def _refresh(self, stale: str) -> None:
        auth = self.auth
        assert isinstance(auth, OAuth)
        with auth._lock, _store_lock(auth):  # single flight per tenant: this process, then every process
            if auth.access_token != stale or auth.reload().access_token != stale:
                return  # another caller (or process) refreshed already
            url, form = auth.refresh_request()
            try:
                reply = self._http.post(url, data=form)
            except httpx.HTTPError as exc:
                raise _network_error(exc, "oauth/token", sent=_was_sent(exc)) from None
            auth.accept_refresh(reply.status_code, reply.content)

    # -- API ----------------------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        api: str = "v2",
        idempotent: bool = False,
        idempotency_key: str | None = None,
        risk: str | None = None,
        max_wait: float | None = None,
    ) -> Response:
        """Call one method; returns its :class:`Response` or raises a :class:`Bitrix24Error`.

        ``max_wait``: for this call, refuse (QueueFull: nothing sent, ``retry_after`` says when) rather than
        wait longer for the rate or operating budget (the client's own ``max_wait``, if shorter, holds
        too)."""
        flow = call_flow(
            self.settings,
            method,
            params,
            api=api,
            idempotent=idempotent,
            idempotency_key=idempotency_key,
            risk=risk,
            max_wait=max_wait,
        )
        with request_span(str(method), api):
            result: Response = self._run(flow)
        return result

    def batch(self, commands: Any, *, halt: bool = False) -> BatchResult:
        """Run any number of commands, 50 per request; results and errors come back under your keys."""
        result: BatchResult = self._run(batch_flow(self.settings, commands, halt=halt))
        return result

    def iterate(self, method: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Yield every row of a list method, in order. Rows in ID order of a CRM list, crm.item.list or
        tasks.task.list come from the export's ID ranges (``>ID`` with ``start=-1``, the docs' way to every
        row: nothing counted; 8 batch requests in flight) handed over in ID order; any other order or list
        pages by ``start``/``next``. ``export()`` is faster when order does not matter."""
        yield from self._drive(iterate_flow(self.settings, method, params))

    def export(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        parallel: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> list[Any]:
        """Every row of a large list exactly once, fast (ID ranges, ``start=-1``, batched pages), by
        ascending ID."""
        flow = export_flow(
            self.settings, method, params, parallel=parallel or self.auto_parallel(), progress=progress
        )
        return in_id_order(method, list(self._drive(flow, chunks=True)))

    def export_stream(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        parallel: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Iterator[Any]:
        """``export()`` as a stream: each row once, as its page arrives (pages in the order their requests
        finish), in constant memory (rows are not kept)."""
        yield from self._drive(
            export_flow(
                self.settings, method, params, parallel=parallel or self.auto_parallel(), progress=progress
            )
        )

    def download(self, url: str, *, max_bytes: int = 100 * 2**20) -> bytes:
        """The bytes behind a download URL the portal returned (``disk.file.get``'s ``DOWNLOAD_URL``): only
        on the portal's host, at most ``max_bytes``."""
        target = self._download_target(url)
        try:
            with self._http.stream("GET", target) as response:
                if response.status_code != 200:
                    raise _download_error(response.status_code, target)
                return _take(response.iter_bytes(), max_bytes)
        except httpx.HTTPError as exc:
            raise _network_error(exc, "download", sent=True) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Bitrix24:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBitrix24(_Base):
    """The asyncio twin of :class:`Bitrix24`: the same pipeline, awaited."""

    def __init__(
        self,
        auth: Webhook | OAuth | str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | str | None = None,
        plan: str | RatePlan = "standard",
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
        max_wait: float | None = None,
    ) -> None:
        """``max_wait``: refuse a call (QueueFull, with when to retry; nothing sent) rather than wait longer
        than this for the portal's rate or operating budget — for interactive callers (tools, MCP)."""
        super().__init__(
            auth, limiter=limiter, plan=plan, retry=retry, clock=clock, seed=seed, max_wait=max_wait
        )
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, verify=verify, limits=_LIMITS)
        self._sleep = sleep
        self._refresh_locks: dict[int, asyncio.Lock] = {}

    async def _run(self, flow: Flow) -> Any:
        """Run a flow to its end and return its result (only an export emits rows, through ``_drive``)."""
        result: list[Any] = []
        async for _ in self._drive(flow, result):
            pass
        return result[0]

    async def _drive(
        self, flow: Flow, result: list[Any] | None = None, chunks: bool = False
    ) -> AsyncIterator[Any]:
        """Do each I/O step a flow asks for; yield the rows it emits; its result goes into ``result`` (an
        async generator cannot return one). Spawned flows run as tasks alongside; ``Next`` waits for whichever
        finishes first."""
        running: dict[asyncio.Future[Any], Any] = {}
        ready: deque[asyncio.Future[Any]] = deque()
        try:
            op = next(flow)
            while True:
                if isinstance(op, Emit):
                    if chunks:
                        yield op.rows
                    else:
                        for row in op.rows:
                            yield row
                    op = flow.send(None)
                    continue
                if isinstance(op, Spawn):
                    running[asyncio.ensure_future(self._run(op.flow))] = op.key
                    op = flow.send(None)
                    continue
                if isinstance(op, Next):
                    if not ready:
                        done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
                        ready.extend(done)
                    task = ready.popleft()
                    key = running.pop(task)
                    error = task.exception()
                    op = flow.throw(error) if error is not None else flow.send((key, task.result()))
                    continue
                try:
                    value = await self._do(op)
                except Exception as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(value)
        except StopIteration as stop:
            if result is not None:
                result.append(stop.value)
        finally:  # a flow that ends early (an error, a consumer that stops reading) leaves no request running
            for task in running:
                task.cancel()

    async def _do(self, op: Any) -> Any:
        if isinstance(op, Send):
            try:
                reply = await self._http.post(op.url, content=op.body, headers=op.headers)
            except httpx.HTTPError as exc:
                return _network_error(exc, op.method, sent=_was_sent(exc))
            return RawResponse(reply.status_code, reply.content, reply.headers)
        if isinstance(op, Sleep):
            await self._sleep(op.seconds)
            return None
        if isinstance(op, Refresh):
            await self._refresh(op.stale_access_token)
            return None
        raise TypeError(f"unknown pipeline step {op!r}")

    async def _refresh(self, stale: str) -> None:
        auth = self.auth
        assert isinstance(auth, OAuth)
        lock = self._refresh_locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
        async with lock:
            cross = _store_lock(auth)
            await asyncio.to_thread(cross.__enter__)  # another process may hold it; wait off the event loop
            try:
                if auth.access_token != stale or auth.reload().access_token != stale:
                    return
                url, form = auth.refresh_request()
                try:
                    reply = await self._http.post(url, data=form)
                except httpx.HTTPError as exc:
                    raise _network_error(exc, "oauth/token", sent=_was_sent(exc)) from None
                auth.accept_refresh(reply.status_code, reply.content)
            finally:
                cross.__exit__(None, None, None)

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        api: str = "v2",
        idempotent: bool = False,
        idempotency_key: str | None = None,
        risk: str | None = None,
        max_wait: float | None = None,
    ) -> Response:
        flow = call_flow(
            self.settings,
            method,
            params,
            api=api,
            idempotent=idempotent,
            idempotency_key=idempotency_key,
            risk=risk,
            max_wait=max_wait,
        )
        with request_span(str(method), api):
            result: Response = await self._run(flow)
        return result

    async def batch(self, commands: Any, *, halt: bool = False) -> BatchResult:
        result: BatchResult = await self._run(batch_flow(self.settings, commands, halt=halt))
        return result

    async def iterate(self, method: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[Any]:
        """:meth:`Bitrix24.iterate` on asyncio."""
        async for row in self._drive(iterate_flow(self.settings, method, params)):
            yield row

    async def export(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        parallel: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> list[Any]:
        flow = export_flow(
            self.settings, method, params, parallel=parallel or self.auto_parallel(), progress=progress
        )
        return in_id_order(method, [page async for page in self._drive(flow, chunks=True)])

    async def export_stream(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        parallel: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> AsyncIterator[Any]:
        """``export()`` as an async stream: each row once, as its page arrives, in constant memory."""
        async for row in self._drive(
            export_flow(
                self.settings, method, params, parallel=parallel or self.auto_parallel(), progress=progress
            )
        ):
            yield row

    async def download(self, url: str, *, max_bytes: int = 100 * 2**20) -> bytes:
        """:meth:`Bitrix24.download` on asyncio."""
        target = self._download_target(url)
        try:
            async with self._http.stream("GET", target) as response:
                if response.status_code != 200:
                    raise _download_error(response.status_code, target)
                out = bytearray()
                async for chunk in response.aiter_bytes():
                    out += chunk
                    if len(out) > max_bytes:
                        raise ValueError(f"the file is larger than {max_bytes} bytes")
                return bytes(out)
        except httpx.HTTPError as exc:
            raise _network_error(exc, "download", sent=True) from None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBitrix24:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
