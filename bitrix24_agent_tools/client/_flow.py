"""One request, as a sans-I/O generator both clients drive (sync and async): the steps a flow yields and the
call flow.

A flow yields what it needs done — :class:`Send` an HTTP request, :class:`Sleep`, :class:`Refresh` the OAuth
token, start flows with :class:`Spawn` and collect each with :class:`Next` — and receives the outcome back.
All decisions (limits, retries, envelope parsing) live in the flows — this module for one call, ``_batch`` for
batches, ``_paging`` for lists and exports; ``client.py`` only performs the I/O.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from bitrix24_agent_tools.client.auth import OAuth, Webhook
from bitrix24_agent_tools.client.errors import (
    Bitrix24Error,
    ConfigError,
    InvalidResponse,
    NetworkError,
    OperatingLimit,
    QueueFull,
    RateLimited,
    ServerError,
    TokenExpired,
    error_from,
)
from bitrix24_agent_tools.client.limits import Limiter, OperatingTracker, RetryPolicy
from bitrix24_agent_tools.masking import get_logger
from bitrix24_agent_tools.risk import classify

log = get_logger(__name__)

BATCH_LIMIT = 50
PAGE = 50


@dataclass(frozen=True)
class Response:
    """A successful answer: the ``result`` and, for lists, ``total`` and ``next``; ``time`` is the timing
    block."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] | None = None


@dataclass(frozen=True)
class BatchResult:
    """Per-command outcomes of :meth:`Bitrix24.batch`, under the caller's own keys."""

    results: dict[str, Any]
    errors: dict[str, Bitrix24Error]
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)


# --- what a flow asks the I/O shell to do -------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    method: str
    url: str
    body: bytes
    headers: dict[str, str]
    form: bool = False


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Refresh:
    stale_access_token: str


@dataclass(frozen=True)
class Spawn:
    """Start a flow without waiting for it (the async client runs it alongside the others); ``Next``
    collects it."""

    key: Any
    flow: Generator[Any, Any, Any]


@dataclass(frozen=True)
class Next:
    """The next spawned flow to finish, as ``(key, result)`` — whichever finishes first, not the oldest: no
    round waits for its slowest member. Its exception, if it raised, is thrown into the asking flow instead.
    """


@dataclass(frozen=True)
class Emit:
    """Rows an export has ready: the driver hands them to its caller at once (constant memory), then
    resumes."""

    rows: list[Any]


Flow = Generator[Any, Any, Any]


@dataclass
class Settings:
    """What the flows need to know about one client."""

    auth: Webhook | OAuth
    limiter: Limiter
    operating: OperatingTracker
    retry: RetryPolicy
    rng: random.Random = field(default_factory=random.Random)
    max_wait: float | None = None  # refuse (QueueFull) rather than wait longer than this for a slot


def safe_to_repeat(
    method: str,
    params: Mapping[str, Any],
    api: str,
    risk: str | None,
    idempotent: bool,
    idempotency_key: str | None,
) -> bool:
    """May this call be sent again after an ambiguous failure (the portal may have run it)?

    Only reads, calls the caller declared idempotent, and REST 3.0 writes carrying an ``Idempotency-Key`` (the
    portal replays those). The risk is the guard's when it judged the call, else the same risk model's
    (``risk`` module): a write, or a batch holding one, is never re-sent on a guess.
    """
    if idempotent or (api == "v3" and idempotency_key):
        return True
    return (risk if risk is not None else classify(method, params)) == "read"


# --- one call ---------------------------------------------------------------------------------------------


