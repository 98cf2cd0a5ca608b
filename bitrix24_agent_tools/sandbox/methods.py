"""The REST methods the sandbox portal implements: CRM, items, pipelines, activities, tasks, users, chats."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bitrix24_agent_tools.sandbox import data
from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.query import (
    id_window,
    is_id_order,
    matches,
    order_rows,
    page,
    select_fields,
)
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


ENTITY_TYPES = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
FIELD_TYPES: dict[str, dict[str, tuple[str, str]]] = {
    "deal": {"ID": ("integer", "ID"), "TITLE": ("string", "Name"), "CATEGORY_ID": ("crm_category", "Pipeline"),
             "STAGE_ID": ("crm_status", "Stage"), "OPPORTUNITY": ("double", "Amount"),
             "CURRENCY_ID": ("crm_currency", "Currency"), "CONTACT_ID": ("crm_contact", "Contact"),
             "COMPANY_ID": ("crm_company", "Company"), "ASSIGNED_BY_ID": ("user", "Responsible"),
             "SOURCE_ID": ("crm_status", "Source"), "CLOSED": ("char", "Closed"), "COMMENTS": ("string", "Comment"),
             "ORIGIN_ID": ("string", "External ID"), "DATE_CREATE": ("datetime", "Created"),
             "DATE_MODIFY": ("datetime", "Modified"), "CREATED_BY_ID": ("user", "Created by"),
             "TYPE_ID": ("crm_status", "Type"), "BEGINDATE": ("date", "Start date"), "CLOSEDATE": ("date", "End date"),
             "PROBABILITY": ("integer", "Probability"), "ORIGINATOR_ID": ("string", "External source"),
             "SOURCE_DESCRIPTION": ("string", "Source information"), "ADDITIONAL_INFO": ("string", "Additional"),
             "OPENED": ("char", "Available to everyone"), "LEAD_ID": ("crm_lead", "Lead"),
             "UF_CRM_SOURCE_CHANNEL": ("enumeration", "Source channel")},
    "lead": {"ID": ("integer", "ID"), "TITLE": ("string", "Lead name"), "NAME": ("string", "First name"),
             "LAST_NAME": ("string", "Last name"), "SECOND_NAME": ("string", "Second name"),
             "COMPANY_TITLE": ("string", "Company name"), "POST": ("string", "Position"),
             "ADDRESS": ("string", "Address"), "SOURCE_DESCRIPTION": ("string", "Source information"),
             "STATUS_DESCRIPTION": ("string", "Status information"), "ORIGIN_ID": ("string", "External ID"),
             "ORIGINATOR_ID": ("string", "External source"), "BIRTHDATE": ("date", "Date of birth"),
             "OPENED": ("char", "Available to everyone"), "PHONE": ("crm_multifield", "Phone"),
             "EMAIL": ("crm_multifield", "E-mail"), "WEB": ("crm_multifield", "Website"),
             "IM": ("crm_multifield", "Messenger"),
             "STATUS_ID": ("crm_status", "Status"), "SOURCE_ID": ("crm_status", "Source"),
             "OPPORTUNITY": ("double", "Amount"), "CURRENCY_ID": ("crm_currency", "Currency"),
             "ASSIGNED_BY_ID": ("user", "Responsible"), "COMMENTS": ("string", "Comment"),
             "DATE_CREATE": ("datetime", "Created"), "DATE_MODIFY": ("datetime", "Modified"),
             "CREATED_BY_ID": ("user", "Created by")},
    "contact": {"ID": ("integer", "ID"), "NAME": ("string", "First name"), "LAST_NAME": ("string", "Last name"),
                "EMAIL": ("crm_multifield", "E-mail"), "PHONE": ("crm_multifield", "Phone"),
                "WEB": ("crm_multifield", "Website"), "IM": ("crm_multifield", "Messenger"),
                "SECOND_NAME": ("string", "Second name"), "POST": ("string", "Position"),
                "ADDRESS": ("string", "Address"), "COMMENTS": ("string", "Comment"), "BIRTHDATE": ("date", "Date of birth"),
                "TYPE_ID": ("crm_status", "Contact type"), "SOURCE_ID": ("crm_status", "Source"),
                "ORIGIN_ID": ("string", "External ID"), "OPENED": ("char", "Available to everyone"),
                "COMPANY_ID": ("crm_company", "Company"), "ASSIGNED_BY_ID": ("user", "Responsible"),
                "DATE_CREATE": ("datetime", "Created"), "DATE_MODIFY": ("datetime", "Modified"),
                "CREATED_BY_ID": ("user", "Created by")},
    "company": {"ID": ("integer", "ID"), "TITLE": ("string", "Company name"), "COMPANY_TYPE": ("crm_status", "Type"),
                "INDUSTRY": ("crm_status", "Industry"), "PHONE": ("crm_multifield", "Phone"),
                "EMAIL": ("crm_multifield", "E-mail"), "WEB": ("crm_multifield", "Website"),
                "IM": ("crm_multifield", "Messenger"), "COMMENTS": ("string", "Comment"), "ADDRESS": ("string", "Address"),
                "REVENUE": ("double", "Annual revenue"), "CURRENCY_ID": ("crm_currency", "Currency"),
                "EMPLOYEES": ("crm_status", "Employees"), "ORIGIN_ID": ("string", "External ID"),
                "OPENED": ("char", "Available to everyone"),
                "ASSIGNED_BY_ID": ("user", "Responsible"), "DATE_CREATE": ("datetime", "Created"),
                "DATE_MODIFY": ("datetime", "Modified"), "CREATED_BY_ID": ("user", "Created by")},
}
# crm.*.fields (api-reference/crm/*/crm-*-fields.md): a deal's and a lead's TITLE are optional (a deal gets
# "Deal #<id>"); a company needs TITLE; a contact lists NAME, SECOND_NAME and LAST_NAME as required — one of them
# must be given (UNVERIFIED which combination the portal accepts; the sandbox takes any one).
REQUIRED: dict[str, set[str]] = {"deal": set(), "lead": set(), "contact": {"NAME", "LAST_NAME"}, "company": {"TITLE"}}
READ_ONLY = {"ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID"}
IMMUTABLE = {"deal": {"CATEGORY_ID"}}
MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
STATUS_TYPES = {"SOURCE_ID": "SOURCE", "STATUS_ID": "STATUS", "COMPANY_TYPE": "COMPANY_TYPE", "INDUSTRY": "INDUSTRY",
                "TYPE_ID": "DEAL_TYPE", "STAGE_ID": "DEAL_STAGE", "EMPLOYEES": "EMPLOYEES"}


def crm_error(text: str) -> ApiError:
    """Legacy CRM methods answer HTTP 400 with an empty code and a text (e.g. crm-deal-get.md, Error Handling)."""
    return ApiError("", text, 400)


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


def _upper_params(params: dict[str, Any]) -> dict[str, Any]:
    """Legacy CRM methods read their parameters case-insensitively (the docs' own cURL examples send ``ID``,
    ``FILTER``, ``SELECT``): keys are upper-cased, the later of two variants winning."""
    return {str(k).upper(): v for k, v in params.items()}


def _crm_id(params: dict[str, Any]) -> int:
    raw = params.get("ID")
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        raise crm_error("ID is not defined or invalid.") from None
    if value <= 0:
        raise crm_error("ID is not defined or invalid.")
    return value


def _crm_fields(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("FIELDS")
    if not isinstance(fields, dict):
        raise crm_error("Parameter 'fields' must be array.")
    return fields


def _next_multifield_id(portal: Portal) -> str:
    return str(portal.next_id("multifield") + 1000)


def _multifield_values(portal: Portal, type_id: str, value: Any) -> list[dict[str, Any]]:
    """New multifield values as the portal stores them: ID, TYPE_ID, VALUE, VALUE_TYPE (data-types.md)."""
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    out = []
    for item in items:
        entry = item if isinstance(item, dict) else {"VALUE": item}
        text = str(entry.get("VALUE") or "").strip()
        if text:
            out.append({"ID": _next_multifield_id(portal), "VALUE_TYPE": str(entry.get("VALUE_TYPE") or "WORK"),
                        "VALUE": text, "TYPE_ID": type_id})
    return out


def _merge_multifield(portal: Portal, current: list[dict[str, Any]], type_id: str, value: Any) -> list[dict[str, Any]]:
    """An update of a multifield (crm-contact-update.md, "Working with Multiple Fields"): a value without ID is
    added; with an ID it replaces that value; an ID with ``DELETE: "Y"`` or an empty VALUE removes it."""
    result = [dict(v) for v in current]
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    for item in items:
        entry = item if isinstance(item, dict) else {"VALUE": item}
        ident = str(entry.get("ID") or "")
        if not ident:
            result += _multifield_values(portal, type_id, [entry])
            continue
        index = next((i for i, v in enumerate(result) if v["ID"] == ident), None)
        if index is None:
            continue
        if str(entry.get("DELETE") or "").upper() == "Y" or not str(entry.get("VALUE") or "").strip():
            del result[index]
        else:
            result[index] = {**result[index], "VALUE": str(entry["VALUE"]).strip(),
                             "VALUE_TYPE": str(entry.get("VALUE_TYPE") or result[index]["VALUE_TYPE"])}
    return result


def normalize_multifields(portal: Portal, record: dict[str, Any]) -> dict[str, Any]:
    """Seeded records may hold bare multifield values; give them the portal's shape once."""
    for name in MULTIFIELDS:
        values = record.get(name)
        if isinstance(values, list) and any(not isinstance(v, dict) or "ID" not in v for v in values):
            record[name] = _multifield_values(portal, name, values)
    return record


