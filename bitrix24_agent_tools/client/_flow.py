"""The request pipeline, written once as sans-I/O generators that both clients drive (sync and async).

A flow yields what it needs done — :class:`Send` an HTTP request, :class:`Sleep`, :class:`Refresh` the OAuth
token, start flows with :class:`Spawn` and collect each with :class:`Next` — and receives the outcome back. All decisions (limits, retries,
envelope parsing, batch splitting, export ranges) live here; ``client.py`` only performs the I/O.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from bitrix24_agent_tools.client.auth import OAuth, Webhook
from bitrix24_agent_tools.client.errors import (
    Bitrix24Error,
    ConfigError,
    InvalidResponse,
    NetworkError,
    OperatingLimit,
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
    """A successful answer: the ``result`` and, for lists, ``total`` and ``next``; ``time`` is the timing block."""

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
    """Start a flow without waiting for it (the async client runs it alongside the others); ``Next`` collects it."""

    key: Any
    flow: Generator[Any, Any, Any]


@dataclass(frozen=True)
class Next:
    """The next spawned flow to finish, as ``(key, result)`` — whichever finishes first, not the oldest: no round
    waits for its slowest member. Its exception, if it raised, is thrown into the asking flow instead."""


@dataclass(frozen=True)
class Emit:
    """Rows an export has ready: the driver hands them to its caller at once (constant memory), then resumes."""

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


def safe_to_repeat(method: str, params: Mapping[str, Any], api: str, risk: str | None, idempotent: bool,
                   idempotency_key: str | None) -> bool:
    """May this call be sent again after an ambiguous failure (the portal may have run it)?

    Only reads, calls the caller declared idempotent, and REST 3.0 writes carrying an ``Idempotency-Key`` (the
    portal replays those). The risk is the guard's when it judged the call, else the same risk model's (``risk``
    module): a write, or a batch holding one, is never re-sent on a guess.
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


def parse_response(raw: RawResponse, method: str, api: str) -> Response:
    """Turn an HTTP answer into a Response or the right typed error (protocol.md §2, §3)."""
    try:
        data = json.loads(raw.body) if raw.body else None
    except ValueError:
        if raw.status >= 500:
            raise ServerError("INTERNAL_SERVER_ERROR", f"HTTP {raw.status} with a non-JSON body", raw.status, method) from None
        snippet = raw.body[:80].decode("utf-8", "replace").strip()
        raise InvalidResponse(
            "INVALID_RESPONSE", f"HTTP {raw.status}, not JSON (starts with {snippet!r})", raw.status, method
        ) from None
    if not isinstance(data, dict):
        if raw.status >= 500:
            raise ServerError("INTERNAL_SERVER_ERROR", f"HTTP {raw.status} without an envelope", raw.status, method)
        raise InvalidResponse("INVALID_RESPONSE", f"HTTP {raw.status}, JSON but not an envelope", raw.status, method)
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
            raise OperatingLimit(code, message, raw.status, method, reset_at=reset if isinstance(reset, (int, float)) else None)
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


def call_flow(
    settings: Settings,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    api: str = "v2",
    idempotent: bool = False,
    idempotency_key: str | None = None,
    risk: str | None = None,
) -> Flow:
    """One call with limits, retries and a single token refresh; returns a :class:`Response`."""
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z0-9_.]+", method or ""):
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
    repeatable: bool | None = None  # judged on the first failure only: a call that succeeds never parses its params
    refreshed = False
    attempt = 0
    while True:
        attempt += 1
        wait = settings.limiter.acquire(portal) + settings.operating.delay(portal, method)
        if wait > 0:
            yield Sleep(wait)
        request = build_request(settings, method, params, api, idempotency_key)
        token_used = settings.auth.access_token if isinstance(settings.auth, OAuth) else ""
        raw = yield request
        try:
            if isinstance(raw, NetworkError):
                raise raw
            response = parse_response(raw, method, api)
        except TokenExpired:
            if refreshed or not isinstance(settings.auth, OAuth):
                raise
            refreshed = True
            yield Refresh(token_used)
            attempt -= 1  # a refresh is not a failed attempt
            continue
        except Bitrix24Error as exc:
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
        settings.operating.record(portal, method, response.time)
        return response


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


