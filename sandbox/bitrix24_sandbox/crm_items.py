"""crm.item.* with the universal field names (api-reference/crm/universal)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.query import (
    matches,
    order_rows,
    page,
)
from bitrix24_sandbox.registry import (
    METHODS,
    Listing,
    _fields_arg,
    _id,
    method,
    now_iso,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store
from bitrix24_sandbox.crm import (
    ENTITY_TYPES,
    FIELD_TYPES,
    IMMUTABLE,
    MULTIFIELDS,
    READ_ONLY,
    REQUIRED,
    STATUS_TYPES,
    normalize_multifields,
)

# --- crm.item.* (camelCase, result.item / result.items)
# ------------------------------------------------------


def camel(name: str) -> str:
    parts = name.lower().split("_")
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def upper(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _item_kind(store: Store, params: dict[str, Any]) -> tuple[int, str]:
    etid = _id(params, "entityTypeId")
    if etid in ENTITY_TYPES:
        return etid, ENTITY_TYPES[etid]
    if etid >= 1030 and etid in store.smart_types:
        return etid, f"smart:{etid}"
    raise ApiError("NOT_FOUND", f"Smart process {etid} not found", 400)


def _store(store: Store, kind: str) -> dict[int, dict[str, Any]]:
    if kind.startswith("smart:"):
        rows: dict[int, dict[str, Any]] = store.tables["smart_item"].setdefault(int(kind[6:]), {})
        return rows
    kinds: dict[int, dict[str, Any]] = store.tables[kind]
    return kinds


# The universal names of crm.item.* (api-reference/crm/universal/object-fields.md) for the legacy columns.
_ITEM_NAMES = {
    "DATE_CREATE": "createdTime",
    "DATE_MODIFY": "updatedTime",
    "CREATED_BY_ID": "createdBy",
    "MODIFY_BY_ID": "updatedBy",
    "ASSIGNED_BY_ID": "assignedById",
    "CREATED_TIME": "createdTime",
    "UPDATED_TIME": "updatedTime",
    # crm/universal/object-fields.md, Lead: the lead's status is its stageId in crm.item.*
    "STATUS_ID": "stageId",
}
_ITEM_INTS = {
    "id",
    "createdBy",
    "updatedBy",
    "assignedById",
    "companyId",
    "contactId",
    "categoryId",
    "leadId",
}
_ITEM_FLOATS = {"opportunity"}
_SMART_FIELDS = {
    "ID",
    "TITLE",
    "CREATED_TIME",
    "UPDATED_TIME",
    "STAGE_ID",
    "CATEGORY_ID",
    "ASSIGNED_BY_ID",
    "OPPORTUNITY",
    "CURRENCY_ID",
    "COMPANY_ID",
    "CONTACT_ID",
    "CREATED_BY_ID",
}


def item_name(legacy: str) -> str:
    """``DATE_CREATE`` → ``createdTime``, ``UF_CRM_1720019876534`` → ``ufCrm_1720019876534``, ``STAGE_ID``
    → ``stageId``."""
    if legacy in _ITEM_NAMES:
        return _ITEM_NAMES[legacy]
    parts = legacy.lower().split("_")
    out = parts[0]
    for part in parts[1:]:
        out += ("_" + part) if part[:1].isdigit() else part.capitalize()
    return out


def _item_columns(store: Store, kind: str) -> dict[str, str]:
    """Universal name → legacy column, for the fields an entity type has."""
    if kind.startswith("smart:"):
        names = set(_SMART_FIELDS)
        for record in _store(store, kind).values():
            names |= set(record)
    else:
        names = set(FIELD_TYPES[kind]) | {"MODIFY_BY_ID"}
    return {item_name(n): n for n in names}


def _item_value(name: str, value: Any) -> Any:
    if value in (None, ""):
        return value if name not in _ITEM_INTS else (0 if name not in ("id",) else value)
    try:
        if name in _ITEM_INTS:
            return int(value)
        if name in _ITEM_FLOATS:
            return float(value)
    except (TypeError, ValueError):
        return value
    return value


def _to_item(record: dict[str, Any], etid: int) -> dict[str, Any]:
    item: dict[str, Any] = {}
    fm: list[dict[str, Any]] = []
    for key, value in record.items():
        if key in MULTIFIELDS:
            for entry in value or []:
                if isinstance(entry, dict):
                    fm.append(
                        {
                            "id": int(entry.get("ID") or 0),
                            "valueType": entry.get("VALUE_TYPE"),
                            "value": entry.get("VALUE"),
                            "typeId": entry.get("TYPE_ID") or key,
                        }
                    )
            continue
        name = item_name(key)
        item[name] = _item_value(name, value)
    if etid in (1, 3, 4):  # leads, contacts and companies carry their multifields as `fm`
        item["fm"] = fm
        for kind in ("PHONE", "EMAIL"):
            first = next((e["value"] for e in fm if e["typeId"] == kind), "")
            item[kind.lower()] = first
    item["entityTypeId"] = etid
    return item


def _item_filter(flt: Any, columns: dict[str, str]) -> Any:
    """A crm.item filter in legacy column names; nested groups and ``logic: OR`` kept (crm-item-list.md);
    an unknown field is INVALID_ARG_VALUE."""
    if not isinstance(flt, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in flt.items():
        key = str(key)
        if key.lower() == "logic":
            out["logic"] = str(value).upper()
            continue
        if isinstance(value, dict) and (key.isdigit() or not re.sub(r"^[^A-Za-z_]*", "", key)):
            out[key] = _item_filter(value, columns)
            continue
        prefix = re.match(r"^[^A-Za-z_]*", key).group(0)  # type: ignore[union-attr]
        field = key[len(prefix) :]
        column = columns.get(field)
        if column is None:
            raise ApiError("INVALID_ARG_VALUE", f"Invalid filter: field '{field}' is not allowed in filter")
        out[prefix + column] = value
    return out


def _matches_group(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    logic = flt.get("logic", "AND")
    outcomes = []
    plain = {k: v for k, v in flt.items() if k != "logic" and not isinstance(v, dict)}
    for key, value in plain.items():
        outcomes.append(matches(record, {key: value}))
    for key, value in flt.items():
        if key != "logic" and isinstance(value, dict):
            outcomes.append(_matches_group(record, value))
    if not outcomes:
        return True
    return any(outcomes) if logic == "OR" else all(outcomes)


def _item_order(order: Any, columns: dict[str, str]) -> dict[str, str]:
    if not isinstance(order, dict):
        return {"ID": "ASC"}
    out = {}
    for field, direction in order.items():
        column = columns.get(str(field))
        if column is None:
            raise ApiError("INVALID_ARG_VALUE", f"Invalid order: field '{field}' is not allowed in order")
        if str(direction).upper() not in ("ASC", "DESC"):
            raise ApiError(
                "INVALID_ARG_VALUE",
                "Invalid order: allowed sort directions are ASC, DESC. "
                f"But got '{direction}' for field '{field}'",
            )
        out[column] = str(direction).upper()
    return out


@method("crm.item.list", "crm")
def item_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    etid, kind = _item_kind(store, params)
    columns = _item_columns(store, kind)
    flt = _item_filter(params.get("filter") or {}, columns)
    rows = [normalize_multifields(store, r) for r in _store(store, kind).values()]
    rows = [r for r in rows if _matches_group(r, flt)]
    rows = order_rows(rows, _item_order(params.get("order") or {"id": "ASC"}, columns))
    store.charge(items=len(rows), counted=str(params.get("start", 0)) != "-1", offset=params.get("start"))
    chunk, total, nxt = page(rows, params.get("start"))
    select = params.get("select")
    items = [_to_item(r, etid) for r in chunk]
    if isinstance(select, list) and select and "*" not in select:
        wanted = {str(n) for n in select}
        items = [{k: v for k, v in i.items() if k in wanted or k == "id"} for i in items]
    return Listing({"items": items}, total, nxt)


@method("crm.item.get", "crm")
def item_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(store, params)
    record = _store(store, kind).get(_id(params))
    if record is None:
        raise ApiError("NOT_FOUND", "Element not found")
    return {"item": _to_item(normalize_multifields(store, record), etid)}


def _item_fields_in(store: Store, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Universal field names of a write → legacy columns; ``fm`` → multifields."""
    columns = _item_columns(store, kind)
    out: dict[str, Any] = {}
    for key, value in fields.items():
        key = str(key)
        if key == "fm" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    type_id = str(entry.get("typeId") or "PHONE").upper()
                    out.setdefault(type_id, []).append(
                        {
                            "ID": entry.get("id"),
                            "VALUE": entry.get("value"),
                            "VALUE_TYPE": entry.get("valueType") or "WORK",
                        }
                    )
            continue
        out[columns.get(key) or upper(key)] = value
    return out


