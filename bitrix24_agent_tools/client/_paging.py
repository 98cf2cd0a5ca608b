"""Lists as sans-I/O flows: every row of a big list exactly once (ID ranges, ``start=-1`` pages, a pool of
batches)."""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from bitrix24_agent_tools.client._batch import Query, _quoted, batch_flow, php_query
from bitrix24_agent_tools.client._flow import (
    BATCH_LIMIT,
    PAGE,
    Emit,
    Flow,
    Next,
    Settings,
    Sleep,
    Spawn,
    call_flow,
)
from bitrix24_agent_tools.client.errors import ConfigError, OperatingLimit


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


def in_id_order(method: str, pages: list[list[Any]]) -> list[Any]:
    """An export's pages as one list in ascending ID order. Each page is an ascending run and the ranges are
    disjoint, so ordering the pages by their first ID orders every row (no per-row sort); anything else (rows
    without an ID, a page out of order) falls back to sorting the rows."""
    _, rkey = id_keys(method)
    keyed = []
    for page in pages:
        if not page:
            continue
        first, last = _row_id(page[0], rkey), _row_id(page[-1], rkey)
        if first is None or last is None or last < first:
            return by_id(method, [row for chunk in pages for row in chunk])
        keyed.append((first, last, page))
    keyed.sort(key=lambda item: item[0])
    if any(keyed[i][1] >= keyed[i + 1][0] for i in range(len(keyed) - 1)):
        return by_id(method, [row for chunk in pages for row in chunk])
    return list(chain.from_iterable(page for _, _, page in keyed))


# Lists that page by ID the docs' way (settings/performance/huge-data.md: ID ascending, ``>ID`` the last row's
# ID, ``start=-1`` — no total counted, which on a big table is most of a page's cost). The docs show it on
# crm.item.list and name it for list methods whose ID filter and order work with ``start=-1``; the other CRM
# lists and tasks.task.list are UNVERIFIED beyond that, so a page that does not honour the cursor switches
# the walk back to ``start`` paging (no row twice, none lost).
KEYSET_LISTS = frozenset(
    {
        "crm.deal.list",
        "crm.lead.list",
        "crm.contact.list",
        "crm.company.list",
        "crm.quote.list",
        "crm.activity.list",
        "crm.item.list",
        "tasks.task.list",
    }
)


def _ascending_by_id(order: Any, fkey: str) -> bool:
    """No order, or the list's ID ascending and nothing else."""
    if order is None:
        return True
    if not isinstance(order, Mapping) or len(order) != 1:
        return False
    (key, direction), *_ = order.items()
    return str(key).lower() == fkey.lower() and str(direction).upper() == "ASC"


