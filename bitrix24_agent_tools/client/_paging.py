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
from bitrix24_agent_tools.client.errors import ConfigError, InvalidResponse, OperatingLimit
from bitrix24_agent_tools.masking import get_logger

log = get_logger(__name__)


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


class CursorIgnored(InvalidResponse):
    """A list answered a ``>ID`` cursor page with rows at or below the cursor: it does not page by ID."""

    def __init__(self, method: str, index: int) -> None:
        super().__init__(
            "CURSOR_IGNORED",
            f"{method} answered a page after an ID with rows not above it: it does not filter by >ID, so it "
            "cannot be exported by ID ranges",
            None,
            method,
        )
        self.range_index = index


def _without(rows: list[Any], key: str | None) -> list[Any]:
    """``rows`` with ``key`` taken off each (an ID only the cursor asked for)."""
    if key is not None:
        for row in rows:
            if isinstance(row, dict):
                row.pop(key, None)
    return rows


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


ITERATE_PARALLEL = 8  # batch requests an in-order walk keeps in flight: at most ~20,000 rows wait for order


def iterate_flow(settings: Settings, method: str, params: Mapping[str, Any] | None = None) -> Flow:
    """Every row of a list, in order (``Emit`` per page).

    Where the caller wants the rows in ID order (no ``order`` or ID ascending, no ``start``) of a list in
    :data:`KEYSET_LISTS`, the rows come from the export's ID ranges (``>ID`` cursors with ``start=-1``,
    the docs' way to every row: nothing counted, stable under inserts and deletes; 50 pages a request,
    :data:`ITERATE_PARALLEL` requests in flight) handed over in ID order. Otherwise ``start``/``next``
    pages in the caller's order (ID ascending when none is given, so pages neither skip nor repeat). A list
    that turns out not to honour the cursor is walked on by ``start`` past the rows already handed over.
    """
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"params of {method} must be a dict")
    query = dict(params or {})
    if not isinstance(query.get("filter", {}), Mapping):
        raise ConfigError(f"the filter of {method} must be a dict")
    fkey, _ = id_keys(method)
    handed = [0]  # rows handed over so far
    if method.lower() in KEYSET_LISTS and "start" not in query and _ascending_by_id(query.get("order"), fkey):
        walk = export_flow(
            settings,
            method,
            {k: v for k, v in query.items() if k != "order"},
            parallel=ITERATE_PARALLEL,
            ordered=True,
            only_selected=True,
        )
        try:
            yield from _counted(walk, handed)
            return None
        except CursorIgnored:
            log.warning("%s does not page by >ID: walking it by start", method)
    if "order" not in query and method.lower().endswith(".list"):
        query["order"] = {fkey: "ASC"}  # a stable order, so pages neither skip nor repeat
    query.setdefault("start", 0)
    skip = handed[0]  # in ID order, these were handed over already
    while True:
        response = yield from call_flow(settings, method, query)
        rows = list_items(response.result)
        if skip:
            rows, skip = rows[skip:], max(0, skip - len(rows))
        if rows:
            yield Emit(rows)
        if response.next is None:
            return None
        query["start"] = response.next


def _counted(flow: Flow, handed: list[int]) -> Flow:
    """``flow`` as it is, counting the rows it emits into ``handed[0]``."""
    try:
        op = next(flow)
        while True:
            if isinstance(op, Emit):
                handed[0] += len(op.rows)
            try:
                value = yield op
            except GeneratorExit:
                flow.close()
                raise
            except BaseException as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(value)
    except StopIteration as stop:
        return stop.value


_OPERATOR = re.compile(r"^([^A-Za-z_]*)(.*)$")  # a filter key: its operator prefix and its field


