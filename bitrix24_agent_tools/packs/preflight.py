"""Checks a write before anyone is asked to approve it, against the portal's own metadata.

A model that sends an unknown field, a stage of another pipeline, a name where an ID belongs, a record that
does not exist or "next friday" as a date gets one line naming the fix — and the person is never asked to
approve a call that would fail or silently drop data. Metadata (``crm.*.fields``, ``crm.status.list``,
``crm.category.list``, ``crm.currency.list``) is read through the guard like any read and cached per tenant
for a short time.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import time
from collections.abc import Generator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from bitrix24_agent_tools.client import Bitrix24Error
from bitrix24_agent_tools.packs.base import Call, CallRefused, ToolContext

Check = Generator[Call, Any, Any]
TTL = 60.0
REFERENCE_TYPES = {
    "crm_company": ("crm.company.get", "company"),
    "crm_contact": ("crm.contact.get", "contact"),
    "crm_lead": ("crm.lead.get", "lead"),
}
ID_TYPES = {"integer", "user", "crm_company", "crm_contact", "crm_lead", "crm_category", "employee"}
READ_ONLY_HINT = "read-only"
LEGACY = ("lead", "deal", "contact", "company")
MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
# The metadata reads a write's checks may make (each typed tool allows them).
METHODS = (
    "crm.deal.fields",
    "crm.lead.fields",
    "crm.contact.fields",
    "crm.company.fields",
    "crm.status.list",
    "crm.category.list",
    "crm.currency.list",
    "crm.deal.get",
    "crm.lead.get",
    "crm.contact.get",
    "crm.company.get",
    "user.get",
    "crm.company.list",
    "crm.contact.list",
)


class MetadataCache:
    """Read-only answers per tenant for ``TTL`` seconds (fields, stages, currencies rarely change)."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._data.get(key)
            return entry[1] if entry and entry[0] > time.monotonic() else None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)


def _cache(ctx: ToolContext) -> MetadataCache:
    cache = ctx.extra.get("metadata_cache")
    if isinstance(cache, MetadataCache):
        return cache
    return MetadataCache(0.0)  # no shared cache: nothing is kept


def cached(ctx: ToolContext, method: str, params: Mapping[str, Any]) -> Check:
    """A read, answered from the tenant's cache when fresh; None when the portal would not answer it."""
    key = f"{ctx.tenant}|{method}|{json.dumps(params, sort_keys=True, default=str)}"
    cache = _cache(ctx)
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        response = yield Call(method, dict(params))
    except (Bitrix24Error, CallRefused):
        return None
    cache.put(key, response.result)
    return response.result


# Words a model uses for a CRM field, and the field it means (checked against the entity's real fields).
SYNONYMS = {
    "AMOUNT": "OPPORTUNITY",
    "SUM": "OPPORTUNITY",
    "VALUE": "OPPORTUNITY",
    "PRICE": "OPPORTUNITY",
    "STAGE": "STAGE_ID",
    "STATUS": "STATUS_ID",
    "RESPONSIBLE": "ASSIGNED_BY_ID",
    "OWNER": "ASSIGNED_BY_ID",
    "ASSIGNED": "ASSIGNED_BY_ID",
    "RESPONSIBLE_ID": "ASSIGNED_BY_ID",
    "COMPANY": "COMPANY_ID",
    "CONTACT": "CONTACT_ID",
    "CURRENCY": "CURRENCY_ID",
    "COMMENT": "COMMENTS",
    "DESCRIPTION": "COMMENTS",
    "FIRST_NAME": "NAME",
    "SURNAME": "LAST_NAME",
    "MAIL": "EMAIL",
    "E_MAIL": "EMAIL",
    "TELEPHONE": "PHONE",
    "MOBILE": "PHONE",
    "WEBSITE": "WEB",
    "SOURCE": "SOURCE_ID",
    "PIPELINE": "CATEGORY_ID",
    "CATEGORY": "CATEGORY_ID",
    "TYPE": "TYPE_ID",
}


def user_names(ctx: ToolContext, ids: list[int]) -> Generator[Call, Any, dict[str, str]]:
    """``{"5": "Elena Sokolova"}`` for the users ``ids`` name (one cached user.get; nothing read for none)."""
    if not ids:
        return {}
    found = yield from cached(ctx, "user.get", {"filter": {"ID": ids}})
    return {
        str(u.get("ID")): f"{u.get('NAME', '')} {u.get('LAST_NAME', '')}".strip()
        for u in found or []
        if isinstance(u, Mapping)
    }


