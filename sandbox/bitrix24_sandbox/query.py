"""Request decoding and list semantics the way a portal does them: PHP-style keys, filters, select, order,
pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from bitrix24_sandbox.errors import ApiError

PAGE = 50
_OPS = ("!=%", "!%=", "!%", "!=", "!@", ">=", "<=", "=%", "%=", "!", ">", "<", "%", "@", "=")


def parse_php_query(text: str) -> dict[str, Any]:
    """Decode ``a[b][]=1&c=2`` into nested dicts/lists, like PHP's parse_str (lists for numeric/empty
    keys)."""
    out: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(raw_key)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if part == "":
                    part = str(len(node))
                idx = int(part) if part.isdigit() else None
                if idx is None:  # mixed keys: degrade to a dict
                    raise ApiError("ERROR_ARGUMENT", f"cannot mix list and named keys in {raw_key!r}")
                while len(node) <= idx:
                    node.append(None)
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if parts[i + 1] in ("", "0") else {}
                    node = node[idx]
            else:
                if part == "":
                    part = str(len(node))
                if last:
                    node[part] = value
                else:
                    if part not in node or not isinstance(node[part], (dict, list)):
                        node[part] = [] if parts[i + 1] in ("", "0") else {}
                    node = node[part]
    result: dict[str, Any] = _listify(out)
    return result


def _split_key(key: str) -> list[str]:
    head = key.split("[", 1)[0]
    rest = re.findall(r"\[([^\]]*)\]", key[len(head) :])
    return [head, *rest]


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def decode_body(body: bytes, content_type: str, query: str) -> tuple[dict[str, Any], str]:
    """Params from a JSON body, a form body or the query string; returns (params, encoding)."""
    params: dict[str, Any] = parse_php_query(query) if query else {}
    if body:
        if "json" in content_type:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise ApiError("INVALID_REQUEST", "the body is not valid JSON", 400) from exc
            if isinstance(data, list):  # REST 3.0 batch: a JSON array at the root (rest-v3.md, Batch call)
                return {"__array__": data}, "json"
            if not isinstance(data, dict):
                raise ApiError("INVALID_REQUEST", "the JSON body must be an object", 400)
            params.update(data)
            return params, "json"
        params.update(parse_php_query(body.decode("utf-8", "replace")))
        return params, "form"
    return params, "query"


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cmp_key(value: Any) -> Any:
    number = _num(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value or "").casefold())


def _split_op(key: str) -> tuple[str, str]:
    for op in _OPS:
        if key.startswith(op):
            return op, key[len(op) :]
    return "=", key


def matches(record: Mapping[str, Any], flt: Mapping[str, Any], resolve: Any = None) -> bool:
    """CRM filter semantics: ``=`` ``!`` ``>`` ``>=`` ``<`` ``<=`` ``%`` ``=%`` ``%=`` ``@`` ``!@``
    (protocol.md §6)."""
    for raw_key, expected in flt.items():
        op, field = _split_op(str(raw_key))
        name = resolve(field) if resolve else field
        actual = record.get(name)
        if isinstance(actual, list) and actual and isinstance(actual[0], dict):
            actual = [item.get("VALUE") for item in actual]
        if not _match_one(op, actual, expected):
            return False
    return True


def _eq(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_eq(a, expected) for a in actual)
    na, ne = _num(actual), _num(expected)
    if na is not None and ne is not None:
        return na == ne
    if expected in (None, "", False) and actual in (None, "", False):
        return True
    return str(actual if actual is not None else "").casefold() == str(expected).casefold()


def _match_one(op: str, actual: Any, expected: Any) -> bool:
    if op in ("!%", "!=%", "!%="):  # NOT LIKE (crm-item-list.md)
        return not _match_one(op[1:] if op != "!%=" else "%=", actual, expected)
    if op in ("@", "!@"):
        values = expected if isinstance(expected, list) else [expected]
        hit = any(_eq(actual, v) for v in values)
        return hit if op == "@" else not hit
    if op == "=":
        if isinstance(expected, list):
            return any(_eq(actual, v) for v in expected)
        return _eq(actual, expected)
    if op in ("!", "!="):
        if isinstance(expected, list):
            return not any(_eq(actual, v) for v in expected)
        return not _eq(actual, expected)
    text, needle = str(actual or "").casefold(), str(expected or "").casefold()
    if op == "%":
        return needle in text
    if op in ("=%", "%="):
        # LIKE with the wildcard in the value (crm-deal-list.md): "mol%" starts with, "%mol" ends with,
        # "%mol%" contains, no % is an exact (case-insensitive) match.
        pattern = ".*".join(re.escape(part) for part in needle.split("%"))
        return re.fullmatch(pattern, text, flags=re.DOTALL) is not None
    if actual in (None, ""):
        return False
    a, e = _cmp_key(actual), _cmp_key(expected)
    outcome: bool = {">": a > e, ">=": a >= e, "<": a < e, "<=": a <= e}[op]
    return outcome


def order_rows(rows: list[dict[str, Any]], order: Any, resolve: Any = None) -> list[dict[str, Any]]:
    if not isinstance(order, Mapping) or not order:
        return rows
    for field, direction in reversed(list(order.items())):
        name = resolve(field) if resolve else field
        rows = sorted(rows, key=lambda r: _cmp_key(r.get(name)), reverse=str(direction).upper() == "DESC")
    return rows


def select_fields(record: Mapping[str, Any], select: Any, *, uf_prefix: str = "UF_") -> dict[str, Any]:
    """``select``: nothing or ``*`` → every standard field; ``UF_*`` → user fields; names → those fields."""
    if not isinstance(select, list) or not select:
        select = ["*"]
    out: dict[str, Any] = {}
    for name in select:
        name = str(name)
        if name == "*":
            out.update({k: v for k, v in record.items() if not k.upper().startswith(uf_prefix)})
        elif name.upper() == "UF_*" or name == "uf*":
            out.update({k: v for k, v in record.items() if k.upper().startswith(uf_prefix)})
        elif name in record:
            out[name] = record[name]
    return out


def page(rows: list[Any], start: Any) -> tuple[list[Any], int | None, int | None]:
    """(rows of this page, total, next) — ``start=-1`` skips the count and the ``next`` offset (§6)."""
    try:
        offset = int(start or 0)
    except (TypeError, ValueError) as exc:
        raise ApiError("ERROR_ARGUMENT", "start must be an integer") from exc
    if offset == -1:
        return rows[:PAGE], None, None
    offset = max(0, offset)
    chunk = rows[offset : offset + PAGE]
    nxt = offset + PAGE if offset + PAGE < len(rows) else None
    return chunk, len(rows), nxt


KeyCache = dict[int, tuple[tuple[int, Any, Any], list[Any]]]


def _sorted_keys(store: Mapping[int, Any], cache: KeyCache | None) -> list[Any]:
    """A store's keys, listed once per change when the caller keeps a cache (a portal does, for its own
    stores): (len, first, last) changes with every add or delete, as ids only grow."""
    if not store or cache is None:
        return list(store)
    signature = (len(store), next(iter(store)), next(reversed(store)))
    cached = cache.get(id(store))
    if cached is None or cached[0] != signature:
        cached = (signature, list(store))
        cache[id(store)] = cached
    return cached[1]


def id_window(
    store: Mapping[int, Any], flt: Mapping[str, Any], id_field: str = "ID", cache: KeyCache | None = None
) -> tuple[Sequence[Any], dict[str, Any]]:
    """Rows whose integer key satisfies the filter's ID bounds (by bisection), and the rest of the filter.

    A portal answers ``>ID`` range pages from an index; scanning every row per page would make the sandbox,
    not the client under test, the bottleneck of an export benchmark. Keys are kept in ascending id order.
    """
    import bisect

    lo, hi = None, None
    rest: dict[str, Any] = {}
    for key, value in flt.items():
        op, field = _split_op(str(key))
        number = _num(value)
        if field.upper() == id_field.upper() and op in (">", ">=", "<", "<=") and number is not None:
            if op == ">":
                lo = max(lo, number + 1e-9) if lo is not None else number + 1e-9
            elif op == ">=":
                lo = max(lo, number) if lo is not None else number
            elif op == "<":
                hi = min(hi, number - 1e-9) if hi is not None else number - 1e-9
            else:
                hi = min(hi, number) if hi is not None else number
        else:
            rest[key] = value
    keys = _sorted_keys(store, cache)
    start = bisect.bisect_left(keys, lo) if lo is not None else 0
    end = bisect.bisect_right(keys, hi) if hi is not None else len(keys)
    return _Window(store, keys, start, end), rest


class _Window(Sequence[Any]):
    """The rows of ``keys[start:end]``, read as they are asked for: a ``start=-1`` page of an open-ended
    ``>ID`` cursor reads its 50 rows, not a copy of the rest of the table."""

    def __init__(self, store: Mapping[int, Any], keys: list[Any], start: int, end: int) -> None:
        self._store, self._keys, self._start, self._end = store, keys, start, max(start, end)

    def __len__(self) -> int:
        return self._end - self._start

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._store[self._keys[self._start + i]] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._store[self._keys[self._start + index]]

    def __iter__(self) -> Iterator[Any]:
        for i in range(self._start, self._end):
            yield self._store[self._keys[i]]

    def __reversed__(self) -> Iterator[Any]:
        for i in range(self._end - 1, self._start - 1, -1):
            yield self._store[self._keys[i]]


def is_id_order(order: Any) -> str | None:
    """'ASC'/'DESC' when the order is by ID alone (rows are stored in id order: no sort needed)."""
    if isinstance(order, Mapping) and len(order) == 1:
        ((field, direction),) = order.items()
        if str(field).upper() == "ID":
            return "DESC" if str(direction).upper() == "DESC" else "ASC"
    return None


def php_intval(value: Any) -> int:
    """``intval`` as PHP computes it (the rest module passes parameters through it): the leading integer of a
    string, 0 when there is none; an array is 1 when it is not empty."""
    if isinstance(value, (list, dict)):
        return 1 if value else 0
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, (int, float)):
        return int(value)
    found = re.match(r"\s*([+-]?\d+)", str(value))
    return int(found.group(1)) if found else 0
