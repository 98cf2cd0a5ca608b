"""Users and departments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.query import (
    matches,
    page,
)
from bitrix24_sandbox.registry import (
    Listing,
    method,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


# --- users and departments ---------------------------------------------------------------------------------


_USER_DEFAULTS = {"IS_ONLINE": "N", "USER_TYPE": "employee"}  # users made before these were seeded


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {**_USER_DEFAULTS, **{k: v for k, v in user.items() if k != "IS_ADMIN"}}


def _sorted(rows: list[dict[str, Any]], params: dict[str, Any], default: str = "ID") -> list[dict[str, Any]]:
    """``sort`` (a field) and ``order`` (ASC|DESC), as user.get and department.get take them (user-get.md,
    department-get.md); numbers compare as numbers."""
    upper = {str(k).upper(): v for k, v in params.items()}
    field = str(upper.get("SORT") or default).upper()
    descending = str(upper.get("ORDER") or "ASC").upper() == "DESC"

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(field)
        text = str(value if value is not None else "")
        return (0, int(text)) if text.lstrip("-").isdigit() else (1, text.casefold())

    return sorted(rows, key=key, reverse=descending)


@method("user.current", "user")
def user_current(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return _public_user(store.tables["user"][caller.user_id])


@method("user.get", "user")
def user_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    # api-reference/user/user-get.md: the filter is FILTER (the portal upper-cases the keys it reads, so
    # filter is the same key); other user fields may also stand at the top level as filter keys.
    nested = next((v for k, v in params.items() if k.upper() == "FILTER" and isinstance(v, dict)), None)
    flt = (
        nested
        if nested is not None
        else {k: v for k, v in params.items() if k.isupper() and k not in ("SORT", "ORDER", "ADMIN_MODE")}
    )
    rows = [_public_user(u) for u in store.tables["user"].values()]
    rows = _sorted([u for u in rows if matches(u, flt or {})], params)
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing(chunk, total, nxt)


@method("user.search", "user")
def user_search(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    flt = params.get("FILTER") or params.get("filter") or {}
    needle = str(flt.get("FIND") or params.get("FIND") or "").casefold().strip()
    rest = {k: v for k, v in flt.items() if k != "FIND"} if isinstance(flt, dict) else {}
    rows = []
    for user in store.tables["user"].values():
        text = " ".join(
            str(user.get(f) or "") for f in ("NAME", "LAST_NAME", "EMAIL", "WORK_POSITION")
        ).casefold()
        if (not needle or all(part in text for part in needle.split())) and matches(user, rest):
            rows.append(user)
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing([_public_user(u) for u in chunk], total, nxt)


@method("department.get", "department")
def department_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """departments/department-get.md: filter by ID, NAME, SORT, PARENT, UF_HEAD; ``sort``/``order``."""
    flt = {
        k.upper(): v for k, v in params.items() if k.upper() in ("ID", "NAME", "SORT", "PARENT", "UF_HEAD")
    }
    rows = [{**d, "SORT": d.get("SORT", 500)} for d in store.tables["department"].values()]
    rows = _sorted(
        [d for d in rows if matches(d, flt)], {k: v for k, v in params.items() if k in ("sort", "order")}
    )
    chunk, total, nxt = page(rows, params.get("START", params.get("start")))
    return Listing(chunk, total, nxt)