def iterate_flow(settings: Settings, method: str, params: Mapping[str, Any] | None = None) -> Flow:
    """Every row of a list, in order, one page at a time (``Emit`` per page).

    Where the caller wants the rows in ID order (no ``order`` or ID ascending, no ``start``) of a list in
    :data:`KEYSET_LISTS`, pages follow the docs' recipe for every row (huge-data.md): ``>ID`` the last row's
    ID with ``start=-1`` — nothing counted, stable under inserts and deletes. Otherwise ``start``/``next``
    pages in the caller's order (ID ascending when none is given, so pages neither skip nor repeat).
    """
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"params of {method} must be a dict")
    query = dict(params or {})
    if not isinstance(query.get("filter", {}), Mapping):
        raise ConfigError(f"the filter of {method} must be a dict")
    fkey, rkey = id_keys(method)
    seen_id: int | None = None  # the last row handed over, when walking by ID
    if method.lower() in KEYSET_LISTS and "start" not in query and _ascending_by_id(query.get("order"), fkey):
        user_filter = dict(query.get("filter") or {})
        after = [k for k in user_filter if str(k).lower() == f">{fkey.lower()}"]
        cursor = 0
        for key in after:
            try:
                cursor = max(cursor, int(user_filter.pop(key)))
            except (TypeError, ValueError):
                raise ConfigError(f"{method}: filter {key} must be a number") from None
        select = query.get("select")
        base = {k: v for k, v in query.items() if k not in ("filter", "order", "start")}
        added = False
        if isinstance(select, list) and select and "*" not in select and not {fkey, rkey} & set(select):
            base["select"], added = [*select, fkey], True  # the cursor needs each row's ID; taken off again
        while True:
            page = {
                **base,
                "filter": {**user_filter, f">{fkey}": cursor},
                "order": {fkey: "ASC"},
                "start": -1,
            }
            response = yield from call_flow(settings, method, page)
            rows = list_items(response.result)
            first = _row_id(rows[0], rkey) if rows else None
            last = _row_id(rows[-1], rkey) if rows else None
            if rows and (first is None or last is None or first <= cursor or last < first):
                # The cursor was not honoured: walk again by ``start``, handing over only rows past the last
                # one already handed over (ID order).
                break
            if added:
                for row in rows:
                    if isinstance(row, dict):
                        row.pop(rkey, None)
            if rows:
                yield Emit(rows)
                assert last is not None
                cursor = seen_id = last
            if len(rows) < PAGE:
                return None
        query["order"] = {fkey: "ASC"}
    elif "order" not in query and method.lower().endswith(".list"):
        query["order"] = {fkey: "ASC"}  # a stable order, so pages neither skip nor repeat
    query.setdefault("start", 0)
    while True:
        response = yield from call_flow(settings, method, query)
        rows = list_items(response.result)
        if seen_id is not None:
            rows = [row for row in rows if (_row_id(row, rkey) or 0) > seen_id]
        if rows:
            yield Emit(rows)
        if response.next is None:
            return None
        query["start"] = response.next


