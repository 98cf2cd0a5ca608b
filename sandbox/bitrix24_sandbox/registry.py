"""The sandbox's method registry and the helpers every area shares: ``@method``, ``Listing``, ids and
times."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox import data
from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


@dataclass
class Listing:
    """A list answer: the envelope gets ``total`` and ``next`` from it."""

    result: Any
    total: int | None
    next: int | None


Method = Callable[["Store", dict[str, Any], Caller], Any]  # what a method sees: store.py
METHODS: dict[str, tuple[str, Method]] = {}  # lower-case name → (scope, handler)


def method(name: str, scope: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name.lower()] = (scope, fn)
        return fn

    return register


def now_iso(store: Store) -> str:
    """The portal's "now" as it writes dates: ISO 8601 with its offset, to the second (the docs' examples,
    e.g. "2024-07-26T15:28:02+02:00", carry no fractions)."""
    return (data.EPOCH + timedelta(seconds=store.clock() - store.started_at) + timedelta(days=300)).isoformat(
        timespec="seconds"
    )


def portal_date(value: Any) -> Any:
    """An ISO date as the portal's own format writes it in older modules' answers (landing, calendar:
    "10/10/2022 03:25:30 pm" in their docs' examples); anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(data.EPOCH.tzinfo)
    return moment.strftime("%m/%d/%Y %I:%M:%S %p").lower()


def _id(params: dict[str, Any], key: str = "id") -> int:
    raw = params.get(key, params.get(key.upper()))
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError("ERROR_ARGUMENT", f"'{key}' must be a positive integer") from None
    if value <= 0:
        raise ApiError("ERROR_ARGUMENT", f"'{key}' must be a positive integer")
    return value


def _fields_arg(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields", params.get("FIELDS"))
    if not isinstance(fields, dict):
        raise ApiError("ERROR_ARGUMENT", "'fields' must be an object")
    return fields


def _user_id(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


def table(store: Store, kind: str) -> dict[Any, dict[str, Any]]:
    """One kind of record in the portal's state (created empty on first use)."""
    rows: dict[Any, dict[str, Any]] = store.tables.setdefault(kind, {})
    return rows


def upper(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters by upper-case name: most older methods read their parameters case-insensitively."""
    return {str(k).upper(): v for k, v in params.items()}


def wanted_scopes(params: dict[str, Any], caller: Caller, every: Iterable[str]) -> set[str]:
    """The scopes a listing of the rest module covers (methodsList, eventsList in rest_provider.php):
    ``SCOPE``, every scope with ``FULL``, else the credential's own and ``basic``."""
    query = upper(params)
    if query.get("SCOPE") not in (None, ""):
        return {str(query["SCOPE"])}
    if str(query.get("FULL") or "").lower() in ("1", "true", "y"):
        return set(every)
    return set(caller.scopes) | {"basic"}


def app_only(
    caller: Caller, code: str = "ACCESS_DENIED", message: str = "Access denied! Application context required"
) -> None:
    """Methods the docs mark "Application context required" refuse webhooks."""
    if caller.kind != "oauth" or not caller.app_id:
        raise ApiError(code, message, 401 if code == "WRONG_AUTH_TYPE" else 403)


def positive(value: Any) -> int | None:
    """A positive integer, or None."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def paged(rows: list[Any], start: Any, key: str | None = None) -> Listing:
    """A list answer of 50 rows from ``start``, with ``total`` and ``next``; with ``key``, the rows wrapped in
    an object under it (``{"orders": [...]}``), as many newer methods answer."""
    from bitrix24_sandbox.query import page

    chunk, total, nxt = page(rows, start)
    return Listing({key: chunk} if key else chunk, total, nxt)


def obj(value: Any) -> dict[str, Any]:
    """The value when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}