def current_user(ctx: ToolContext) -> Generator[Call, Any, int]:
    """The ID of the user the credential acts as (user.current; 0 when the portal does not say)."""
    me = yield Call("user.current", {})
    return int((me.result or {}).get("ID") or 0) if isinstance(me.result, dict) else 0


def closest(name: str, known: list[str], n: int = 3) -> str:
    lookup = {k.upper(): k for k in known}
    upper = name.upper().lstrip("!=<>%@")
    found = [lookup[SYNONYMS[upper]]] if upper in SYNONYMS and SYNONYMS[upper] in lookup else []
    found += [
        lookup[m]
        for m in difflib.get_close_matches(upper, list(lookup), n=n, cutoff=0.5)
        if lookup[m] not in found
    ]
    return ", ".join(found[:n])


def as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_date(value: Any) -> bool:
    """An ISO 8601 date or date-time (what the portal reads); "next friday" is not one."""
    if not isinstance(value, str):
        return False
    text = value.strip().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(text)
        return True
    except ValueError:
        pass
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


def stages_of(ctx: ToolContext, category: int) -> Check:
    """{STATUS_ID: NAME} of one deal pipeline, plus its won and lost stage ids."""
    entity = "DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}"
    rows = yield from cached(ctx, "crm.status.list", {"filter": {"ENTITY_ID": entity}})
    stages = {str(r.get("STATUS_ID")): r for r in rows or [] if isinstance(r, Mapping)}
    return stages


def fix_stage(stages: Mapping[str, Any], wanted: str, category: int, subject: str) -> str:
    """The stage id to write, or ValueError naming the right one (a stage of another pipeline, a name).

    "WON" / "LOSE" (or "lost") close the deal by its own pipeline's semantics: the stage whose SEMANTICS is S
    or F.
    """
    if wanted in stages:
        return wanted
    prefix = f"C{category}:" if category else ""
    bare = wanted.split(":", 1)[-1].upper()
    by_semantics = {"WON": "S", "LOSE": "F", "LOST": "F"}
    if wanted.upper() in by_semantics:
        closing = next(
            (s for s, r in stages.items() if str(r.get("SEMANTICS") or "") == by_semantics[wanted.upper()]),
            None,
        )
        if closing:
            return closing
    guess = None
    if prefix + bare in stages:
        guess = prefix + bare
    elif bare in by_semantics:
        guess = next(
            (s for s, r in stages.items() if str(r.get("SEMANTICS") or "") == by_semantics[bare]), None
        )
    else:
        guess = next(
            (s for s, r in stages.items() if str(r.get("NAME", "")).casefold() == wanted.casefold()), None
        )
    listed = ", ".join(f"{s}={r.get('NAME')}" for s, r in stages.items())
    if guess:
        raise ValueError(
            f"{subject} is in pipeline {category}: use stage_id {guess} (not {wanted}); stages: {listed}"
        )
    raise ValueError(f"unknown stage {wanted!r} for pipeline {category}; stages: {listed}")