# --- batch ------------------------------------------------------------------------------------------------


def php_query(params: Mapping[str, Any]) -> str:
    """Encode params the way PHP's parse_str reads them back (``fields[TITLE]=x``, ``select[0]=ID``)."""
    pairs: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if not value:
                pairs.append(f"{prefix}=")
            for k, v in value.items():
                walk(f"{prefix}[{quote(str(k), safe='')}]", v)
        elif isinstance(value, (list, tuple)):
            if not value:
                pairs.append(f"{prefix}=")
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            if value is None:
                text = ""
            elif isinstance(value, bool):
                text = "1" if value else "0"
            else:
                text = str(value)
            pairs.append(f"{prefix}={quote(text, safe='')}")

    for key, value in params.items():
        walk(quote(str(key), safe=""), value)
    return "&".join(pairs)


_REF_RE = re.compile(r"^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$")


def _resolve_ref(value: Any, earlier: Mapping[str, Any], local_keys: set[str]) -> Any:
    """Substitute ``$result[key]...`` refs to commands sent in an *earlier* request (the portal only sees its own)."""
    if isinstance(value, Mapping):
        return {k: _resolve_ref(v, earlier, local_keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve_ref(v, earlier, local_keys) for v in value]
    if isinstance(value, str):
        match = _REF_RE.match(value)
        if match and match.group(1) not in local_keys and match.group(1) in earlier:
            current: Any = earlier[match.group(1)]
            for part in re.findall(r"\[([^\]]*)\]", match.group(2)):
                if isinstance(current, list) and part.isdigit() and int(part) < len(current):
                    current = current[int(part)]
                elif isinstance(current, Mapping) and part in current:
                    current = current[part]
                else:
                    return value
            return current
    return value


def normalize_commands(commands: Any) -> list[tuple[str, str, Mapping[str, Any]]]:
    if isinstance(commands, Mapping):
        items = list(commands.items())
    elif isinstance(commands, (list, tuple)):
        items = [(str(i), c) for i, c in enumerate(commands)]
    else:
        raise ConfigError("batch commands must be a dict {key: (method, params)} or a list of (method, params)")
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    for key, command in items:
        params: Mapping[str, Any]
        if isinstance(command, str):
            method, params = command, {}
        elif isinstance(command, (list, tuple)) and len(command) in (1, 2):
            method = command[0]
            params = command[1] if len(command) == 2 and command[1] is not None else {}
        else:
            raise ConfigError(f"batch command {key!r} must be (method, params)")
        if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z0-9_.]+", method):
            raise ConfigError(f"batch command {key!r} has an invalid method name {method!r}")
        if method.lower() == "batch":
            raise ConfigError(f"batch command {key!r} is itself a batch; Bitrix24 refuses nested batches")
        if not isinstance(params, Mapping):
            raise ConfigError(f"params of batch command {key!r} must be a dict")
        if any(str(k).lower() == "auth" for k in params):
            raise ConfigError("batch params must not carry 'auth'")
        out.append((str(key), method, params))
    return out