@method("crm.item.add", "crm")
def item_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(store, params)
    fields = _item_fields_in(store, kind, _fields_arg(params))
    if kind.startswith("smart:"):
        new_id = store.next_id(kind)
        stamp = now_iso(store)
        record = {
            "ID": str(new_id),
            "TITLE": fields.get("TITLE") or f"Item #{new_id}",
            **fields,
            "CREATED_TIME": stamp,
            "UPDATED_TIME": stamp,
            "CREATED_BY_ID": str(caller.user_id),
        }
        record.setdefault("ASSIGNED_BY_ID", str(caller.user_id))
        # crm/universal/object-fields.md, SPA: every item has a categoryId and a stageId; without them it
        # lands in the default pipeline's first stage (UNVERIFIED: the stage code, DT<type>_<category>:NEW,
        # follows the stage codes the docs' examples show)
        record.setdefault("CATEGORY_ID", "0")
        record.setdefault("STAGE_ID", f"DT{etid}_{record['CATEGORY_ID']}:NEW")
        record.setdefault("OPPORTUNITY", 0.0)
        record.setdefault("CURRENCY_ID", "USD")
        _store(store, kind)[new_id] = record
        return {"item": _to_item(record, etid)}
    new_id = METHODS[f"crm.{kind}.add"][1](store, {"fields": fields}, caller)
    return {"item": _to_item(store.tables[kind][new_id], etid)}