def check_crm_fields(
    ctx: ToolContext,
    entity: str,
    fields: Mapping[str, Any],
    *,
    creating: bool,
    record: Mapping[str, Any] | None = None,
) -> Check:
    """The fields of a legacy CRM write, checked and normalised (multifields given as text become values)."""
    meta = yield from cached(ctx, f"crm.{entity}.fields", {})
    if not isinstance(meta, Mapping) or not meta:
        return dict(fields)  # could not check: the confirmation shows the fields as given
    known = {str(k).upper(): (str(k), v) for k, v in meta.items() if isinstance(v, Mapping)}
    out: dict[str, Any] = {}
    for raw_name, value in fields.items():
        name = str(raw_name).upper()
        if name not in known:
            hint = closest(name, [k for k, _ in known.values()])
            raise ValueError(
                f"unknown field {raw_name} for {entity}"
                + (f"; closest: {hint}" if hint else "")
                + f" (see b24_crm_fields {entity})"
            )
        real, info = known[name]
        ftype = str(info.get("type") or "")
        if info.get("isReadOnly"):
            raise ValueError(f"{real} is read-only for {entity}")
        if not creating and info.get("isImmutable"):
            raise ValueError(f"{real} cannot be changed after the {entity} is created")
        if ftype == "crm_multifield":
            value = _multifield(value) if creating else multifield_change(real, value, record or {})
        elif ftype in ID_TYPES and value not in (None, "") and as_id(value) is None:
            what = (
                "a user ID (find it with b24_user_find)" if ftype in ("user", "employee") else "a numeric ID"
            )
            raise ValueError(f"{real} expects {what}, got {value!r}")
        elif ftype == "double" and value not in (None, ""):
            try:
                float(str(value).replace(",", "."))
            except ValueError:
                raise ValueError(f"{real} expects a number, got {value!r}") from None
        elif ftype in ("date", "datetime") and value not in (None, "") and not parse_date(value):
            raise ValueError(
                f"{real} expects an ISO 8601 date (e.g. 2026-12-04 or 2026-12-04T10:00:00+03:00), got "
                f"{value!r}"
            )
        elif ftype == "enumeration" and value not in (None, "") and info.get("items"):
            ids = {str(i.get("ID")): i.get("VALUE") for i in info["items"] if isinstance(i, Mapping)}
            by_label = {str(v).casefold(): k for k, v in ids.items()}
            if str(value) not in ids:
                if str(value).casefold() in by_label:
                    value = by_label[str(value).casefold()]
                else:
                    raise ValueError(f"{real} must be one of {', '.join(f'{k}={v}' for k, v in ids.items())}")
        out[real] = value
    if creating:
        missing = [
            k
            for k, info in ((k, i) for k, i in known.values())
            if info.get("isRequired") and k not in out and k.upper() not in {n.upper() for n in out}
        ]
        if missing and entity != "contact":
            raise ValueError(f"{entity} needs {', '.join(missing)}")
        if entity == "contact" and not any(out.get(k) for k in ("NAME", "LAST_NAME", "SECOND_NAME")):
            raise ValueError("a contact needs NAME or LAST_NAME")
    yield from _check_values(ctx, entity, out, known, record)
    return out


def _multifield(value: Any) -> Any:
    """PHONE/EMAIL/WEB/IM as the portal stores them: a list of {VALUE, VALUE_TYPE} (a bare string becomes
    one)."""
    if isinstance(value, str):
        return [{"VALUE": value, "VALUE_TYPE": "WORK"}] if value.strip() else []
    if isinstance(value, list):
        return [{"VALUE": v, "VALUE_TYPE": "WORK"} if isinstance(v, str) else v for v in value]
    return value