def _check_fields(kind: str, fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    known = FIELD_TYPES[kind]
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        key = str(key).upper()
        if key in READ_ONLY or known.get(key, ("",))[0] == "crm_multifield":
            continue  # multifields are merged by the caller
        if key not in known and not key.startswith("UF_"):
            continue  # a real portal ignores unknown fields on legacy CRM methods
        ftype = known.get(key, ("string", ""))[0]
        if ftype == "double" and value not in (None, ""):
            try:
                value = f"{float(value):.2f}"
            except (TypeError, ValueError):
                raise ApiError("ERROR_ARGUMENT", f"field {key} expects a number") from None
        clean[key] = value if not isinstance(value, (int, float)) or isinstance(value, bool) else str(value)
    if creating and REQUIRED[kind] and not any(clean.get(f) for f in REQUIRED[kind]):
        names = " or ".join(f'"{FIELD_TYPES[kind][f][1]}"' for f in sorted(REQUIRED[kind]))
        raise crm_error(f"The field {names} is required.")
    if kind == "deal" and "STAGE_ID" in clean:
        cat = str(clean.get("CATEGORY_ID", "0"))
        stages = {s for c in data.DEAL_STAGES.values() for s, _ in c}
        if clean["STAGE_ID"] not in stages:
            raise ApiError("ERROR_ARGUMENT", f"unknown STAGE_ID {clean['STAGE_ID']!r} for pipeline {cat}")
    return clean


def _perm(caller: Caller, record: dict[str, Any]) -> None:
    """A non-admin user sees and edits only records assigned to them (the sandbox's simple role model)."""
    if caller.is_admin:
        return
    owner = record.get("ASSIGNED_BY_ID") or record.get("responsibleId")
    if owner is not None and str(owner) != str(caller.user_id):
        raise crm_error("Access denied.")


def _crm(kind: str) -> None:
    scope = "crm"

    @method(f"crm.{kind}.list", scope)
    def _list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
        params = _upper_params(params)
        flt = params.get("FILTER") or {}
        if not isinstance(flt, dict):
            raise crm_error("Parameter 'filter' must be array.")
        order = params.get("ORDER") or {"ID": "ASC"}
        if not isinstance(order, dict):
            raise crm_error("Parameter 'order' must be array.")
        flt = {str(k).upper(): v for k, v in flt.items()}
        candidates, rest = id_window(portal.state[kind], flt)
        rows = [normalize_multifields(portal, r) for r in candidates]
        rows = [r for r in rows if matches(r, rest) and (caller.is_admin or str(r.get("ASSIGNED_BY_ID")) == str(caller.user_id))]
        order = {str(k).upper(): v for k, v in order.items()}
        by_id = is_id_order(order)
        if by_id == "DESC":
            rows.reverse()
        elif by_id is None:
            rows = order_rows(rows, order)
        start = params.get("START")
        portal.charge(items=len(rows), counted=str(start if start is not None else 0) != "-1", offset=start)
        chunk, total, nxt = page(rows, start)
        return Listing([_crm_select(r, params.get("SELECT")) for r in chunk], total, nxt)

    @method(f"crm.{kind}.get", scope)
    def _get(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        record = portal.state[kind].get(_crm_id(_upper_params(params)))
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        return dict(normalize_multifields(portal, record))

    @method(f"crm.{kind}.add", scope)
    def _add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
        raw = _crm_fields(_upper_params(params))
        fields = _check_fields(kind, raw, creating=True)
        new_id = portal.next_id(kind)
        stamp = now_iso(portal)
        record: dict[str, Any] = {f: None for f in FIELD_TYPES[kind] if not f.startswith("UF_") and f not in MULTIFIELDS}
        record.update(fields)
        for name, value in ((str(k).upper(), v) for k, v in raw.items()):
            if name in MULTIFIELDS and name in FIELD_TYPES[kind]:
                record[name] = _multifield_values(portal, name, value)
        record.update({"ID": str(new_id), "DATE_CREATE": stamp, "DATE_MODIFY": stamp, "CREATED_BY_ID": str(caller.user_id)})
        record.setdefault("ASSIGNED_BY_ID", str(caller.user_id))
        if not record.get("ASSIGNED_BY_ID"):
            record["ASSIGNED_BY_ID"] = str(caller.user_id)
        if kind == "deal":
            if not record.get("TITLE"):
                record["TITLE"] = f"Deal #{new_id}"  # crm-deal-add.md: the default title
            record["CATEGORY_ID"] = str(record.get("CATEGORY_ID") or "0")
            record["STAGE_ID"] = record.get("STAGE_ID") or data.DEAL_STAGES[int(record["CATEGORY_ID"]) if int(record["CATEGORY_ID"]) in data.DEAL_STAGES else 0][0][0]
            record["CLOSED"] = "Y" if str(record["STAGE_ID"]).endswith(("WON", "LOSE")) else "N"
        portal.state[kind][new_id] = record
        portal.emit(f"ONCRM{kind.upper()}ADD", {"FIELDS": {"ID": new_id}}, params)
        return new_id

    @method(f"crm.{kind}.update", scope)
    def _update(portal: Portal, params: dict[str, Any], caller: Caller) -> bool:
        upper_params = _upper_params(params)
        record = portal.state[kind].get(_crm_id(upper_params))
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        raw = _crm_fields(upper_params)
        fields = _check_fields(kind, raw, creating=False)
        normalize_multifields(portal, record)
        record.update(fields)
        for name, value in ((str(k).upper(), v) for k, v in raw.items()):
            if name in MULTIFIELDS and name in FIELD_TYPES[kind]:
                record[name] = _merge_multifield(portal, record.get(name) or [], name, value)
        record["DATE_MODIFY"] = now_iso(portal)
        if kind == "deal":
            record["CLOSED"] = "Y" if str(record.get("STAGE_ID")).endswith(("WON", "LOSE")) else "N"
        portal.emit(f"ONCRM{kind.upper()}UPDATE", {"FIELDS": {"ID": int(record["ID"])}}, params)
        return True

    @method(f"crm.{kind}.delete", scope)
    def _delete(portal: Portal, params: dict[str, Any], caller: Caller) -> bool:
        record_id = _crm_id(_upper_params(params))
        record = portal.state[kind].get(record_id)
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        del portal.state[kind][record_id]
        portal.emit(f"ONCRM{kind.upper()}DELETE", {"FIELDS": {"ID": record_id}}, params)
        return True

    @method(f"crm.{kind}.fields", scope)
    def _fields(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (ftype, title) in FIELD_TYPES[kind].items():
            info: dict[str, Any] = {"type": ftype, "isRequired": name in REQUIRED[kind], "isReadOnly": name in READ_ONLY,
                                    "isImmutable": name in IMMUTABLE.get(kind, set()),
                                    "isMultiple": ftype == "crm_multifield", "isDynamic": name.startswith("UF_"),
                                    "title": title}
            if ftype == "crm_status" and name in STATUS_TYPES:
                info["statusType"] = STATUS_TYPES[name]
            if name.startswith("UF_"):
                info.update({"listLabel": title, "formLabel": title, "filterLabel": title})
                if ftype == "enumeration":
                    info["items"] = data.SOURCE_ENUM
            out[name] = info
        return out


def _crm_select(record: dict[str, Any], select: Any) -> dict[str, Any]:
    """``select`` of legacy CRM lists (crm-deal-list.md): by default ``*`` + ``UF_*``; ``*`` is every standard field
    but multifields; ``UF_*`` every user field; a multifield comes back only when named."""
    names = [str(n) for n in select] if isinstance(select, list) and select else ["*", "UF_*"]
    out: dict[str, Any] = {}
    for name in names:
        upper_name = name.upper()
        if name == "*":
            out.update({k: v for k, v in record.items() if not k.startswith("UF_") and k not in MULTIFIELDS})
        elif upper_name == "UF_*":
            out.update({k: v for k, v in record.items() if k.startswith("UF_")})
        elif upper_name in record:
            out[upper_name] = record[upper_name]
    if "ID" in record:
        out.setdefault("ID", record["ID"])
    return out


for _kind in ("deal", "lead", "contact", "company"):
    _crm(_kind)


# --- crm.item.* (camelCase, result.item / result.items) ------------------------------------------------------


def camel(name: str) -> str:
    parts = name.lower().split("_")
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def upper(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _item_kind(portal: Portal, params: dict[str, Any]) -> tuple[int, str]:
    etid = _id(params, "entityTypeId")
    if etid in ENTITY_TYPES:
        return etid, ENTITY_TYPES[etid]
    if etid >= 1030 and etid in portal.smart_types:
        return etid, f"smart:{etid}"
    raise ApiError("NOT_FOUND", f"Smart process {etid} not found", 400)


def _store(portal: Portal, kind: str) -> dict[int, dict[str, Any]]:
    if kind.startswith("smart:"):
        store: dict[int, dict[str, Any]] = portal.state["smart_item"].setdefault(int(kind[6:]), {})
        return store
    kinds: dict[int, dict[str, Any]] = portal.state[kind]
    return kinds


# The universal names of crm.item.* (api-reference/crm/universal/object-fields.md) for the legacy columns.
_ITEM_NAMES = {"DATE_CREATE": "createdTime", "DATE_MODIFY": "updatedTime", "CREATED_BY_ID": "createdBy",
               "MODIFY_BY_ID": "updatedBy", "ASSIGNED_BY_ID": "assignedById", "CREATED_TIME": "createdTime",
               "UPDATED_TIME": "updatedTime"}
_ITEM_INTS = {"id", "createdBy", "updatedBy", "assignedById", "companyId", "contactId", "categoryId", "leadId"}
_ITEM_FLOATS = {"opportunity"}
_SMART_FIELDS = {"ID", "TITLE", "CREATED_TIME", "UPDATED_TIME", "STAGE_ID", "CATEGORY_ID", "ASSIGNED_BY_ID",
                 "OPPORTUNITY", "CURRENCY_ID", "COMPANY_ID", "CONTACT_ID", "CREATED_BY_ID"}


def item_name(legacy: str) -> str:
    """``DATE_CREATE`` → ``createdTime``, ``UF_CRM_1720019876534`` → ``ufCrm_1720019876534``, ``STAGE_ID`` → ``stageId``."""
    if legacy in _ITEM_NAMES:
        return _ITEM_NAMES[legacy]
    parts = legacy.lower().split("_")
    out = parts[0]
    for part in parts[1:]:
        out += ("_" + part) if part[:1].isdigit() else part.capitalize()
    return out


def _item_columns(portal: Portal, kind: str) -> dict[str, str]:
    """Universal name → legacy column, for the fields an entity type has."""
    if kind.startswith("smart:"):
        names = set(_SMART_FIELDS)
        for record in _store(portal, kind).values():
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
                    fm.append({"id": int(entry.get("ID") or 0), "valueType": entry.get("VALUE_TYPE"),
                               "value": entry.get("VALUE"), "typeId": entry.get("TYPE_ID") or key})
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
        field = key[len(prefix):]
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
            raise ApiError("INVALID_ARG_VALUE", "Invalid order: allowed sort directions are ASC, DESC. "
                                                f"But got '{direction}' for field '{field}'")
        out[column] = str(direction).upper()
    return out


@method("crm.item.list", "crm")
def item_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    etid, kind = _item_kind(portal, params)
    columns = _item_columns(portal, kind)
    flt = _item_filter(params.get("filter") or {}, columns)
    rows = [normalize_multifields(portal, r) for r in _store(portal, kind).values()]
    rows = [r for r in rows if _matches_group(r, flt)]
    rows = order_rows(rows, _item_order(params.get("order") or {"id": "ASC"}, columns))
    portal.charge(items=len(rows), counted=str(params.get("start", 0)) != "-1", offset=params.get("start"))
    chunk, total, nxt = page(rows, params.get("start"))
    select = params.get("select")
    items = [_to_item(r, etid) for r in chunk]
    if isinstance(select, list) and select and "*" not in select:
        wanted = {str(n) for n in select}
        items = [{k: v for k, v in i.items() if k in wanted or k == "id"} for i in items]
    return Listing({"items": items}, total, nxt)


@method("crm.item.get", "crm")
def item_get(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(portal, params)
    record = _store(portal, kind).get(_id(params))
    if record is None:
        raise ApiError("NOT_FOUND", "Element not found")
    return {"item": _to_item(normalize_multifields(portal, record), etid)}


def _item_fields_in(portal: Portal, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Universal field names of a write → legacy columns; ``fm`` → multifields."""
    columns = _item_columns(portal, kind)
    out: dict[str, Any] = {}
    for key, value in fields.items():
        key = str(key)
        if key == "fm" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    type_id = str(entry.get("typeId") or "PHONE").upper()
                    out.setdefault(type_id, []).append({"ID": entry.get("id"), "VALUE": entry.get("value"),
                                                        "VALUE_TYPE": entry.get("valueType") or "WORK"})
            continue
        out[columns.get(key) or upper(key)] = value
    return out


@method("crm.item.add", "crm")
def item_add(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(portal, params)
    fields = _item_fields_in(portal, kind, _fields_arg(params))
    if kind.startswith("smart:"):
        new_id = portal.next_id(kind)
        stamp = now_iso(portal)
        record = {"ID": str(new_id), "TITLE": fields.get("TITLE") or f"Item #{new_id}", **fields,
                  "CREATED_TIME": stamp, "UPDATED_TIME": stamp, "CREATED_BY_ID": str(caller.user_id)}
        record.setdefault("ASSIGNED_BY_ID", str(caller.user_id))
        _store(portal, kind)[new_id] = record
        return {"item": _to_item(record, etid)}
    new_id = METHODS[f"crm.{kind}.add"][1](portal, {"fields": fields}, caller)
    return {"item": _to_item(portal.state[kind][new_id], etid)}


@method("crm.item.update", "crm")
def item_update(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    etid, kind = _item_kind(portal, params)
    fields = _item_fields_in(portal, kind, _fields_arg(params))
    record_id = _id(params)
    if kind.startswith("smart:"):
        record = _store(portal, kind).get(record_id)
        if record is None:
            raise ApiError("NOT_FOUND", "Element not found")
        record.update(fields)
        record["UPDATED_TIME"] = now_iso(portal)
    else:
        if record_id not in portal.state[kind]:
            raise ApiError("NOT_FOUND", "Element not found")
        METHODS[f"crm.{kind}.update"][1](portal, {"id": record_id, "fields": fields}, caller)
        record = portal.state[kind][record_id]
    return {"item": _to_item(record, etid)}


@method("crm.item.delete", "crm")
def item_delete(portal: Portal, params: dict[str, Any], caller: Caller) -> list[Any]:
    _etid, kind = _item_kind(portal, params)
    record_id = _id(params)
    if kind.startswith("smart:"):
        if _store(portal, kind).pop(record_id, None) is None:
            raise ApiError("NOT_FOUND", "Element not found")
    else:
        if record_id not in portal.state[kind]:
            raise ApiError("NOT_FOUND", "Element not found")
        METHODS[f"crm.{kind}.delete"][1](portal, {"id": record_id}, caller)
    return []


@method("crm.item.fields", "crm")
def item_fields(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """crm-item-fields.md: ``result.fields`` keyed by universal name, with upperName and the same flags."""
    _, kind = _item_kind(portal, params)
    base = FIELD_TYPES.get(kind, {n: ("string", n.title()) for n in sorted(_SMART_FIELDS)})
    out: dict[str, Any] = {}
    for legacy, (ftype, title) in base.items():
        if legacy in MULTIFIELDS:
            continue
        out[item_name(legacy)] = {"type": ftype, "isRequired": legacy in REQUIRED.get(kind, set()),
                                  "isReadOnly": legacy in READ_ONLY, "isImmutable": legacy in IMMUTABLE.get(kind, set()),
                                  "isMultiple": False, "isDynamic": legacy.startswith("UF_"), "title": title,
                                  "upperName": legacy, **({"statusType": STATUS_TYPES[legacy]}
                                                          if ftype == "crm_status" and legacy in STATUS_TYPES else {})}
    if kind in ("lead", "contact", "company"):
        out["fm"] = {"type": "crm_multifield", "isRequired": False, "isReadOnly": False, "isImmutable": False,
                     "isMultiple": True, "isDynamic": False, "title": "Multifields", "upperName": "FM"}
    return {"fields": out}


@method("crm.type.list", "crm")
def type_list(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"types": [{"entityTypeId": etid, "title": title} for etid, title in portal.smart_types.items()]}


# --- pipelines, stages, activities, timeline ---------------------------------------------------------------


@method("crm.category.list", "crm")
def category_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    """crm-category-list.md: ``result.categories`` (id, name, sort, entityTypeId, isDefault, originId,
    originatorId) and ``total``."""
    etid = _id(params, "entityTypeId")
    if etid != 2:
        cats = [{"id": 0, "name": "General", "sort": 500, "entityTypeId": etid, "isDefault": "Y", "originId": "",
                 "originatorId": ""}]
    else:
        cats = [{"id": cid, "name": name, "sort": 100 * (cid + 1), "entityTypeId": 2,
                 "isDefault": "Y" if cid == 0 else "N", "originId": "", "originatorId": ""}
                for cid, name in data.CATEGORIES.items()]
    return Listing({"categories": cats}, len(cats), None)


_STAGE_COLORS = ("#39A8EF", "#2FC6F6", "#55D0E0", "#47E4C2", "#FFA900", "#7BD500", "#FF5752")


@method("crm.status.list", "crm")
def status_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    """crm-status-list.md: ID, ENTITY_ID, STATUS_ID, NAME, NAME_INIT, SORT, SYSTEM, CATEGORY_ID, COLOR, SEMANTICS,
    EXTRA; filter and order on those; ``total``."""
    rows: list[dict[str, Any]] = []
    next_id = 101

    def add(entity: str, status_id: str, name: str, sort: int, category: str | None, semantics: str | None) -> None:
        nonlocal next_id
        color = _STAGE_COLORS[(sort // 10 - 1) % len(_STAGE_COLORS)]
        extra = {"SEMANTICS": {"S": "success", "F": "failure"}.get(semantics or "", "process"), "COLOR": color}
        rows.append({"ID": str(next_id), "ENTITY_ID": entity, "STATUS_ID": status_id, "NAME": name, "NAME_INIT": name,
                     "SORT": str(sort), "SYSTEM": "Y" if sort == 10 or semantics else "N", "CATEGORY_ID": category,
                     "COLOR": color, "SEMANTICS": semantics, "EXTRA": extra})
        next_id += 2

    for cat, stages in data.DEAL_STAGES.items():
        entity = "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}"
        for sort, (status_id, name) in enumerate(stages, 1):
            semantics = "S" if status_id.endswith("WON") else "F" if status_id.endswith("LOSE") else None
            add(entity, status_id, name, sort * 10, None if cat == 0 else str(cat), semantics)
    for sort, (status_id, name) in enumerate(data.LEAD_STATUSES, 1):
        add("STATUS", status_id, name, sort * 10, None,
            "S" if status_id == "CONVERTED" else "F" if status_id == "JUNK" else None)
    for sort, source in enumerate(data.SOURCES, 1):
        add("SOURCE", source, source.title(), sort * 10, None, None)
    query = {str(k).lower(): v for k, v in params.items()}
    flt = query.get("filter") or {}
    if not isinstance(flt, dict):
        raise crm_error("Parameter 'filter' must be array.")
    rows = [r for r in rows if matches(r, {str(k).upper(): v for k, v in flt.items()})]
    order = query.get("order")
    if isinstance(order, dict) and order:
        rows = order_rows(rows, {str(k).upper(): v for k, v in order.items()})
    return Listing(rows, len(rows), None)


_CURRENCIES = (("USD", "US Dollar", "1.0000", "Y"), ("EUR", "Euro", "0.9200", "N"), ("RUB", "Russian Ruble", "92.0000", "N"),
               ("BRL", "Brazilian Real", "5.0000", "N"), ("PLN", "Polish Zloty", "4.0000", "N"))


@method("crm.currency.list", "crm")
def currency_list(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """crm-currency-list.md: CURRENCY, AMOUNT_CNT, AMOUNT, SORT, BASE, FULL_NAME, ..."""
    return [{"CURRENCY": code, "AMOUNT_CNT": "1", "AMOUNT": amount, "SORT": str(100 * (i + 1)), "BASE": base,
             "FULL_NAME": name, "LID": "en", "FORMAT_STRING": f"# {code}", "DEC_POINT": ".", "THOUSANDS_SEP": " ",
             "DECIMALS": "2"} for i, (code, name, amount, base) in enumerate(_CURRENCIES)]


@method("crm.timeline.comment.add", "crm")
def timeline_comment_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    fields = _fields_arg(params)
    etype = str(fields.get("ENTITY_TYPE", "")).lower()
    if etype not in FIELD_TYPES:
        raise ApiError("ERROR_ARGUMENT", "ENTITY_TYPE must be lead, deal, contact or company")
    if _id(fields, "ENTITY_ID") not in portal.state[etype]:
        raise ApiError("NOT_FOUND", "Owner entity not found")
    if not str(fields.get("COMMENT") or "").strip():
        raise ApiError("ERROR_ARGUMENT", "COMMENT is required")
    new_id = portal.next_id("timeline_comment")
    portal.state["timeline_comment"][new_id] = {"ID": str(new_id), "ENTITY_TYPE": etype, "ENTITY_ID": str(fields["ENTITY_ID"]),
                                                "COMMENT": str(fields["COMMENT"]), "AUTHOR_ID": str(caller.user_id),
                                                "CREATED": now_iso(portal)}
    return new_id


@method("crm.timeline.comment.list", "crm")
def timeline_comment_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    rows = [r for r in portal.state["timeline_comment"].values() if matches(r, params.get("filter") or {})]
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing(chunk, total, nxt)


@method("crm.activity.list", "crm")
def activity_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    rows = [r for r in portal.state["activity"].values() if matches(r, params.get("filter") or {})]
    chunk, total, nxt = page(order_rows(rows, params.get("order") or {"ID": "ASC"}), params.get("start"))
    return Listing([select_fields(r, params.get("select")) for r in chunk], total, nxt)


@method("crm.activity.todo.add", "crm")
def activity_todo_add(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    # crm-activity-todo-add.md: ownerTypeId, ownerId and deadline are required (100); a missing owner NOT_FOUND
    if any(params.get(k) in (None, "") for k in ("ownerTypeId", "ownerId", "deadline")):
        raise ApiError("100", "Required fields are missing", 400)
    deadline = str(params["deadline"])
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?([+-]\d\d:?\d\d|Z)?", deadline):
        raise ApiError("WRONG_DATETIME_FORMAT", "Incorrect date format", 400)
    owner_type, owner_id = _id(params, "ownerTypeId"), _id(params, "ownerId")
    kind = ENTITY_TYPES.get(owner_type)
    if kind is None or owner_id not in portal.state[kind]:
        raise ApiError("NOT_FOUND", "CRM object not found")
    new_id = portal.next_id("activity")
    portal.state["activity"][new_id] = {"ID": str(new_id), "OWNER_TYPE_ID": str(owner_type), "OWNER_ID": str(owner_id),
                                        "SUBJECT": str(params.get("title") or "To-do"), "DESCRIPTION": str(params.get("description") or ""),
                                        "DEADLINE": str(params.get("deadline") or ""), "RESPONSIBLE_ID": str(params.get("responsibleId") or caller.user_id),
                                        "COMPLETED": "N", "PROVIDER_ID": "CRM_TODO"}
    return {"id": new_id}


# --- users and departments ---------------------------------------------------------------------------------


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k != "IS_ADMIN"}


@method("user.current", "user")
def user_current(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return _public_user(portal.state["user"][caller.user_id])


@method("user.get", "user")
def user_get(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    flt = params.get("filter") if isinstance(params.get("filter"), dict) else {k: v for k, v in params.items() if k.isupper() and k not in ("SORT", "ORDER")}
    rows = [u for u in portal.state["user"].values() if matches(u, flt or {})]
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing([_public_user(u) for u in chunk], total, nxt)


@method("user.search", "user")
def user_search(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    flt = params.get("FILTER") or params.get("filter") or {}
    needle = str(flt.get("FIND") or params.get("FIND") or "").casefold().strip()
    rest = {k: v for k, v in flt.items() if k != "FIND"} if isinstance(flt, dict) else {}
    rows = []
    for user in portal.state["user"].values():
        text = " ".join(str(user.get(f) or "") for f in ("NAME", "LAST_NAME", "EMAIL", "WORK_POSITION")).casefold()
        if (not needle or all(part in text for part in needle.split())) and matches(user, rest):
            rows.append(user)
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing([_public_user(u) for u in chunk], total, nxt)


@method("department.get", "department")
def department_get(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    flt = {k: v for k, v in params.items() if k in ("ID", "NAME", "PARENT")}
    rows = [d for d in portal.state["department"].values() if matches(d, flt)]
    chunk, total, nxt = page(rows, params.get("START", params.get("start")))
    return Listing(chunk, total, nxt)


# --- tasks (camelCase, result.tasks / result.task) ---------------------------------------------------------

TASK_FIELDS = {"TITLE": "title", "DESCRIPTION": "description", "RESPONSIBLE_ID": "responsibleId", "DEADLINE": "deadline",
               "STATUS": "status", "PRIORITY": "priority", "GROUP_ID": "groupId", "CREATED_BY": "createdBy", "ID": "id",
               "CREATED_DATE": "createdDate", "CHANGED_DATE": "changedDate", "UF_CRM_TASK": "ufCrmTask"}


def _task_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        name = TASK_FIELDS.get(str(key).upper(), str(key))
        if name in TASK_FIELDS.values() and name not in ("id", "createdDate", "changedDate"):
            out[name] = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    return out


def _task_or_404(portal: Portal, params: dict[str, Any], key: str = "taskId") -> dict[str, Any]:
    """tasks-task-get.md / -update.md, Error Handling: no taskId → 100, a wrong one → 0."""
    raw = next((params[k] for k in (key, key.upper(), key.lower(), "id") if k in params), None)
    if raw is None:
        raise ApiError("100", "CTaskItem All parameters in the constructor must have real class type (internal error)", 400)
    try:
        task_id = int(str(raw))
    except ValueError:
        raise ApiError("0", "wrong task id", 400) from None
    task = portal.state["task"].get(task_id)
    if task is None:  # UNVERIFIED: the docs name no code for a task that does not exist
        raise ApiError("ERROR_CORE", "Task not found or not accessible", 400)
    return task  # type: ignore[no-any-return]


def _task_fields_arg(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields", params.get("FIELDS"))
    if not isinstance(fields, dict) or not fields:
        raise ApiError("100", "Could not find value for parameter {fields} (internal error)", 400)
    return fields


def _user_id(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


@method("tasks.task.list", "task")
def task_list(portal: Portal, params: dict[str, Any], caller: Caller) -> Listing:
    flt = params.get("filter") or {}
    task_flt = {}
    for key, value in (flt.items() if isinstance(flt, dict) else []):
        prefix = re.match(r"^[^A-Za-z_]*", key).group(0)  # type: ignore[union-attr]
        name = key[len(prefix):]
        task_flt[prefix + TASK_FIELDS.get(name.upper(), name)] = value
    rows = [t for t in portal.state["task"].values() if matches(t, task_flt)]
    order = params.get("order") or {"ID": "ASC"}
    rows = order_rows(rows, {TASK_FIELDS.get(str(k).upper(), k): v for k, v in order.items()} if isinstance(order, dict) else {})
    portal.charge(items=len(rows), counted=str(params.get("start", 0)) != "-1", offset=params.get("start"))
    chunk, total, nxt = page(rows, params.get("start"))
    select = params.get("select")
    if isinstance(select, list) and select and "*" not in select:
        wanted = {TASK_FIELDS.get(str(s).upper(), str(s)) for s in select} | {"id"}
        chunk = [{k: v for k, v in t.items() if k in wanted} for t in chunk]
    return Listing({"tasks": [dict(t) for t in chunk]}, total, nxt)


@method("tasks.task.get", "task")
def task_get(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"task": dict(_task_or_404(portal, params))}


@method("tasks.task.add", "task")
def task_add(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    fields = _task_fields(_task_fields_arg(params))
    if not str(fields.get("title") or "").strip():
        raise ApiError("ERROR_CORE", "Task title not specified", 400)  # tasks-task-add.md, Error Handling
    if "responsibleId" in fields and _user_id(fields["responsibleId"]) not in portal.state["user"]:
        raise ApiError("ERROR_CORE", 'User specified in the "Responsible" field not found', 400)
    new_id = portal.next_id("task")
    stamp = now_iso(portal)
    task = {"id": str(new_id), "title": "", "description": "", "status": "2", "responsibleId": str(caller.user_id),
            "createdBy": str(caller.user_id), "deadline": None, "createdDate": stamp, "changedDate": stamp,
            "priority": "1", "groupId": "0", **fields}
    portal.state["task"][new_id] = task
    portal.emit("ONTASKADD", {"FIELDS_AFTER": {"ID": new_id}}, params)
    return {"task": dict(task)}


@method("tasks.task.update", "task")
def task_update(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(portal, params)
    fields = _task_fields(_task_fields_arg(params))
    if "responsibleId" in fields and _user_id(fields["responsibleId"]) not in portal.state["user"]:
        raise ApiError("ERROR_CORE", 'The user specified in the "Responsible" field was not found<br>', 400)
    task.update(fields)
    task["changedDate"] = now_iso(portal)
    portal.emit("ONTASKUPDATE", {"FIELDS_AFTER": {"ID": int(task["id"])}}, params)
    return {"task": dict(task)}


@method("tasks.task.complete", "task")
def task_complete(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(portal, params)
    task["status"] = "5"
    task["changedDate"] = now_iso(portal)
    portal.emit("ONTASKUPDATE", {"FIELDS_AFTER": {"ID": int(task["id"])}}, params)
    return {"task": dict(task)}


@method("tasks.task.delete", "task")
def task_delete(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(portal, params)
    del portal.state["task"][int(task["id"])]
    portal.emit("ONTASKDELETE", {"FIELDS_BEFORE": {"ID": int(task["id"])}}, params)
    return {"task": True}


@method("task.commentitem.add", "task")
def task_comment_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    positional = params.get("0")  # the documented call passes [TASKID, FIELDS] positionally
    task_id = params.get("TASKID", params.get("taskId", positional if isinstance(positional, (int, str)) else None))
    if task_id is None or int(task_id) not in portal.state["task"]:
        raise ApiError("ERROR_CORE", "Task not found or not accessible", 400)
    fields = params.get("FIELDS") or params.get("fields") or {}
    text = str(fields.get("POST_MESSAGE") or "").strip() if isinstance(fields, dict) else ""
    if not text:
        raise ApiError("ERROR_CORE", "POST_MESSAGE is required", 400)
    new_id = portal.next_id("task_comment")
    portal.state["task_comment"][new_id] = {"ID": str(new_id), "TASK_ID": str(task_id), "POST_MESSAGE": text,
                                            "AUTHOR_ID": str(caller.user_id)}
    return new_id


# --- chats and notifications -------------------------------------------------------------------------------


@method("im.message.add", "im")
def im_message_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    # im-message-add.md, Error Handling: MESSAGE_EMPTY, USER_ID_EMPTY, USER_NOT_FOUND, CHAT_ID
    query = {str(k).upper(): v for k, v in params.items()}
    dialog = str(query.get("DIALOG_ID") or "").strip()
    text = str(query.get("MESSAGE") or "").strip()
    if not text and not query.get("ATTACH"):
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if dialog.startswith("chat"):
        if not dialog[4:].isdigit() or int(dialog[4:]) not in portal.state.get("chat", {}):
            raise ApiError("CHAT_ID", "Error creating message", 400)
    elif not dialog.isdigit() or int(dialog) <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    elif int(dialog) not in portal.state["user"]:
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    new_id = portal.next_id("message")
    portal.state["message"][new_id] = {"id": new_id, "dialogId": str(dialog), "text": text, "authorId": caller.user_id}
    return new_id


@method("im.dialog.messages.get", "im")
def im_dialog_messages(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    dialog = str(params.get("DIALOG_ID") or "")
    messages = [m for m in portal.state["message"].values() if m["dialogId"] == dialog]
    return {"messages": list(reversed(messages))[: int(params.get("LIMIT") or 20)], "chat_id": 0}


@method("im.notify.system.add", "im")
def im_notify_system(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    return _notify(portal, params, "system")


@method("im.notify.personal.add", "im")
def im_notify_personal(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    return _notify(portal, params, "personal")


def _notify(portal: Portal, params: dict[str, Any], kind: str) -> int:
    # im-notify-system-add.md, Error Handling: USER_ID_EMPTY when missing or <= 0, MESSAGE_EMPTY for no text
    query = {str(k).upper(): v for k, v in params.items()}
    user_id = _user_id(query.get("USER_ID") or 0)
    message = str(query.get("MESSAGE") or "").strip()
    if user_id <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    if not message:
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if user_id not in portal.state["user"]:  # UNVERIFIED: the docs name no code for an unknown user here
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    new_id = portal.next_id("notification")
    portal.state["notification"][new_id] = {"id": new_id, "userId": int(user_id), "message": message, "kind": kind}
    return new_id


# --- system methods, as CRestProvider implements them (modules/rest/classes/general/rest_provider.php) --------

_EVENT_METHODS = ("event.bind", "event.unbind", "event.get", "event.offline.get", "event.offline.clear",
                  "event.offline.error", "event.offline.list")


def _methods_by_scope() -> dict[str, list[str]]:
    by_scope: dict[str, list[str]] = {}
    for name, (scope_name, _) in METHODS.items():
        by_scope.setdefault(scope_name, []).append(name)
    by_scope.setdefault("event", []).extend(_EVENT_METHODS)
    by_scope.setdefault("basic", []).extend(["batch", "events"])
    return by_scope


@method("profile", "basic")
def profile(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """common/users/profile.md; getProfile: ID, ADMIN, NAME, LAST_NAME, PERSONAL_GENDER, TIME_ZONE, TIME_ZONE_OFFSET."""
    user = portal.state["user"][caller.user_id]
    if str(user.get("ACTIVE", True)).lower() in ("false", "n"):
        return {}
    return {"ID": str(user["ID"]), "ADMIN": caller.is_admin, "NAME": user["NAME"], "LAST_NAME": user["LAST_NAME"],
            "PERSONAL_GENDER": str(user.get("PERSONAL_GENDER") or ""), "TIME_ZONE": "", "TIME_ZONE_OFFSET": 10800}


@method("scope", "basic")
def scope(portal: Portal, params: dict[str, Any], caller: Caller) -> list[str]:
    """scopeList: the credential's scopes, or every scope of the portal with ``full``."""
    query = {str(k).upper(): v for k, v in params.items()}
    if str(query.get("FULL") or "").lower() in ("1", "true", "y"):
        return sorted(s for s in _methods_by_scope() if s != "basic")
    return sorted(s for s in caller.scopes if s != "basic")


@method("methods", "basic")
def methods_list(portal: Portal, params: dict[str, Any], caller: Caller) -> list[str]:
    """methodsList: the methods of ``scope``, of every scope with ``full``, else of the credential's scopes."""
    query = {str(k).upper(): v for k, v in params.items()}
    by_scope = _methods_by_scope()
    if query.get("SCOPE") not in (None, ""):
        wanted = {str(query["SCOPE"])}
    elif str(query.get("FULL") or "").lower() in ("1", "true", "y"):
        wanted = set(by_scope)
    else:
        wanted = set(caller.scopes) | {"basic"}
    return [name for scope_name in sorted(by_scope) if scope_name in wanted for name in sorted(by_scope[scope_name])]


@method("method.get", "basic")
def method_get(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, bool]:
    """common/system/method-get.md: ``isExisting`` on this portal, ``isAvailable`` with this credential's scopes.
    The name is matched as given against the lower-case method list (rest_provider.php getMethod)."""
    name = str(params.get("name") or "")
    result = {"isExisting": False, "isAvailable": False}
    for scope_name, names in _methods_by_scope().items():
        if name and name in names:
            result["isExisting"] = True
            if scope_name == "basic" or scope_name in caller.scopes:
                result["isAvailable"] = True
    return result


@method("app.info", "basic")
def app_info(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """common/system/app-info.md; appInfo: an application's record, a webhook's scopes, else an access error."""
    if caller.kind == "oauth" and caller.app_id:
        return {"ID": sorted(portal.apps).index(caller.app_id) + 1 if caller.app_id in portal.apps else 1, "CODE": f"local.{caller.app_id}", "VERSION": 1, "STATUS": "L",
                "INSTALLED": True, "PAYMENT_EXPIRED": "N", "DAYS": None, "LANGUAGE_ID": "en", "LICENSE": "en_pro",
                "LICENSE_TYPE": "pro", "LICENSE_FAMILY": "pro"}
    if caller.kind == "webhook":
        return {"SCOPE": sorted(s for s in caller.scopes if s != "basic"), "LICENSE": "en_pro"}
    raise ApiError("ACCESS_DENIED", "Application context required", 403)


@method("feature.get", "basic")
def feature_get(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, str]:
    """getFeature: ``CODE`` is required (CODE_EMPTY); the sandbox enables every feature."""
    query = {str(k).upper(): v for k, v in params.items()}
    if not query.get("CODE"):
        raise ApiError("CODE_EMPTY", "CODE can't be empty", 400)
    return {"value": "Y"}


@method("server.time", "basic")
def server_time(portal: Portal, params: dict[str, Any], caller: Caller) -> str:
    """common/system/server-time.md: ``YYYY-MM-DDThh:mm:ss±hh:mm`` in the portal's time zone."""
    from bitrix24_agent_tools.sandbox.portal import _iso

    return _iso(portal.wall())


# --- a little of the other packs: live feed, calendar, business processes, Drive ----------------------------


@method("log.blogpost.add", "log")
def blogpost_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    message = str(params.get("POST_MESSAGE") or "").strip()
    if not message:  # log-blogpost-add.md, Error Handling
        raise ApiError("SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR", "Blog post hasn't been added", 400)
    new_id = portal.next_id("blogpost")
    portal.state.setdefault("blogpost", {})[new_id] = {
        "ID": str(new_id), "TITLE": str(params.get("POST_TITLE") or ""), "DETAIL_TEXT": message,
        "AUTHOR_ID": str(caller.user_id), "DEST": params.get("DEST") or ["UA"], "DATE_PUBLISH": now_iso(portal)}
    return new_id


@method("log.blogpost.get", "log")
def blogpost_get(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    posts = list(portal.state.get("blogpost", {}).values())
    wanted = params.get("POST_ID")
    return [p for p in posts if wanted is None or p["ID"] == str(wanted)]


@method("calendar.event.add", "calendar")
def calendar_event_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    # calendar-event-add.md, Error Handling: HTTP 400, empty code, one text per missing parameter
    for key in ("type", "ownerId", "name", "from", "to"):
        if params.get(key) in (None, "") and not (key in ("from", "to") and params.get(f"{key}_ts")):
            raise ApiError("", f'The required parameter "{key}" for the method "calendar.event.add" is not set', 400)
    if str(params["to"]) < str(params["from"]):
        raise ApiError("ERROR_ARGUMENT", "'to' is before 'from'")
    new_id = portal.next_id("calendar_event")
    portal.state.setdefault("calendar_event", {})[new_id] = {
        "ID": str(new_id), "NAME": str(params["name"]), "DATE_FROM": str(params["from"]), "DATE_TO": str(params["to"]),
        "OWNER_ID": str(params.get("ownerId") or caller.user_id), "CAL_TYPE": str(params.get("type") or "user"),
        "SECTION_ID": str(params.get("section") or "1"), "DESCRIPTION": str(params.get("description") or "")}
    return new_id


@method("calendar.event.get", "calendar")
def calendar_event_get(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    events = portal.state.get("calendar_event", {}).values()
    return [e for e in events if str(params.get("from") or "") <= e["DATE_FROM"] <= str(params.get("to") or "9999")]


@method("bizproc.workflow.template.list", "bizproc")
def workflow_templates(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return [{"ID": "1", "NAME": "Deal approval", "DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal", "DEAL"]},
            {"ID": "2", "NAME": "Lead qualification", "DOCUMENT_TYPE": ["crm", "CCrmDocumentLead", "LEAD"]}]


@method("bizproc.workflow.start", "bizproc")
def workflow_start(portal: Portal, params: dict[str, Any], caller: Caller) -> str:
    template = str(params.get("TEMPLATE_ID") or "")
    document = params.get("DOCUMENT_ID")
    if template not in ("1", "2"):
        raise ApiError("ERROR_ARGUMENT", "unknown TEMPLATE_ID")
    if not isinstance(document, list) or len(document) != 3:
        raise ApiError("ERROR_ARGUMENT", "DOCUMENT_ID must be [module, entity, id]")
    workflow_id = f"{portal.next_id('workflow'):08x}.sbx"
    portal.state.setdefault("workflow", {})[workflow_id] = {"ID": workflow_id, "TEMPLATE_ID": template,
                                                            "DOCUMENT_ID": document, "STARTED_BY": str(caller.user_id)}
    return workflow_id


@method("bizproc.workflow.instances", "bizproc")
def workflow_instances(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return list(portal.state.get("workflow", {}).values())


_DRIVE: dict[int, dict[str, Any]] = {1: {"ID": "1", "NAME": "Shared", "TYPE": "folder", "PARENT_ID": None},
          2: {"ID": "2", "NAME": "Contracts", "TYPE": "folder", "PARENT_ID": "1"},
          3: {"ID": "3", "NAME": "Acme contract.pdf", "TYPE": "file", "PARENT_ID": "2", "SIZE": "48213"},
          4: {"ID": "4", "NAME": "Price list 2026.xlsx", "TYPE": "file", "PARENT_ID": "1", "SIZE": "19004"}}


@method("disk.folder.getchildren", "disk")
def folder_children(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    folder = str(_id(params))
    if int(folder) not in _DRIVE or _DRIVE[int(folder)]["TYPE"] != "folder":
        raise ApiError("ERROR_NOT_FOUND", "Could not find folder", 404)
    return [dict(item) for item in _DRIVE.values() if item["PARENT_ID"] == folder]