@method("crm.item.update", "crm")
def item_update(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(store, params)
    fields = _item_fields_in(store, kind, _fields_arg(params))
    record_id = _id(params)
    if kind.startswith("smart:"):
        record = _store(store, kind).get(record_id)
        if record is None:
            raise ApiError("NOT_FOUND", "Element not found")
        record.update(fields)
        record["UPDATED_TIME"] = now_iso(store)
    else:
        if record_id not in store.tables[kind]:
            raise ApiError("NOT_FOUND", "Element not found")
        METHODS[f"crm.{kind}.update"][1](store, {"id": record_id, "fields": fields}, caller)
        record = store.tables[kind][record_id]
    return {"item": _to_item(record, etid)}


@method("crm.item.delete", "crm")
def item_delete(store: Store, params: dict[str, Any], caller: Caller) -> list[Any]:
    _etid, kind = _item_kind(store, params)
    record_id = _id(params)
    if kind.startswith("smart:"):
        if _store(store, kind).pop(record_id, None) is None:
            raise ApiError("NOT_FOUND", "Element not found")
    else:
        if record_id not in store.tables[kind]:
            raise ApiError("NOT_FOUND", "Element not found")
        METHODS[f"crm.{kind}.delete"][1](store, {"id": record_id}, caller)
    return []


@method("crm.item.fields", "crm")
def item_fields(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """crm-item-fields.md: ``result.fields`` keyed by universal name, with upperName and the same flags."""
    _, kind = _item_kind(store, params)
    base = FIELD_TYPES.get(kind, {n: ("string", n.title()) for n in sorted(_SMART_FIELDS)})
    out: dict[str, Any] = {}
    for legacy, (ftype, title) in base.items():
        if legacy in MULTIFIELDS:
            continue
        out[item_name(legacy)] = {
            "type": ftype,
            "isRequired": legacy in REQUIRED.get(kind, set()),
            "isReadOnly": legacy in READ_ONLY,
            "isImmutable": legacy in IMMUTABLE.get(kind, set()),
            "isMultiple": False,
            "isDynamic": legacy.startswith("UF_"),
            "title": title,
            "upperName": legacy,
            **(
                {"statusType": STATUS_TYPES[legacy]}
                if ftype == "crm_status" and legacy in STATUS_TYPES
                else {}
            ),
        }
    if kind in ("lead", "contact", "company"):
        out["fm"] = {
            "type": "crm_multifield",
            "isRequired": False,
            "isReadOnly": False,
            "isImmutable": False,
            "isMultiple": True,
            "isDynamic": False,
            "title": "Multifields",
            "upperName": "FM",
        }
    return {"fields": out}


@method("crm.type.list", "crm")
def type_list(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"types": [{"entityTypeId": etid, "title": title} for etid, title in store.smart_types.items()]}