def multifield_change(name: str, value: Any, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A change of PHONE/EMAIL/WEB/IM said explicitly — ``{"add": [...]}``, ``{"remove": [...]}`` or
    ``{"replace": [...]}`` — as the entries the portal applies (crm/data-types.md, crm_multifield: an entry
    without ID is added, one with ID and ``DELETE: Y`` removed). A bare list is refused: the portal would
    append it to what is there, so "old + new" would duplicate the old value."""
    if not isinstance(value, Mapping) or not value or set(value) - {"add", "remove", "replace"}:
        raise ValueError(
            f'{name}: say how the values change: {{"add": [...]}}, {{"remove": [...]}} or '
            '{"replace": [...]} (the portal appends a plain list to the values already there)'
        )
    current = [e for e in record.get(name) or [] if isinstance(e, Mapping) and e.get("ID")]

    def entries(values: Any) -> list[Any]:
        return [values] if isinstance(values, (str, Mapping)) else list(values or [])

    out: list[dict[str, Any]] = []
    if "replace" in value:
        if set(value) != {"replace"}:
            raise ValueError(f"{name}: replace goes alone (it removes every current value)")
        out += [{"ID": e["ID"], "DELETE": "Y"} for e in current]
        out += _multifield(entries(value["replace"]))
        return out
    for wanted in entries(value.get("remove")):
        text = str(wanted.get("VALUE") if isinstance(wanted, Mapping) else wanted).strip().casefold()
        match = [e for e in current if str(e.get("VALUE", "")).strip().casefold() == text]
        if not match:
            have = ", ".join(str(e.get("VALUE")) for e in current) or "none"
            raise ValueError(f"{name}: {wanted!r} is not a current value (current: {have})")
        out += [{"ID": e["ID"], "DELETE": "Y"} for e in match]
    for entry in _multifield(entries(value.get("add"))):
        text = str(entry.get("VALUE", "")).strip().casefold()
        if any(str(e.get("VALUE", "")).strip().casefold() == text for e in current):
            raise ValueError(f"{name}: {entry.get('VALUE')!r} is already there")
        out.append(entry)
    return out


def _check_values(
    ctx: ToolContext,
    entity: str,
    fields: dict[str, Any],
    known: Mapping[str, tuple[str, Any]],
    record: Mapping[str, Any] | None,
) -> Check:
    for name, value in list(fields.items()):
        if value in (None, "", 0, "0"):
            continue
        ftype = str(known[name.upper()][1].get("type") or "")
        if ftype in REFERENCE_TYPES:
            method, noun = REFERENCE_TYPES[ftype]
            found = yield from cached(ctx, method, {"id": as_id(value)})
            if not found:
                raise ValueError(f"{name}: {noun} #{value} does not exist (find it with b24_crm_list {noun})")
        elif ftype in ("user", "employee"):
            users = yield from cached(ctx, "user.get", {"ID": as_id(value)})
            if not users:
                raise ValueError(f"{name}: user #{value} does not exist (find it with b24_user_find)")
        elif ftype == "crm_currency":
            rows = yield from cached(ctx, "crm.currency.list", {})
            codes = [str(r.get("CURRENCY")) for r in rows or [] if isinstance(r, Mapping)]
            if codes and str(value).upper() not in codes:
                raise ValueError(f"{name} must be one of {', '.join(codes)}, got {value!r}")
            if codes:
                fields[name] = str(value).upper()
    if entity == "deal" and "STAGE_ID" in fields:
        category = as_id(fields.get("CATEGORY_ID", (record or {}).get("CATEGORY_ID"))) or 0
        stages = yield from stages_of(ctx, category)
        if stages:
            subject = f"deal #{record.get('ID')}" if record else "the new deal"
            fields["STAGE_ID"] = fix_stage(stages, str(fields["STAGE_ID"]), category, subject)


_OP = re.compile(r"^(!=%|!%=|!%|!=|!@|>=|<=|=%|%=|!|>|<|%|@|=)?(.*)$")


def check_filter(ctx: ToolContext, entity: str, flt: Mapping[str, Any]) -> Check:
    """A list filter whose fields the portal knows, operators in front: else one line naming the right
    form."""
    meta = yield from cached(ctx, f"crm.{entity}.fields", {})
    if not isinstance(meta, Mapping) or not meta:
        return dict(flt)
    known = {str(k).upper(): str(k) for k in meta}
    out: dict[str, Any] = {}
    for key, value in flt.items():
        match = _OP.match(str(key))
        assert match is not None
        op, field = match.group(1) or "", match.group(2)
        trailing = re.match(r"^([A-Za-z0-9_]+)(>=|<=|>|<|!=|!|%|=)$", str(key))
        if trailing and trailing.group(1).upper() in known:
            raise ValueError(
                f"put the operator before the field: {trailing.group(2)}{trailing.group(1)} (not {key})"
            )
        if field.upper() not in known:
            hint = closest(field, list(known.values()))
            raise ValueError(
                f"unknown filter field {field} for {entity}"
                + (f"; closest: {hint}" if hint else "")
                + " — filter by ID fields (e.g. COMPANY_ID) after finding the record"
            )
        out[op + known[field.upper()]] = value
    return out


def timestamp(ctx: ToolContext, value: str, label: str) -> Generator[Call, Any, int]:
    """A Unix time for an ISO 8601 moment; one without an offset is read in the portal's time zone
    (server.time)."""
    if not parse_date(value):
        raise ValueError(f"{label} must be an ISO 8601 date-time like 2026-12-01T10:00, got {value!r}")
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        now = yield from cached(ctx, "server.time", {})
        offset = (
            datetime.fromisoformat(str(now)).utcoffset() if isinstance(now, str) and parse_date(now) else None
        )
        moment = moment.replace(tzinfo=timezone(offset or timedelta(0)))
    return int(moment.timestamp())