def build_request(
    settings: Settings, method: str, params: Mapping[str, Any], api: str, idempotency_key: str | None
) -> Send:
    body: dict[str, Any] = dict(params)
    if isinstance(settings.auth, OAuth):
        body["auth"] = settings.auth.access_token
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if idempotency_key and api == "v3":
        headers["Idempotency-Key"] = idempotency_key
    try:
        raw = json.dumps(body, ensure_ascii=False, default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params of {method} are not JSON-serialisable: {exc}") from exc
    return Send(method=method, url=settings.auth.url(method, api), body=raw, headers=headers)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# 19 digits in a row may be an integer orjson reads as a float (it keeps 64 bits); ``json`` keeps it whole.
# Found by mapping every digit to "0" and everything else to a space (two C passes; a regex is ten times
# slower on a 130 KB reply).
_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_LONG_RUN = b"0" * 19


def loads(body: bytes | str) -> Any:
    """JSON as the standard library reads it, decoded by orjson (decoding is most of what a client spends on a
    big list's replies). Where the two differ ``json`` reads it: a body orjson refuses (NaN, lone surrogates,
    a byte-order mark) and one holding a run of 19+ digits (an integer beyond 64 bits, which orjson turns into
    a float) — so the result is the same either way, only the speed differs."""
    raw = body.encode() if isinstance(body, str) else body
    if _LONG_RUN not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def parse_response(raw: RawResponse, method: str, api: str) -> Response:
    """Turn an HTTP answer into a Response or the right typed error (protocol.md §2, §3)."""
    try:
        data = loads(raw.body) if raw.body else None
    except ValueError:
        if raw.status >= 500:
            raise ServerError(
                "INTERNAL_SERVER_ERROR", f"HTTP {raw.status} with a non-JSON body", raw.status, method
            ) from None
        snippet = raw.body[:80].decode("utf-8", "replace").strip()
        raise InvalidResponse(
            "INVALID_RESPONSE", f"HTTP {raw.status}, not JSON (starts with {snippet!r})", raw.status, method
        ) from None
    if not isinstance(data, dict):
        if raw.status >= 500:
            raise ServerError(
                "INTERNAL_SERVER_ERROR", f"HTTP {raw.status} without an envelope", raw.status, method
            )
        raise InvalidResponse(
            "INVALID_RESPONSE", f"HTTP {raw.status}, JSON but not an envelope", raw.status, method
        )
    legacy = data.get("error") == "" and (raw.status >= 400 or bool(data.get("error_description")))
    if "error" in data and (data["error"] not in (None, "", {}) or legacy):
        err = data["error"]
        time_block = data.get("time") if isinstance(data.get("time"), dict) else {}
        if isinstance(err, dict):  # REST 3.0
            code = str(err.get("code") or "BITRIX_REST_V3_EXCEPTION")
            message = str(err.get("message") or "")
            for item in err.get("validation") or []:
                if isinstance(item, dict):
                    message += f"; {item.get('field')}: {item.get('message')}"
        else:
            code = str(err)
            message = str(data.get("error_description") or "")
        if code == "OPERATION_TIME_LIMIT":
            reset = time_block.get("operating_reset_at") if isinstance(time_block, dict) else None
            raise OperatingLimit(
                code, message, raw.status, method, reset_at=reset if isinstance(reset, (int, float)) else None
            )
        raise error_from(code, message, raw.status, method)
    if raw.status >= 400:
        raise error_from(f"HTTP_{raw.status}", "error status without an error code", raw.status, method)
    if "result" not in data:
        raise InvalidResponse("INVALID_RESPONSE", "envelope without 'result'", raw.status, method)
    total = data.get("total")
    nxt = data.get("next")
    return Response(
        result=data["result"],
        total=int(total) if isinstance(total, (int, str)) and str(total).isdigit() else None,
        next=int(nxt) if isinstance(nxt, (int, str)) and str(nxt).isdigit() else None,
        time=data.get("time") if isinstance(data.get("time"), dict) else None,
    )


@lru_cache(maxsize=1024)
def valid_method(name: str) -> bool:
    """A dotted method name the portal routes (``crm.deal.list``): letters, digits, ``_`` and ``.``."""
    return re.fullmatch(r"[A-Za-z0-9_.]+", name) is not None


def call_flow(
    settings: Settings,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    api: str = "v2",
    idempotent: bool = False,
    idempotency_key: str | None = None,
    risk: str | None = None,
    max_wait: float | None = None,
) -> Flow:
    """One call with limits, retries and a single token refresh; returns a :class:`Response`. ``max_wait``
    (with the client's own, the shorter holds): refuse with QueueFull rather than wait longer for a slot."""
    if not isinstance(method, str) or not valid_method(method):
        raise ConfigError(f"method must be a dotted name like 'crm.deal.list', got {method!r}")
    if api not in ("v2", "v3"):
        raise ConfigError(f"unknown api version {api!r}: use 'v2' or 'v3'")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"params of {method} must be a dict, got {type(params).__name__}")
    if any(str(k).lower() == "auth" for k in params):
        raise ConfigError("params must not carry 'auth'; the client adds credentials itself")
    portal = settings.auth.portal
    repeatable: bool | None = (
        None  # judged on the first failure only: a call that succeeds never parses its params
    )
    refreshed = False
    attempt = 0
    nested = _nested_methods(method, params)  # a batch's commands: their own operating budgets
    bound = min((w for w in (settings.max_wait, max_wait) if w is not None), default=None)
    while True:
        attempt += 1
        booked: dict[str, float] = {}
        if nested:
            booked = yield from _reserve_operating(settings, portal, method, nested, bound)
        try:
            wait = _book(settings, portal, method, bound)
        except BaseException:
            settings.operating.settle(portal, booked, {})
            raise
        sent = False
        try:
            if wait > 0:
                yield Sleep(wait)
            request = build_request(settings, method, params, api, idempotency_key)
            token_used = settings.auth.access_token if isinstance(settings.auth, OAuth) else ""
            sent = True
            raw = yield request
            if isinstance(raw, NetworkError):
                raise raw
            response = parse_response(raw, method, api)
            if nested:
                _settle_batch(settings, portal, params, response, booked)
                booked = {}
            settings.operating.record(portal, method, response.time)
            return response
        except TokenExpired:
            settings.operating.settle(portal, booked, {})  # refused before running: nothing spent
            booked = {}
            if refreshed or not isinstance(settings.auth, OAuth):
                raise
            refreshed = True
            yield Refresh(token_used)
            attempt -= 1  # a refresh is not a failed attempt
            continue
        except Bitrix24Error as exc:
            # Refused before running (a full bucket, never sent): released; otherwise the portal may have run
            # the commands, so their booking counts as spent.
            unsent = isinstance(exc, RateLimited) or getattr(exc, "sent", True) is False
            settings.operating.settle(portal, booked, {}, assume_spent=sent and not unsent)
            booked = {}
            if repeatable is None:
                repeatable = safe_to_repeat(method, params, api, risk, idempotent, idempotency_key)
            delay = _retry_delay(settings, exc, attempt, not repeatable)
            if delay is None:
                raise
            if isinstance(exc, OperatingLimit):
                settings.operating.blocked_until(portal, method, exc.reset_at)
            log.info("retrying %s after %s (attempt %d, %.2fs)", method, exc.code, attempt, delay)
            yield Sleep(delay)
            continue
        finally:
            if booked:  # closed or failed otherwise mid-call: counted as spent once the request was out
                settings.operating.settle(portal, booked, {}, assume_spent=sent)