def export_flow(
    settings: Settings,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    parallel: int = 4,
    progress: Callable[[int, int | None], None] | None = None,
) -> Flow:
    """Every row of a big list exactly once: disjoint ID ranges, ``start=-1`` pages chained in batches (§6).

    Ranges are paged by ``>ID`` cursors (stable under concurrent inserts and deletes, unlike offsets); the
    last range is open-ended so rows added while the export runs are not missed; up to 50 range pages travel
    in one batch request and ``parallel`` batch requests are in flight at once (the async client runs them
    together). ``progress(done, total)``: ``total`` is estimated from how densely ids sit at both ends of the
    list (exact for contiguous ids, never below ``done``) — nothing is counted.
    """
    params = dict(params or {})
    if not isinstance(params.get("filter", {}), Mapping):
        raise ConfigError("export filter must be a dict")
    fkey, rkey = id_keys(method)
    user_filter = dict(params.get("filter") or {})
    select = params.get("select")
    if (
        isinstance(select, list)
        and select
        and "*" not in select
        and fkey not in select
        and rkey not in select
    ):
        params["select"] = [*select, fkey]
    base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
    id_filtered = any(re.sub(r"^[^A-Za-z_]+", "", str(k)).lower() == "id" for k in user_filter)
    # The caller's own ">ID" bound and the range cursor are one key: the cursor never goes below the bound.
    after = [k for k in user_filter if str(k).lower() == f">{fkey.lower()}"]
    floor = 0
    for key in after:
        try:
            floor = max(floor, int(user_filter[key]))
        except (TypeError, ValueError):
            raise ConfigError(f"export: filter {key} must be a number") from None
    range_filter = {k: v for k, v in user_filter.items() if k not in after}

    # The bounds in one request, with no COUNT (``start=-1``: counting a big table is what a portal's lists
    # spend most on): the first page by ascending id (its rows are the export's first rows) and the first by
    # descending id. How densely ids sit at both ends sizes the ranges.
    probe = yield from batch_flow(
        settings,
        {
            "lo": (method, {**base, "filter": user_filter, "order": {fkey: "ASC"}, "start": -1}),
            "hi": (method, {**base, "filter": user_filter, "order": {fkey: "DESC"}, "start": -1}),
        },
    )
    if probe.errors:
        raise next(iter(probe.errors.values()))
    lo_rows, hi_rows = list_items(probe.results.get("lo")), list_items(probe.results.get("hi"))
    if not lo_rows:
        return None
    lo_ids = [_row_id(row, rkey) for row in lo_rows]
    hi_ids = [_row_id(row, rkey) for row in hi_rows]
    if None in lo_ids or None in hi_ids or not hi_ids or id_filtered:
        ranges = [[0, None]]  # unknown id shape or the caller filters on id: one open range from the start
        total: int | None = None
        done = 0
    else:
        yield Emit(lo_rows)  # the lowest ids: the first rows of the export, not asked again
        done = len(lo_rows)
        first, last, top = lo_ids[0], lo_ids[-1], hi_ids[0]
        assert first is not None and last is not None and top is not None
        if len(lo_rows) < PAGE:
            ranges = [[last, None]]  # the whole list was one page: only rows created since can follow
            total = done
        else:
            bottom = hi_ids[-1]
            assert bottom is not None
            seen = len(lo_rows) + len(hi_rows)
            density = min(1.0, seen / max(1, (last - first + 1) + (top - bottom + 1)))
            total = done + round(density * max(0, top - last))  # estimated: exact for contiguous ids
            span = max(1, top - last)
            # Contiguous ids at both ends: ranges of exactly one page, the fewest requests there can be.
            # Otherwise a margin, so an uneven stretch rarely spills into a second page.
            margin = 1.0 if density >= 1.0 else 0.95
            width = max(1, int(PAGE * margin / max(density, 1e-9)))
            count = max(1, math.ceil(span / width))  # no cap: a cap makes ranges span two pages past ~245k
            width = math.ceil(span / count)
            ranges = [[last + i * width, last + (i + 1) * width] for i in range(count)]
            ranges[-1][1] = None  # open-ended: rows created during the export are included
    retries: dict[int, int] = {}
    indices = list(range(len(ranges)))
    fresh = deque(indices[i : i + BATCH_LIMIT] for i in range(0, len(indices), BATCH_LIMIT))
    waiting: list[int] = []  # ranges with more pages (or a retry) not yet asked again
    in_flight = 0

    # Every range page asks the same thing but its bounds: that part is encoded once (php_query's own way).
    common = php_query({**base, "order": {fkey: "ASC"}, "start": -1})
    if range_filter:
        common += "&" + php_query({"filter": range_filter})
    above, upto = f"&filter[{_quoted('>' + fkey)}]=", f"&filter[{_quoted('<=' + fkey)}]="

    def command(index: int) -> tuple[str, Query]:
        cursor, upper = ranges[index]
        query = f"{common}{above}{int(max(cursor or 0, floor))}"
        return method, Query(query if upper is None else f"{query}{upto}{int(upper)}")

    # A pool of ``parallel`` batch requests: a new one starts as soon as any finishes (no round barrier).
    # Fresh ranges go first, in full batches; ranges that need another page follow.
    # A batch is as large as the method's operating budget holds (limits.md): all 50 while the budget is
    # wide, fewer when a page is costly or the window nearly spent, so no batch waits for room it cannot
    # have and none holds more than one window can.
    portal = settings.auth.portal
    while fresh or waiting or in_flight:
        room, most = settings.operating.calls_that_fit(portal, method)
        while in_flight < max(1, parallel) and (fresh or waiting):
            if fresh:
                group = fresh.popleft()
            else:
                group, waiting = waiting[:BATCH_LIMIT], waiting[BATCH_LIMIT:]
            size = min(len(group), room if room > 0 else most)
            if size < len(group):
                fresh.appendleft(group[size:])
                group = group[:size]
            room = max(0, room - size)
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
            upper = ranges[index][1]
            # A full page may have more behind it, unless it ends at its range's upper bound (nothing can
            # follow).
            if len(rows) >= PAGE and last is not None and (upper is None or last < upper):
                ranges[index][0] = last
                waiting.append(index)
        if progress is not None:
            progress(done, max(total, done) if total is not None else None)
        if pause:
            yield Sleep(pause)
    return None
