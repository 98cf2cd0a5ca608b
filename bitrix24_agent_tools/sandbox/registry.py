"""The sandbox's method registry and the helpers every area shares: ``@method``, ``Listing``, ids and times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bitrix24_agent_tools.sandbox import data
from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_agent_tools.sandbox.portal import Portal


@dataclass
class Listing:
    """A list answer: the envelope gets ``total`` and ``next`` from it."""

    result: Any
    total: int | None
    next: int | None


Method = Callable[["Portal", dict[str, Any], Caller], Any]
METHODS: dict[str, tuple[str, Method]] = {}  # lower-case name → (scope, handler)


def method(name: str, scope: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name.lower()] = (scope, fn)
        return fn

    return register


def now_iso(portal: Portal) -> str:
    return (data.EPOCH + timedelta(seconds=portal.clock() - portal.started_at) + timedelta(days=300)).isoformat()


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