def _commands(params: Mapping[str, Any]) -> dict[str, str]:
    """A batch's commands by key, each as the method it calls (lower-cased, as the portal tries them)."""
    cmd = params.get("cmd")
    pairs = (
        cmd.items() if isinstance(cmd, Mapping) else enumerate(cmd if isinstance(cmd, (list, tuple)) else ())
    )
    return {str(key): str(command).split("?", 1)[0].strip().lower() for key, command in pairs}


def _nested_methods(method: str, params: Mapping[str, Any]) -> dict[str, int]:
    """How many commands of each method a batch carries."""
    if method.lower() != "batch":
        return {}
    counts: dict[str, int] = {}
    for name in _commands(params).values():
        if name:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _reserve_operating(
    settings: Settings, portal: str, method: str, nested: Mapping[str, int], max_wait: float | None
) -> Generator[Any, Any, dict[str, float]]:
    """Wait until the batch's nested commands fit their methods' operating budgets, and book them."""
    while True:
        booked, wait = settings.operating.reserve(portal, nested)
        if wait <= 0:
            return booked
        if max_wait is not None and wait > max_wait:
            raise QueueFull(method, wait)
        yield Sleep(wait)


def _settle_batch(
    settings: Settings, portal: str, params: Mapping[str, Any], response: Response, booked: dict[str, float]
) -> None:
    """Each command's processing from the batch's ``result_time`` (batch.md), recorded for its method; an
    ``operating`` the portal reports there is taken as the method's too."""
    names = _commands(params)
    body = response.result if isinstance(response.result, Mapping) else {}
    times = body.get("result_time")
    blocks = times.items() if isinstance(times, Mapping) else enumerate(times or ())
    spent: dict[str, list[float]] = {}
    for key, block in blocks:
        name = names.get(str(key))
        if name is None or not isinstance(block, Mapping):
            continue
        took = block.get("processing", block.get("duration"))
        if isinstance(took, (int, float)):
            spent.setdefault(name, []).append(float(took))
        settings.operating.record(portal, name, block)
    settings.operating.settle(portal, booked, spent)


def _book(settings: Settings, portal: str, method: str, limit: float | None) -> float:
    """Book the request's slot and return its wait; with ``max_wait`` a wait beyond it books nothing and
    raises QueueFull (nothing is sent; the caller is told when to come back instead of hanging)."""
    held = settings.operating.delay(portal, method)
    if limit is None:
        return settings.limiter.acquire(portal) + held
    if held > limit:
        raise QueueFull(method, held)
    try_acquire = getattr(settings.limiter, "try_acquire", None)
    if try_acquire is None:  # UNVERIFIED for shared limiters without a look-ahead: they queue unbounded
        return settings.limiter.acquire(portal) + held
    wait = try_acquire(portal, 1, limit - held)
    if wait is None:
        ahead = getattr(settings.limiter, "wait_for", None)
        raise QueueFull(method, held + (ahead(portal) if ahead else limit))
    return float(wait) + held


def _retry_delay(settings: Settings, exc: Bitrix24Error, attempt: int, write: bool) -> float | None:
    if not exc.retryable or attempt >= settings.retry.attempts:
        return None
    if isinstance(exc, RateLimited):  # refused before processing: always safe to repeat
        return settings.retry.delay(attempt, settings.rng)
    if isinstance(exc, OperatingLimit):
        return 0.0 if exc.reset_at is not None else settings.retry.delay(attempt, settings.rng)
    if isinstance(exc, NetworkError) and getattr(exc, "sent", True) is False:
        return settings.retry.delay(attempt, settings.rng)  # never reached the portal
    if write:
        return None  # ambiguous: the write may have happened; only the caller can say it is idempotent
    return settings.retry.delay(attempt, settings.rng)
