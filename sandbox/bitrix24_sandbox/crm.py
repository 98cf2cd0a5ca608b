"""Legacy CRM methods (crm.lead/deal/contact/company.*), pipelines and stages, currencies, activities,
timeline."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox import data
from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.query import (
    PAGE,
    id_window,
    is_id_order,
    matches,
    order_rows,
    page,
    select_fields,
)
from bitrix24_sandbox.registry import (
    Listing,
    _id,
    method,
    now_iso,
    positive,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


ENTITY_TYPES = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
FIELD_TYPES: dict[str, dict[str, tuple[str, str]]] = {
    "deal": {
        "ID": ("integer", "ID"),
        "TITLE": ("string", "Name"),
        "CATEGORY_ID": ("crm_category", "Pipeline"),
        "STAGE_ID": ("crm_status", "Stage"),
        "OPPORTUNITY": ("double", "Amount"),
        "IS_MANUAL_OPPORTUNITY": ("char", "IS_MANUAL_OPPORTUNITY"),  # crm-deal-fields.md, crm-lead-fields.md
        "CURRENCY_ID": ("crm_currency", "Currency"),
        "CONTACT_ID": ("crm_contact", "Contact"),
        "COMPANY_ID": ("crm_company", "Company"),
        "ASSIGNED_BY_ID": ("user", "Responsible"),
        "SOURCE_ID": ("crm_status", "Source"),
        "CLOSED": ("char", "Closed"),
        "COMMENTS": ("string", "Comment"),
        "ORIGIN_ID": ("string", "External ID"),
        "DATE_CREATE": ("datetime", "Created"),
        "DATE_MODIFY": ("datetime", "Modified"),
        "CREATED_BY_ID": ("user", "Created by"),
        "TYPE_ID": ("crm_status", "Type"),
        "BEGINDATE": ("date", "Start date"),
        "CLOSEDATE": ("date", "End date"),
        "PROBABILITY": ("integer", "Probability"),
        "ORIGINATOR_ID": ("string", "External source"),
        "SOURCE_DESCRIPTION": ("string", "Source information"),
        "ADDITIONAL_INFO": ("string", "Additional"),
        "OPENED": ("char", "Available to everyone"),
        "LEAD_ID": ("crm_lead", "Lead"),
        "UF_CRM_SOURCE_CHANNEL": ("enumeration", "Source channel"),
    },
    "lead": {
        "ID": ("integer", "ID"),
        "TITLE": ("string", "Lead name"),
        "NAME": ("string", "First name"),
        "LAST_NAME": ("string", "Last name"),
        "SECOND_NAME": ("string", "Second name"),
        "COMPANY_TITLE": ("string", "Company name"),
        "POST": ("string", "Position"),
        "ADDRESS": ("string", "Address"),
        "SOURCE_DESCRIPTION": ("string", "Source information"),
        "STATUS_DESCRIPTION": ("string", "Status information"),
        "ORIGIN_ID": ("string", "External ID"),
        "ORIGINATOR_ID": ("string", "External source"),
        "BIRTHDATE": ("date", "Date of birth"),
        "OPENED": ("char", "Available to everyone"),
        "PHONE": ("crm_multifield", "Phone"),
        "EMAIL": ("crm_multifield", "E-mail"),
        "WEB": ("crm_multifield", "Website"),
        "IM": ("crm_multifield", "Messenger"),
        "STATUS_ID": ("crm_status", "Status"),
        "SOURCE_ID": ("crm_status", "Source"),
        "OPPORTUNITY": ("double", "Amount"),
        "IS_MANUAL_OPPORTUNITY": ("char", "IS_MANUAL_OPPORTUNITY"),  # crm-deal-fields.md, crm-lead-fields.md
        "CURRENCY_ID": ("crm_currency", "Currency"),
        "ASSIGNED_BY_ID": ("user", "Responsible"),
        "COMMENTS": ("string", "Comment"),
        "DATE_CREATE": ("datetime", "Created"),
        "DATE_MODIFY": ("datetime", "Modified"),
        "CREATED_BY_ID": ("user", "Created by"),
    },
    "contact": {
        "ID": ("integer", "ID"),
        "NAME": ("string", "First name"),
        "LAST_NAME": ("string", "Last name"),
        "EMAIL": ("crm_multifield", "E-mail"),
        "PHONE": ("crm_multifield", "Phone"),
        "WEB": ("crm_multifield", "Website"),
        "IM": ("crm_multifield", "Messenger"),
        "SECOND_NAME": ("string", "Second name"),
        "POST": ("string", "Position"),
        "ADDRESS": ("string", "Address"),
        "COMMENTS": ("string", "Comment"),
        "BIRTHDATE": ("date", "Date of birth"),
        "TYPE_ID": ("crm_status", "Contact type"),
        "SOURCE_ID": ("crm_status", "Source"),
        "ORIGIN_ID": ("string", "External ID"),
        "OPENED": ("char", "Available to everyone"),
        "COMPANY_ID": ("crm_company", "Company"),
        "ASSIGNED_BY_ID": ("user", "Responsible"),
        "DATE_CREATE": ("datetime", "Created"),
        "DATE_MODIFY": ("datetime", "Modified"),
        "CREATED_BY_ID": ("user", "Created by"),
    },
    "company": {
        "ID": ("integer", "ID"),
        "TITLE": ("string", "Company name"),
        "COMPANY_TYPE": ("crm_status", "Type"),
        "INDUSTRY": ("crm_status", "Industry"),
        "PHONE": ("crm_multifield", "Phone"),
        "EMAIL": ("crm_multifield", "E-mail"),
        "WEB": ("crm_multifield", "Website"),
        "IM": ("crm_multifield", "Messenger"),
        "COMMENTS": ("string", "Comment"),
        "ADDRESS": ("string", "Address"),
        "REVENUE": ("double", "Annual revenue"),
        "CURRENCY_ID": ("crm_currency", "Currency"),
        "EMPLOYEES": ("crm_status", "Employees"),
        "ORIGIN_ID": ("string", "External ID"),
        "OPENED": ("char", "Available to everyone"),
        "ASSIGNED_BY_ID": ("user", "Responsible"),
        "DATE_CREATE": ("datetime", "Created"),
        "DATE_MODIFY": ("datetime", "Modified"),
        "CREATED_BY_ID": ("user", "Created by"),
    },
}
# crm.*.fields (api-reference/crm/*/crm-*-fields.md): a deal's and a lead's TITLE are optional (a deal gets
# "Deal #<id>"); a company needs TITLE; a contact lists NAME, SECOND_NAME and LAST_NAME as required — one of
# them must be given (UNVERIFIED which combination the portal accepts; the sandbox takes any one).
REQUIRED: dict[str, set[str]] = {
    "deal": set(),
    "lead": set(),
    "contact": {"NAME", "LAST_NAME"},
    "company": {"TITLE"},
}
READ_ONLY = {"ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID"}
IMMUTABLE = {"deal": {"CATEGORY_ID"}}
MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
STATUS_TYPES = {
    "SOURCE_ID": "SOURCE",
    "STATUS_ID": "STATUS",
    "COMPANY_TYPE": "COMPANY_TYPE",
    "INDUSTRY": "INDUSTRY",
    "TYPE_ID": "DEAL_TYPE",
    "STAGE_ID": "DEAL_STAGE",
    "EMPLOYEES": "EMPLOYEES",
}


def crm_error(text: str) -> ApiError:
    """Legacy CRM methods answer HTTP 400 with an empty code and a text (e.g. crm-deal-get.md, Error
    Handling)."""
    return ApiError("", text, 400)


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


def _next_multifield_id(store: Store) -> str:
    return str(store.next_id("multifield") + 1000)


def _multifield_values(store: Store, type_id: str, value: Any) -> list[dict[str, Any]]:
    """New multifield values as the portal stores them: ID, TYPE_ID, VALUE, VALUE_TYPE (data-types.md)."""
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    out = []
    for item in items:
        entry = item if isinstance(item, dict) else {"VALUE": item}
        text = str(entry.get("VALUE") or "").strip()
        if text:
            out.append(
                {
                    "ID": _next_multifield_id(store),
                    "VALUE_TYPE": str(entry.get("VALUE_TYPE") or "WORK"),
                    "VALUE": text,
                    "TYPE_ID": type_id,
                }
            )
    return out


def _merge_multifield(
    store: Store, current: list[dict[str, Any]], type_id: str, value: Any
) -> list[dict[str, Any]]:
    """An update of a multifield (crm-contact-update.md, "Working with Multiple Fields"): a value without ID
    is added; with an ID it replaces that value; an ID with ``DELETE: "Y"`` or an empty VALUE removes it."""
    result = [dict(v) for v in current]
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    for item in items:
        entry = item if isinstance(item, dict) else {"VALUE": item}
        ident = str(entry.get("ID") or "")
        if not ident:
            result += _multifield_values(store, type_id, [entry])
            continue
        index = next((i for i, v in enumerate(result) if v["ID"] == ident), None)
        if index is None:
            continue
        if str(entry.get("DELETE") or "").upper() == "Y" or not str(entry.get("VALUE") or "").strip():
            del result[index]
        else:
            result[index] = {
                **result[index],
                "VALUE": str(entry["VALUE"]).strip(),
                "VALUE_TYPE": str(entry.get("VALUE_TYPE") or result[index]["VALUE_TYPE"]),
            }
    return result


def _legacy_start(start: Any) -> Any:
    """Legacy CRM lists page by page number, not by offset: IRestService::getNavData
    (rest/classes/general/rest.php) turns ``start`` into ``iNumPage = intval(start / 50) + 1``, so start=75
    answers rows 50-99."""
    try:
        value = int(start or 0)
    except (TypeError, ValueError):
        return start  # page() answers the error
    return value if value < 0 else value - value % 50


def normalize_multifields(store: Store, record: dict[str, Any]) -> dict[str, Any]:
    """Seeded records may hold bare multifield values; give them the portal's shape once."""
    for name in MULTIFIELDS:
        values = record.get(name)
        if isinstance(values, list) and any(not isinstance(v, dict) or "ID" not in v for v in values):
            record[name] = _multifield_values(store, name, values)
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
    def _list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
        params = _upper_params(params)
        flt = params.get("FILTER") or {}
        if not isinstance(flt, dict):
            raise crm_error("Parameter 'filter' must be array.")
        order = params.get("ORDER") or {"ID": "ASC"}
        if not isinstance(order, dict):
            raise crm_error("Parameter 'order' must be array.")
        flt = {str(k).upper(): v for k, v in flt.items()}
        candidates, rest = id_window(store.tables[kind], flt, cache=store.key_cache)
        order = {str(k).upper(): v for k, v in order.items()}
        by_id = is_id_order(order)
        start = params.get("START")

        def visible(row: dict[str, Any]) -> bool:
            mine = caller.is_admin or str(row.get("ASSIGNED_BY_ID")) == str(caller.user_id)
            return mine and matches(row, rest)

        if by_id is not None and _legacy_start(start) == -1:
            # One page in id order and no count: an index answers it from the first matching rows, so the
            # sandbox stops there too (an export's probe would otherwise touch every row twice).
            chunk: list[dict[str, Any]] = []
            for raw in reversed(candidates) if by_id == "DESC" else candidates:
                row = normalize_multifields(store, raw)
                if visible(row):
                    chunk.append(row)
                    if len(chunk) == PAGE:
                        break
            store.charge(items=len(chunk), counted=False, offset=-1)
            return Listing([_crm_select(r, params.get("SELECT")) for r in chunk], None, None)
        rows = [r for r in (normalize_multifields(store, raw) for raw in candidates) if visible(r)]
        if by_id == "DESC":
            rows.reverse()
        elif by_id is None:
            rows = order_rows(rows, order)
        store.charge(items=len(rows), counted=str(start if start is not None else 0) != "-1", offset=start)
        chunk, total, nxt = page(rows, _legacy_start(start))
        return Listing([_crm_select(r, params.get("SELECT")) for r in chunk], total, nxt)

    @method(f"crm.{kind}.get", scope)
    def _get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        record = store.tables[kind].get(_crm_id(_upper_params(params)))
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        return dict(normalize_multifields(store, record))

    @method(f"crm.{kind}.add", scope)
    def _add(store: Store, params: dict[str, Any], caller: Caller) -> int:
        raw = _crm_fields(_upper_params(params))
        fields = _check_fields(kind, raw, creating=True)
        new_id = store.next_id(kind)
        stamp = now_iso(store)
        record: dict[str, Any] = {
            f: None for f in FIELD_TYPES[kind] if not f.startswith("UF_") and f not in MULTIFIELDS
        }
        record.update(fields)
        for name, value in ((str(k).upper(), v) for k, v in raw.items()):
            if name in MULTIFIELDS and name in FIELD_TYPES[kind]:
                record[name] = _multifield_values(store, name, value)
        record.update(
            {
                "ID": str(new_id),
                "DATE_CREATE": stamp,
                "DATE_MODIFY": stamp,
                "CREATED_BY_ID": str(caller.user_id),
            }
        )
        record.setdefault("ASSIGNED_BY_ID", str(caller.user_id))
        if not record.get("ASSIGNED_BY_ID"):
            record["ASSIGNED_BY_ID"] = str(caller.user_id)
        if kind == "deal":
            if not record.get("TITLE"):
                record["TITLE"] = f"Deal #{new_id}"  # crm-deal-add.md: the default title
            record["CATEGORY_ID"] = str(record.get("CATEGORY_ID") or "0")
            record["STAGE_ID"] = (
                record.get("STAGE_ID")
                or data.DEAL_STAGES[
                    int(record["CATEGORY_ID"]) if int(record["CATEGORY_ID"]) in data.DEAL_STAGES else 0
                ][0][0]
            )
            record["CLOSED"] = "Y" if str(record["STAGE_ID"]).endswith(("WON", "LOSE")) else "N"
        store.tables[kind][new_id] = record
        store.emit(f"ONCRM{kind.upper()}ADD", {"FIELDS": {"ID": new_id}}, params)
        return new_id

    @method(f"crm.{kind}.update", scope)
    def _update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
        upper_params = _upper_params(params)
        record = store.tables[kind].get(_crm_id(upper_params))
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        raw = _crm_fields(upper_params)
        fields = _check_fields(kind, raw, creating=False)
        normalize_multifields(store, record)
        record.update(fields)
        for name, value in ((str(k).upper(), v) for k, v in raw.items()):
            if name in MULTIFIELDS and name in FIELD_TYPES[kind]:
                record[name] = _merge_multifield(store, record.get(name) or [], name, value)
        record["DATE_MODIFY"] = now_iso(store)
        if kind == "deal":
            record["CLOSED"] = "Y" if str(record.get("STAGE_ID")).endswith(("WON", "LOSE")) else "N"
        store.emit(f"ONCRM{kind.upper()}UPDATE", {"FIELDS": {"ID": int(record["ID"])}}, params)
        return True

    @method(f"crm.{kind}.delete", scope)
    def _delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
        record_id = _crm_id(_upper_params(params))
        record = store.tables[kind].get(record_id)
        if record is None:
            raise crm_error("Not found")
        _perm(caller, record)
        del store.tables[kind][record_id]
        store.emit(f"ONCRM{kind.upper()}DELETE", {"FIELDS": {"ID": record_id}}, params)
        return True

    @method(f"crm.{kind}.fields", scope)
    def _fields(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (ftype, title) in FIELD_TYPES[kind].items():
            info: dict[str, Any] = {
                "type": ftype,
                "isRequired": name in REQUIRED[kind],
                "isReadOnly": name in READ_ONLY,
                "isImmutable": name in IMMUTABLE.get(kind, set()),
                "isMultiple": ftype == "crm_multifield",
                "isDynamic": name.startswith("UF_"),
                "title": title,
            }
            if ftype == "crm_status" and name in STATUS_TYPES:
                info["statusType"] = STATUS_TYPES[name]
            if name.startswith("UF_"):
                info.update({"listLabel": title, "formLabel": title, "filterLabel": title})
                if ftype == "enumeration":
                    info["items"] = data.SOURCE_ENUM
            out[name] = info
        return out


def _crm_select(record: dict[str, Any], select: Any) -> dict[str, Any]:
    """``select`` of legacy CRM lists (crm-deal-list.md): by default ``*`` + ``UF_*``; ``*`` is every standard
    field but multifields; ``UF_*`` every user field; a multifield comes back only when named."""
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


# --- pipelines, stages, activities, timeline ---------------------------------------------------------------


@method("crm.category.list", "crm")
def category_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """crm-category-list.md: ``result.categories`` (id, name, sort, entityTypeId, isDefault, originId,
    originatorId) and ``total``."""
    etid = _id(params, "entityTypeId")
    # Error Handling: NOT_FOUND "Smart process not found" for an entityTypeId that names nothing,
    # ENTITY_TYPE_NOT_SUPPORTED for a kind of record without pipelines. UNVERIFIED which kinds have them:
    # deals and smart processes do (crm/universal/category/index.md); leads and quotes taken as not; contacts,
    # companies and smart invoices answer their one default category.
    unsupported = {1: "Lead", 7: "Quote"}
    if etid in unsupported:
        raise ApiError(
            "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type `{unsupported[etid]}` is not supported", 400
        )
    if etid not in (2, 3, 4, 31) and etid not in store.smart_types:
        raise ApiError("NOT_FOUND", "Smart process not found", 400)
    if etid != 2:
        cats = [
            {
                "id": 0,
                "name": "General",
                "sort": 500,
                "entityTypeId": etid,
                "isDefault": "Y",
                "originId": "",
                "originatorId": "",
            }
        ]
    else:
        cats = [
            {
                "id": cid,
                "name": name,
                "sort": 100 * (cid + 1),
                "entityTypeId": 2,
                "isDefault": "Y" if cid == 0 else "N",
                "originId": "",
                "originatorId": "",
            }
            for cid, name in data.CATEGORIES.items()
        ]
    return Listing({"categories": cats}, len(cats), None)


_STAGE_COLORS = ("#39A8EF", "#2FC6F6", "#55D0E0", "#47E4C2", "#FFA900", "#7BD500", "#FF5752")


@method("crm.status.list", "crm")
def status_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """crm-status-list.md: ID, ENTITY_ID, STATUS_ID, NAME, NAME_INIT, SORT, SYSTEM, CATEGORY_ID, COLOR,
    SEMANTICS, EXTRA; filter and order on those; ``total``."""
    rows: list[dict[str, Any]] = []
    next_id = 101

    def add(
        entity: str, status_id: str, name: str, sort: int, category: str | None, semantics: str | None
    ) -> None:
        nonlocal next_id
        color = _STAGE_COLORS[(sort // 10 - 1) % len(_STAGE_COLORS)]
        extra = {
            "SEMANTICS": {"S": "success", "F": "failure"}.get(semantics or "", "process"),
            "COLOR": color,
        }
        rows.append(
            {
                "ID": str(next_id),
                "ENTITY_ID": entity,
                "STATUS_ID": status_id,
                "NAME": name,
                "NAME_INIT": name,
                "SORT": str(sort),
                "SYSTEM": "Y" if sort == 10 or semantics else "N",
                "CATEGORY_ID": category,
                "COLOR": color,
                "SEMANTICS": semantics,
                "EXTRA": extra,
            }
        )
        next_id += 2

    for cat, stages in data.DEAL_STAGES.items():
        entity = "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}"
        for sort, (status_id, name) in enumerate(stages, 1):
            semantics = "S" if status_id.endswith("WON") else "F" if status_id.endswith("LOSE") else None
            add(entity, status_id, name, sort * 10, None if cat == 0 else str(cat), semantics)
    for sort, (status_id, name) in enumerate(data.LEAD_STATUSES, 1):
        add(
            "STATUS",
            status_id,
            name,
            sort * 10,
            None,
            "S" if status_id == "CONVERTED" else "F" if status_id == "JUNK" else None,
        )
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


_CURRENCIES = (
    ("USD", "US Dollar", "1.0000", "Y"),
    ("EUR", "Euro", "0.9200", "N"),
    ("RUB", "Russian Ruble", "92.0000", "N"),
    ("BRL", "Brazilian Real", "5.0000", "N"),
    ("PLN", "Polish Zloty", "4.0000", "N"),
)


@method("crm.currency.list", "crm")
def currency_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """crm-currency-list.md: CURRENCY, AMOUNT_CNT, AMOUNT, SORT, BASE, FULL_NAME, ...; with ``total``."""
    rows = [
        {
            "CURRENCY": code,
            "AMOUNT_CNT": "1",
            "AMOUNT": amount,
            "SORT": str(100 * (i + 1)),
            "BASE": base,
            "FULL_NAME": name,
            "LID": "en",
            "FORMAT_STRING": f"# {code}",
            "DEC_POINT": ".",
            "THOUSANDS_SEP": " ",
            "DECIMALS": "2",
        }
        for i, (code, name, amount, base) in enumerate(_CURRENCIES)
    ]
    return Listing(rows, len(rows), None)


@method("crm.timeline.comment.add", "crm")
def timeline_comment_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """crm/timeline/comments/crm-timeline-comment-add.md: only lower-case ``fields`` (since crm 23.100.0
    "Fields, FIELDS, arFields are not accepted"); ENTITY_TYPE lead, deal, contact, company, order or
    dynamic_<entityTypeId>; errors 100 (required fields), OWNER_NOT_FOUND, INVALID_ARG_VALUE (empty
    comment)."""
    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ApiError("100", "Required fields are not provided", 400)
    etype = str(fields.get("ENTITY_TYPE", "")).strip().lower()
    if not etype or fields.get("ENTITY_ID") in (None, ""):
        raise ApiError("100", "Required fields are not provided", 400)
    owner = positive(fields.get("ENTITY_ID"))
    if etype in FIELD_TYPES:
        exists = owner in store.tables[etype]
    elif etype.startswith("dynamic_") and etype[8:].isdigit():
        exists = owner in store.tables["smart_item"].get(int(etype[8:]), {})
    elif etype == "order":
        exists = owner in store.tables.get("sale_order", {})
    else:
        exists = False
    if not exists:
        raise ApiError("OWNER_NOT_FOUND", "Owner of the item not found", 400)
    if not str(fields.get("COMMENT") or "").strip():
        raise ApiError("INVALID_ARG_VALUE", "Empty comment", 400)
    new_id = store.next_id("timeline_comment")
    store.tables["timeline_comment"][new_id] = {
        "ID": str(new_id),
        "ENTITY_TYPE": etype,
        "ENTITY_ID": str(fields["ENTITY_ID"]),
        "COMMENT": str(fields["COMMENT"]),
        "AUTHOR_ID": str(caller.user_id),
        "CREATED": now_iso(store),
    }
    return new_id


@method("crm.timeline.comment.list", "crm")
def timeline_comment_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    rows = [r for r in store.tables["timeline_comment"].values() if matches(r, params.get("filter") or {})]
    chunk, total, nxt = page(rows, params.get("start"))
    return Listing(chunk, total, nxt)


# crm-activity-list.md, example: the fields every activity answers with (stored ones win)
_ACTIVITY_DEFAULTS: dict[str, Any] = {
    "TYPE_ID": "6",
    "PROVIDER_TYPE_ID": "TODO",
    "PROVIDER_GROUP_ID": None,
    "ASSOCIATED_ENTITY_ID": "0",
    "START_TIME": None,
    "END_TIME": None,
    "STATUS": "1",
    "PRIORITY": "2",
    "NOTIFY_TYPE": "0",
    "NOTIFY_VALUE": "0",
    "DESCRIPTION_TYPE": "1",
    "DIRECTION": "0",
    "LOCATION": "",
    "SETTINGS": [],
    "ORIGINATOR_ID": None,
    "ORIGIN_ID": None,
    "PROVIDER_PARAMS": [],
    "PROVIDER_DATA": None,
    "RESULT_MARK": "0",
    "RESULT_VALUE": None,
    "RESULT_SUM": None,
    "RESULT_CURRENCY_ID": None,
    "RESULT_STATUS": "0",
    "RESULT_STREAM": "0",
    "RESULT_SOURCE_ID": None,
    "AUTOCOMPLETE_RULE": "0",
}


def _bound(row: dict[str, Any], bindings: Any) -> int:
    """How many of the ``BINDINGS`` pairs an activity matches (crm-activity-list.md: each {OWNER_TYPE_ID,
    OWNER_ID} alone or together; an activity matching several pairs is answered once per pair)."""
    if not isinstance(bindings, list):
        return 1
    links = row.get("BINDINGS") or [{"OWNER_TYPE_ID": row["OWNER_TYPE_ID"], "OWNER_ID": row["OWNER_ID"]}]
    count = 0
    for pair in bindings:
        if not isinstance(pair, dict):
            continue
        if any(all(str(link.get(k)) == str(v) for k, v in pair.items()) for link in links):
            count += 1
    return count


@method("crm.activity.list", "crm")
def activity_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """crm/timeline/activities/activity-base/crm-activity-list.md: the documented fields, the filter with its
    operations and the special ``BINDINGS`` key (duplicates when several pairs match, as the page warns)."""
    flt = dict(params.get("filter") or {}) if isinstance(params.get("filter"), dict) else {}
    bindings = next((flt.pop(k) for k in list(flt) if str(k).upper() == "BINDINGS"), None)
    rows = [
        {**_ACTIVITY_DEFAULTS, **{k: v for k, v in r.items() if k != "BINDINGS"}}
        for r in store.tables["activity"].values()
        for _ in range(_bound(r, bindings))
        if matches(r, flt)
    ]
    chunk, total, nxt = page(order_rows(rows, params.get("order") or {"ID": "ASC"}), params.get("start"))
    return Listing([select_fields(r, params.get("select")) for r in chunk], total, nxt)


@method("crm.activity.todo.add", "crm")
def activity_todo_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    # crm-activity-todo-add.md: ownerTypeId, ownerId and deadline are required (100); a missing owner
    # NOT_FOUND
    if any(params.get(k) in (None, "") for k in ("ownerTypeId", "ownerId", "deadline")):
        raise ApiError("100", "Required fields are missing", 400)
    deadline = str(params["deadline"])
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?([+-]\d\d:?\d\d|Z)?", deadline):
        raise ApiError("WRONG_DATETIME_FORMAT", "Incorrect date format", 400)
    owner_type, owner_id = _id(params, "ownerTypeId"), _id(params, "ownerId")
    kind = ENTITY_TYPES.get(owner_type)
    if kind is None or owner_id not in store.tables[kind]:
        raise ApiError("NOT_FOUND", "CRM object not found")
    new_id = store.next_id("activity")
    store.tables["activity"][new_id] = {
        "ID": str(new_id),
        "OWNER_TYPE_ID": str(owner_type),
        "OWNER_ID": str(owner_id),
        "SUBJECT": str(params.get("title") or "To-do"),
        "DESCRIPTION": str(params.get("description") or ""),
        "DEADLINE": str(params.get("deadline") or ""),
        "RESPONSIBLE_ID": str(params.get("responsibleId") or caller.user_id),
        "COMPLETED": "N",
        "PROVIDER_ID": "CRM_TODO",
        "CREATED": now_iso(store),
        "LAST_UPDATED": now_iso(store),
        "AUTHOR_ID": str(caller.user_id),
        "EDITOR_ID": str(caller.user_id),
        "BINDINGS": [{"OWNER_TYPE_ID": str(owner_type), "OWNER_ID": str(owner_id)}],
    }
    return {"id": new_id}


def _comm_key(type_id: str, value: Any) -> str:
    """How the portal compares communications: phones by their digits, e-mails case-insensitively."""
    text = str(value or "").strip()
    return re.sub(r"\D", "", text) if type_id == "PHONE" else text.casefold()


@method("crm.duplicate.findbycomm", "crm")
def duplicate_findbycomm(store: Store, params: dict[str, Any], caller: Caller) -> Any:
    """crm-duplicate-find-by-comm.md: ``type`` PHONE|EMAIL, up to 20 ``values``, optional ``entity_type``; the
    IDs per entity type that have one of those values (an empty PHP array, ``[]``, when none)."""
    query = {str(k).lower(): v for k, v in params.items()}
    type_id = str(query.get("type") or "").upper()
    values = query.get("values")
    if type_id not in ("PHONE", "EMAIL") or not isinstance(values, list) or not values:
        raise ApiError(
            "ERROR_ARGUMENT", "type (PHONE or EMAIL) and values are required", 400
        )  # UNVERIFIED code
    if len(values) > 20:
        raise ApiError("ERROR_ARGUMENT", "Too many values (20 at most)", 400)  # UNVERIFIED text
    wanted = {_comm_key(type_id, v) for v in values} - {""}
    kinds = (
        [str(query["entity_type"]).lower()] if query.get("entity_type") else ["lead", "contact", "company"]
    )
    out: dict[str, list[int]] = {}
    for kind in kinds:
        if kind not in ("lead", "contact", "company"):
            continue
        found = [
            int(r["ID"])
            for r in store.tables[kind].values()
            if any(
                _comm_key(type_id, e.get("VALUE")) in wanted
                for e in r.get(type_id) or []
                if isinstance(e, dict)
            )
        ]
        if found:
            out[kind.upper()] = sorted(found)[:20]
    return out or []