def export_flow(
    settings: Settings,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    parallel: int = 4,
    progress: Callable[[int, int | None], None] | None = None,
    ordered: bool = False,
    only_selected: bool = False,
) -> Flow:
    """Every row of a big list exactly once: disjoint ID ranges, ``start=-1`` pages chained in batches (§6).

    ``ordered``: rows are handed over in ascending ID order — a range's pages wait until every range below it
    is complete, and no batch starts more than ``parallel`` batches ahead of the lowest incomplete range, so
    at most about ``parallel`` × 2,500 rows wait at once. ``only_selected``: an ID the export adds to a
    narrow ``select`` (its cursor needs it) is taken off the rows again.

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
    strip = rkey if only_selected and params.get("select") is not select else None
    base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
    # The caller's own bounds on ID (">", ">=", "<", "<=") become the ranges' floor and ceiling: the range
    # cursor and upper bound are the same keys, so they are never lost and never overwritten. Any other
    # condition on ID (a list, an exclusion) keeps the export to one walk from the floor up.
    floor, ceiling, id_filtered, bounds = 0, None, False, []
    for key, value in user_filter.items():
        split = _OPERATOR.match(str(key))
        op, name = (split.group(1), split.group(2)) if split else ("", str(key))
        if name.lower() != fkey.lower():
            continue
        if op not in (">", ">=", "<", "<="):
            id_filtered = True
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"export: filter {key} must be a number") from None
        bounds.append(key)
        if op.startswith(">"):
            floor = max(floor, number if op == ">" else number - 1)
        else:
            top_id = number if op == "<=" else number - 1
            ceiling = top_id if ceiling is None else min(ceiling, top_id)
    range_filter = {k: v for k, v in user_filter.items() if k not in bounds}

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
    ranges: list[list[int | None]]
    if None in lo_ids or None in hi_ids or not hi_ids or id_filtered:
        ranges = [[0, ceiling]]  # unknown id shape or another condition on ID: one walk from the start
        total: int | None = None
        done = 0
    else:
        yield Emit(_without(lo_rows, strip))  # the lowest ids: the export's first rows, not asked again
        done = len(lo_rows)
        first, last, top = lo_ids[0], lo_ids[-1], hi_ids[0]
        assert first is not None and last is not None and top is not None
        if len(lo_rows) < PAGE:
            ranges = [[last, ceiling]]  # the whole list was one page: only rows created since can follow
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
            ranges[-1][1] = ceiling  # open-ended (unless bounded): rows created meanwhile are included
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

    def after(index: int) -> int:
        """The ID a range's next page starts above: its cursor, never below the caller's floor."""
        return int(max(ranges[index][0] or 0, floor))

    def command(index: int) -> tuple[str, Query]:
        upper = ranges[index][1]
        query = f"{common}{above}{after(index)}"
        return method, Query(query if upper is None else f"{query}{upto}{int(upper)}")

    # A pool of ``parallel`` batch requests: a new one starts as soon as any finishes (no round barrier).
    # Fresh ranges go first, in full batches; ranges that need another page follow.
    # A batch is as large as the method's operating budget holds (limits.md): all 50 while the budget is
    # wide, fewer when a page is costly or the window nearly spent, so no batch waits for room it cannot
    # have and none holds more than one window can.
    portal = settings.auth.portal
    # In order: the lowest incomplete range, the pages waiting for it, the ranges complete above it.
    lowest, held, complete = 0, dict[int, list[list[Any]]](), set[int]()
    ahead = max(1, parallel) * BATCH_LIMIT
    while fresh or waiting or in_flight:
        room, most = settings.operating.calls_that_fit(portal, method)
        while in_flight < max(1, parallel) and (fresh or waiting):
            if waiting and (not fresh or (ordered and fresh[0][0] >= lowest + ahead)):
                group, waiting = waiting[:BATCH_LIMIT], waiting[BATCH_LIMIT:]
            elif fresh and (not ordered or fresh[0][0] < lowest + ahead):
                group = fresh.popleft()
            else:
                break  # in order: nothing starts further ahead of the lowest incomplete range
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
        for key, result in sorted(outcome.results.items(), key=lambda item: int(item[0][1:])):
            index = int(key[1:])
            rows = list_items(result)
            upper = ranges[index][1]
            first = _row_id(rows[0], rkey) if rows else None
            last = _row_id(rows[-1], rkey) if rows else None
            if rows and first is not None and last is not None and (first <= after(index) or last < first):
                raise CursorIgnored(method, index)  # it would hand the same rows over again, forever
            done += len(rows)
            # A full page may have more behind it, unless it ends at its range's upper bound (nothing can
            # follow).
            more = len(rows) >= PAGE and last is not None and (upper is None or last < upper)
            if more:
                ranges[index][0] = last
                waiting.append(index)
            rows = _without(rows, strip)
            if not ordered:
                if rows:
                    yield Emit(rows)  # ranges are disjoint and each moves forward by ID: no row twice
                continue
            if index == lowest:
                if rows:
                    yield Emit(rows)
            elif rows:
                held.setdefault(index, []).append(rows)
            if not more:
                complete.add(index)
            while lowest in complete:  # the next range's waiting pages follow at once, in order
                complete.discard(lowest)
                lowest += 1
                for page in held.pop(lowest, []):
                    yield Emit(page)
        if progress is not None:
            progress(done, max(total, done) if total is not None else None)
        if pause:
            yield Sleep(pause)
    return None