def _section(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of a batch reply under the command keys. PHP writes an array whose keys are 0..n-1 as a JSON
    list (an empty section is ``[]``), anything else as an object (protocol.md §5)."""
    value = body.get(name)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def batch_flow(settings: Settings, commands: Any, *, halt: bool = False) -> Flow:
    """Any number of commands, 50 per request, results and errors mapped back to the caller's keys."""
    items = normalize_commands(commands)
    if halt and len(items) > BATCH_LIMIT:
        raise ConfigError(
            f"halt=True needs all commands in one request, but {len(items)} > {BATCH_LIMIT}: "
            "split the work or drop halt"
        )
    results: dict[str, Any] = {}
    errors: dict[str, Bitrix24Error] = {}
    totals: dict[str, int] = {}
    nexts: dict[str, int] = {}
    for offset in range(0, len(items), BATCH_LIMIT):
        chunk = items[offset : offset + BATCH_LIMIT]
        local = {key for key, _, _ in chunk}
        cmd = {
            key: f"{method}?{php_query(_resolve_ref(params, results, local))}" for key, method, params in chunk
        }
        response = yield from call_flow(settings, "batch", {"halt": 1 if halt else 0, "cmd": cmd})
        body = response.result if isinstance(response.result, Mapping) else {}
        got = _section(body, "result")
        results.update({k: v for k, v in got.items() if k in local})
        for key, err in _section(body, "result_error").items():
            if isinstance(err, Mapping):
                errors[str(key)] = error_from(
                    str(err.get("error") if err.get("error") is not None else "ERROR"), str(err.get("error_description") or ""), None,
                    next((m for k, m, _ in chunk if k == str(key)), None),
                )
        for key, val in _section(body, "result_total").items():
            if str(val).isdigit():
                totals[str(key)] = int(val)
        for key, val in _section(body, "result_next").items():
            if str(val).isdigit():
                nexts[str(key)] = int(val)
        if halt and errors:
            break
    return BatchResult(results=results, errors=errors, totals=totals, nexts=nexts)


# --- lists --------------------------------------------------------------------------------------------------


def list_items(result: Any) -> list[Any]:
    """The rows of a list method's result: a plain list, ``items`` (crm.item, REST 3.0) or ``tasks``."""
    if isinstance(result, list):
        return result
    if isinstance(result, Mapping):
        for key in ("items", "tasks", "result"):
            rows = result.get(key)
            if isinstance(rows, list):
                return rows
    return []


def id_keys(method: str) -> tuple[str, str]:
    """(filter/order key, key in returned rows) for ID-keyed paging."""
    lower = method.lower()
    if lower.startswith("crm.item."):
        return "id", "id"
    if lower.startswith("tasks.task."):
        return "ID", "id"
    return "ID", "ID"


def _row_id(row: Any, key: str) -> int | None:
    if isinstance(row, Mapping):
        value = row.get(key, row.get(key.upper(), row.get(key.lower())))
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return None


def by_id(method: str, rows: list[Any]) -> list[Any]:
    """An export's rows in ascending ID order (its pages arrive in whatever order their requests finish)."""
    _, rkey = id_keys(method)
    return sorted(rows, key=lambda row: (_row_id(row, rkey) is None, _row_id(row, rkey) or 0))


def export_flow(
    settings: Settings,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    parallel: int = 4,
    progress: Callable[[int, int | None], None] | None = None,
) -> Flow:
    """Every row of a big list exactly once: disjoint ID ranges, ``start=-1`` pages chained in batches (§6).

    Ranges are paged by ``>ID`` cursors (stable under concurrent inserts and deletes, unlike offsets); the last
    range is open-ended so rows added while the export runs are not missed; up to 50 range pages travel in one
    batch request and ``parallel`` batch requests are in flight at once (the async client runs them together).
    """
    params = dict(params or {})
    if not isinstance(params.get("filter", {}), Mapping):
        raise ConfigError("export filter must be a dict")
    fkey, rkey = id_keys(method)
    user_filter = dict(params.get("filter") or {})
    select = params.get("select")
    if isinstance(select, list) and select and "*" not in select and fkey not in select and rkey not in select:
        params["select"] = [*select, fkey]
    base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
    id_filtered = any(re.sub(r"^[^A-Za-z_]+", "", str(k)).lower() == "id" for k in user_filter)

    # Bounds and size in one request: lowest id, highest id, and one counted page for the density.
    probe = yield from batch_flow(
        settings,
        {
            "lo": (method, {**base, "filter": user_filter, "order": {fkey: "ASC"}, "start": -1}),
            "hi": (method, {**base, "filter": user_filter, "order": {fkey: "DESC"}, "start": -1}),
            "n": (method, {**base, "filter": user_filter, "order": {fkey: "ASC"}, "start": 0}),
        },
    )
    if probe.errors:
        raise next(iter(probe.errors.values()))
    lo_rows, hi_rows = list_items(probe.results.get("lo")), list_items(probe.results.get("hi"))
    if not lo_rows:
        return None
    lo, hi = _row_id(lo_rows[0], rkey), _row_id(hi_rows[0], rkey) if hi_rows else None
    total = probe.totals.get("n")
    if lo is None or hi is None or id_filtered:
        ranges = [[0, None]]  # unknown id shape or the caller filters on id: one open range
    else:
        span = hi - lo + 1
        density = min(1.0, (total or span) / span) if span > 0 else 1.0
        width = max(1, int(PAGE * 0.95 / max(density, 1e-9)))
        count = max(1, math.ceil(span / width))  # no cap: a cap makes every range span two pages past ~245k rows
        width = math.ceil(span / count)
        ranges = [[lo - 1 + i * width, lo - 1 + (i + 1) * width] for i in range(count)]
        ranges[-1][1] = None  # open-ended: rows created during the export are included
    retries: dict[int, int] = {}
    indices = list(range(len(ranges)))
    fresh = deque(indices[i : i + BATCH_LIMIT] for i in range(0, len(indices), BATCH_LIMIT))
    waiting: list[int] = []  # ranges with more pages (or a retry) not yet asked again
    in_flight = 0
    done = 0

    def command(index: int) -> tuple[str, dict[str, Any]]:
        cursor, upper = ranges[index]
        flt = {**user_filter, f">{fkey}": cursor}
        if upper is not None:
            flt[f"<={fkey}"] = upper
        return method, {**base, "filter": flt, "order": {fkey: "ASC"}, "start": -1}

    # A pool of ``parallel`` batch requests: a new one starts as soon as any finishes (no round barrier). Fresh
    # ranges go first, in full batches; ranges that need another page follow.
    while fresh or waiting or in_flight:
        while in_flight < max(1, parallel) and (fresh or waiting):
            if fresh:
                group = fresh.popleft()
            else:
                group, waiting = waiting[:BATCH_LIMIT], waiting[BATCH_LIMIT:]
            yield Spawn(tuple(group), batch_flow(settings, {f"r{index}": command(index) for index in group}))
            in_flight += 1
        _, outcome = yield Next()
        in_flight -= 1
        pause = 0.0
        for key, error in outcome.errors.items():
            index = int(key[1:])
            retries[index] = retries.get(index, 0) + 1
            # An operating block lasts at most the 10-minute window: allow a wait per basket on top.
            budget = 2 * settings.retry.attempts + (11 if isinstance(error, OperatingLimit) else 0)
            if not error.retryable or retries[index] > budget:
                raise error
            # The page is asked again from the same cursor; an operating-time block lifts as the oldest
            # one-minute basket drops out (protocol.md §4).
            wait = settings.retry.delay(retries[index], settings.rng)
            pause = max(pause, 60.0 if isinstance(error, OperatingLimit) else wait)
            waiting.append(index)
        for key, result in outcome.results.items():
            index = int(key[1:])
            rows = list_items(result)
            if rows:
                yield Emit(rows)  # ranges are disjoint and each moves forward by ID: no row twice
            done += len(rows)
            last = _row_id(rows[-1], rkey) if rows else None
            if len(rows) >= PAGE and last is not None:
                ranges[index][0] = last
                waiting.append(index)
        if progress is not None:
            progress(done, total)
        if pause:
            yield Sleep(pause)
    return None
