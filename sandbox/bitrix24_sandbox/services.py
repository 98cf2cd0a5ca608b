"""Calendars (calendar.*), resource booking (booking.v1.*) and the working day (timeman.*): the services
pack."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import (
    Listing,
    method,
    now_iso,
    paged,
    portal_date,
    positive,
    table,
    upper,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

# --- calendar -----------------------------------------------------------------------------------------------


def _required(params: dict[str, Any], method_name: str, *keys: str) -> None:
    # calendar-*.md, Error Handling: HTTP 400, empty code, one text per missing parameter
    for key in keys:
        if params.get(key) in (None, "") and not (key in ("from", "to") and params.get(f"{key}_ts")):
            raise ApiError(
                "", f'The required parameter "{key}" for the method "{method_name}" is not set', 400
            )


def _owner(store: Store, params: dict[str, Any]) -> str:
    owner = positive(params.get("ownerId"))
    if str(params.get("type")) == "user" and owner not in store.tables["user"]:
        raise ApiError("", "The user is not found", 400)  # UNVERIFIED text
    return str(owner or params.get("ownerId"))


# The portal writes calendar dates in its own format (calendar-event-get.md: "12/11/2024 05:59:00 pm") with
# the zone beside them (TZ_FROM, TZ_OFFSET_FROM) and the moment as a UTC timestamp (DATE_FROM_TS_UTC). The
# sandbox portal's zone is its seed's (+03:00, Europe/Moscow). Stored as ISO; shown as the docs show them.
_ZONE = ("Europe/Moscow", 10800)


def _when(value: Any, *, end_of_day: bool = False) -> datetime:
    """A date the calendar methods take: ISO 8601 (with or without an offset or a time), the portal's own
    format ("12/11/2024 05:59:00 pm", "12/11/2024"), or a Unix timestamp; without an offset, the portal's
    zone."""
    from bitrix24_sandbox.data import EPOCH

    text = str(value).strip()
    moment: datetime | None = None
    if text.lstrip("-").isdigit() and len(text) > 8:
        return datetime.fromtimestamp(int(text), tz=EPOCH.tzinfo)
    for shape in ("iso", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y"):
        try:
            moment = (
                datetime.fromisoformat(text.replace("Z", "+00:00"))
                if shape == "iso"
                else datetime.strptime(text.upper(), shape)
            )
            break
        except ValueError:
            continue
    if moment is None:
        raise ApiError("", f"Invalid date {text[:40]!r}", 400)  # UNVERIFIED text
    date_only = len(text) <= 10
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EPOCH.tzinfo)
    if date_only and end_of_day:
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment


def _portal_format(moment: datetime, skip_time: bool = False) -> str:
    from bitrix24_sandbox.data import EPOCH

    if skip_time:
        return moment.astimezone(EPOCH.tzinfo).strftime("%m/%d/%Y")
    return str(portal_date(moment.isoformat()))


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event as calendar.event.get returns it (calendar-event-get.md, example)."""
    start, end = _when(event["DATE_FROM"]), _when(event["DATE_TO"])
    skip = event.get("DT_SKIP_TIME") == "Y"
    out = {k: v for k, v in event.items() if k not in ("ATTENDEES",)}
    out.update(
        {
            "PARENT_ID": event["ID"],
            "DELETED": "N",
            "DATE_FROM": _portal_format(start, skip),
            "DATE_TO": _portal_format(end, skip),
            "TZ_FROM": _ZONE[0],
            "TZ_TO": _ZONE[0],
            "TZ_OFFSET_FROM": str(_ZONE[1]),
            "TZ_OFFSET_TO": str(_ZONE[1]),
            "DATE_FROM_TS_UTC": str(int(start.timestamp())),
            "DATE_TO_TS_UTC": str(int(end.timestamp())),
            "DT_SKIP_TIME": "Y" if skip else "N",
            "DT_LENGTH": int(end.timestamp() - start.timestamp()),
            "CREATED_BY": event.get("CREATED_BY", event.get("OWNER_ID")),
            "ATTENDEE_LIST": [
                {"id": int(a), "entryId": 0, "status": "Y"} for a in event.get("ATTENDEES", [])
            ],
        }
    )
    return out


def _span(params: dict[str, Any], required: bool) -> tuple[datetime, datetime]:
    """``from``/``to`` (or ``from_ts``/``to_ts``), as calendar.event.add reads them."""
    start = params.get("from") if params.get("from") not in (None, "") else params.get("from_ts")
    end = params.get("to") if params.get("to") not in (None, "") else params.get("to_ts")
    skip = str(params.get("skip_time") or "N").upper() == "Y"
    return _when(start), _when(end, end_of_day=skip and required)


@method("calendar.event.add", "calendar")
def calendar_event_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """calendar/calendar-event/calendar-event-add.md: type, ownerId, name, from/from_ts, to/to_ts; ``section``
    (required unless auto-detected; one of the owner's calendars), skip_time for a date without time."""
    _required(params, "calendar.event.add", "type", "ownerId", "name", "from", "to")
    start, end = _span(params, required=True)
    if end < start:
        raise ApiError("ERROR_ARGUMENT", "'to' is before 'from'")
    owner = _owner(store, params)
    kind = str(params.get("type") or "user")
    sections = [
        s
        for s in table(store, "calendar_section").values()
        if s["CAL_TYPE"] == kind and s["OWNER_ID"] == owner
    ]
    section = positive(params.get("section"))
    if section is None:
        if str(params.get("auto_detect_section") or "").upper() == "N" or not sections:
            raise ApiError(
                "", "You specified an invalid calendar section ID or the user does not have access to it", 400
            )
        section = int(sections[0]["ID"])
    elif str(section) not in {s["ID"] for s in sections}:
        raise ApiError(
            "", "You specified an invalid calendar section ID or the user does not have access to it", 400
        )
    skip = str(params.get("skip_time") or "N").upper() == "Y"
    new_id = store.next_id("calendar_event")
    table(store, "calendar_event")[new_id] = {
        "ID": str(new_id),
        "NAME": str(params["name"]),
        "DATE_FROM": start.isoformat(timespec="seconds"),
        "DATE_TO": end.isoformat(timespec="seconds"),
        "OWNER_ID": owner,
        "CAL_TYPE": kind,
        "SECTION_ID": str(section),
        "DESCRIPTION": str(params.get("description") or ""),
        "ACCESSIBILITY": str(params.get("accessibility") or "busy"),
        "IMPORTANCE": str(params.get("importance") or "normal"),
        "ATTENDEES": [str(a) for a in params.get("attendees") or []],
        "LOCATION": str(params.get("location") or ""),
        "DT_SKIP_TIME": "Y" if skip else "N",
        "CREATED_BY": str(caller.user_id),
    }
    return new_id


@method("calendar.event.get", "calendar")
def calendar_event_get(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """calendar-event-get.md: type and ownerId select the calendar; ``from``/``to`` (dates) bound the events
    that overlap them, by default a month before now to three months after."""
    now = _when(now_iso(store))
    owner = str(params.get("ownerId") or "")
    start = _when(params["from"]) if params.get("from") else now - timedelta(days=30)
    end = _when(params["to"], end_of_day=True) if params.get("to") else now + timedelta(days=90)
    return [
        _public_event(e)
        for e in table(store, "calendar_event").values()
        if (not owner or e["OWNER_ID"] == owner)
        and _when(e["DATE_TO"]) >= start
        and _when(e["DATE_FROM"]) <= end
    ]


def _event(store: Store, params: dict[str, Any], message: str) -> dict[str, Any]:
    event_id = positive(params.get("id"))
    if event_id is None:
        raise ApiError("", message, 400)
    event = table(store, "calendar_event").get(event_id)
    if event is None:
        raise ApiError("", "Event not found", 400)  # UNVERIFIED text
    return event


@method("calendar.event.update", "calendar")
def calendar_event_update(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """calendar-event-update.md: id, type and ownerId are required; the result is the event's ID."""
    _required(params, "calendar.event.update", "id", "type", "ownerId")
    event = _event(store, params, "Event id not specified")
    changes = {
        "name": "NAME",
        "from": "DATE_FROM",
        "to": "DATE_TO",
        "description": "DESCRIPTION",
        "section": "SECTION_ID",
        "accessibility": "ACCESSIBILITY",
        "importance": "IMPORTANCE",
        "location": "LOCATION",
    }
    updated = dict(event)
    for key, field in changes.items():
        if key in params:
            updated[field] = str(params[key])
    for key, field in (("from", "DATE_FROM"), ("to", "DATE_TO")):
        if key in params or f"{key}_ts" in params:
            updated[field] = _when(params.get(key) or params.get(f"{key}_ts")).isoformat(timespec="seconds")
    if "attendees" in params:
        updated["ATTENDEES"] = [str(a) for a in params.get("attendees") or []]
    if _when(updated["DATE_TO"]) < _when(updated["DATE_FROM"]):
        raise ApiError("ERROR_ARGUMENT", "'to' is before 'from'")
    event.update(updated)
    return int(event["ID"])


@method("calendar.event.delete", "calendar")
def calendar_event_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    event = _event(store, params, "Event id not specified")
    del table(store, "calendar_event")[int(event["ID"])]
    return True


@method("calendar.section.get", "calendar")
def calendar_section_get(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    _required(params, "calendar.section.get", "type", "ownerId")
    return [
        dict(s)
        for s in table(store, "calendar_section").values()
        if s["CAL_TYPE"] == str(params["type"]) and s["OWNER_ID"] == str(params["ownerId"])
    ]


@method("calendar.accessibility.get", "calendar")
def calendar_accessibility(
    store: Store, params: dict[str, Any], caller: Caller
) -> dict[str, list[dict[str, Any]]]:
    """calendar-accessibility-get.md: per user, the busy events between ``from`` and ``to`` (dates)."""
    _required(params, "calendar.accessibility.get", "users", "from", "to")
    users = params["users"] if isinstance(params["users"], list) else [params["users"]]
    start, end = _when(params["from"]), _when(params["to"], end_of_day=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for user in users:
        out[str(user)] = [
            {
                "ID": e["ID"],
                "NAME": e["NAME"],
                "DATE_FROM": _portal_format(_when(e["DATE_FROM"])),
                "DATE_TO": _portal_format(_when(e["DATE_TO"])),
                "ACCESSIBILITY": e.get("ACCESSIBILITY", "busy"),
                "IMPORTANCE": e.get("IMPORTANCE", "normal"),
            }
            for e in table(store, "calendar_event").values()
            if (e["OWNER_ID"] == str(user) or str(user) in e.get("ATTENDEES", []))
            and _when(e["DATE_TO"]) >= start
            and _when(e["DATE_FROM"]) <= end
        ]
    return out


# --- booking ------------------------------------------------------------------------------------------------


def _period(value: Any) -> tuple[int, int]:
    try:
        start, end = int(value["from"]["timestamp"]), int(value["to"]["timestamp"])
    except (KeyError, TypeError, ValueError):
        raise ApiError("0", "Required fields: datePeriod", 400) from None
    if end <= start:
        raise ApiError("422", "Invalid date period", 422)
    return start, end


def _resources(store: Store, ids: Any) -> list[int]:
    known = [
        r
        for r in (positive(i) for i in (ids if isinstance(ids, list) else []))
        if r and r in table(store, "booking_resource")
    ]
    if not known:
        raise ApiError("1018", "Empty resource collection", 400)
    return known


def _booking_out(booking: dict[str, Any]) -> dict[str, Any]:
    return {k: booking[k] for k in ("id", "name", "description", "resourceIds", "datePeriod")}


@method("booking.v1.booking.add", "booking")
def booking_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, int]:
    """booking/booking/booking-v1-booking-add.md: ``{id}``. The portal accepts bookings that overlap (it marks
    them overbooked); a client that must not double-book checks booking.v1.booking.list ``within`` first."""
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("100", "Could not find value for parameter {fields}", 400)
    resources = _resources(store, fields.get("resourceIds"))
    period = fields.get("datePeriod")
    _period(period)
    booking_id = store.next_id("booking")
    table(store, "booking")[booking_id] = {
        "id": booking_id,
        "name": fields.get("name"),
        "description": fields.get("description"),
        "resourceIds": resources,
        "datePeriod": period,
        "createdBy": caller.user_id,
    }
    return {"id": booking_id}


@method("booking.v1.booking.update", "booking")
def booking_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    booking = table(store, "booking").get(positive(params.get("id")) or 0)
    if booking is None:
        raise ApiError("1019", "Booking not found", 400)
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("100", "Could not find value for parameter {fields}", 400)
    updated = dict(booking)
    if "resourceIds" in fields:
        updated["resourceIds"] = _resources(store, fields["resourceIds"])
    if "datePeriod" in fields:
        _period(fields["datePeriod"])
        updated["datePeriod"] = fields["datePeriod"]
    for key in ("name", "description"):
        if key in fields:
            updated[key] = fields[key]
    booking.update(updated)
    return True


@method("booking.v1.booking.list", "booking")
def booking_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """booking/booking/booking-v1-booking-list.md: FILTER{resource, within{dateFrom, dateTo}}; ``{booking:
    [...]}``."""
    flt = params.get("filter", params.get("FILTER")) or {}
    if not isinstance(flt, dict):
        raise ApiError(
            "100", "Invalid value to match with parameter {filter}. Should be value of type array", 400
        )
    rows = list(table(store, "booking").values())
    resources = flt.get("resource") or flt.get("resourceId")
    if resources:
        wanted = {positive(r) for r in (resources if isinstance(resources, list) else [resources])}
        rows = [b for b in rows if wanted & set(b["resourceIds"])]
    within = flt.get("within")
    if isinstance(within, dict):
        lo, hi = int(within.get("dateFrom") or 0), int(within.get("dateTo") or 2**40)
        rows = [
            b
            for b in rows
            if int(b["datePeriod"]["from"]["timestamp"]) < hi and int(b["datePeriod"]["to"]["timestamp"]) > lo
        ]
    return paged([_booking_out(b) for b in rows], params.get("start"), "booking")


@method("booking.v1.resource.list", "booking")
def resource_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """booking/resource/booking-v1-resource-list.md: ``{resource: [...]}``; FILTER searchQuery, name,
    typeId."""
    flt = params.get("filter", params.get("FILTER")) or {}
    if not isinstance(flt, dict):
        raise ApiError(
            "100", "Invalid value to match with parameter {filter}. Should be value of type array", 400
        )
    rows = [dict(r) for r in table(store, "booking_resource").values()]
    if flt.get("searchQuery"):
        rows = [r for r in rows if str(flt["searchQuery"]).lower() in r["name"].lower()]
    for key in ("name", "typeId", "isMain"):
        if key in flt:
            rows = [r for r in rows if str(r.get(key)) == str(flt[key])]
    return paged(rows, params.get("start"), "resource")


# --- working day --------------------------------------------------------------------------------------------


def _timeman_user(store: Store, params: dict[str, Any], caller: Caller) -> int:
    user = positive(upper(params).get("USER_ID")) or caller.user_id
    if user not in store.tables["user"]:
        raise ApiError("", "User not found", 400)
    if user != caller.user_id and not caller.is_admin:
        raise ApiError("ACCESS_DENIED", "Access denied", 403)
    return user


def _day(store: Store, user: int, *, keep: bool = True) -> dict[str, Any]:
    """A user's work day; a day never opened is CLOSED (kept in the table only when a write changes it)."""
    days = table(store, "timeman")
    if user in days or not keep:
        return days.get(user) or _closed_day()
    return days.setdefault(user, _closed_day())


def _closed_day() -> dict[str, Any]:
    return dict(
        {
            "STATUS": "CLOSED",
            "TIME_START": None,
            "TIME_FINISH": None,
            "DURATION": "00:00:00",
            "TIME_LEAKS": "00:00:00",
            "ACTIVE": False,
            "IP_OPEN": "",
            "IP_CLOSE": "",
            "LAT_OPEN": 0,
            "LON_OPEN": 0,
            "LAT_CLOSE": 0,
            "LON_CLOSE": 0,
            "TZ_OFFSET": 10800,
        }
    )


def _moment(store: Store, params: dict[str, Any], label: str) -> str:
    raw = upper(params).get("TIME")
    now = now_iso(store)
    if raw in (None, ""):
        return now
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ApiError("WRONG_DATETIME", f"{label} date should correspond to the current date", 400) from None
    if moment.date().isoformat() != now[:10]:
        raise ApiError("WRONG_DATETIME", f"{label} date should correspond to the current date", 400)
    return moment.isoformat()


@method("timeman.status", "timeman")
def timeman_status(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """timeman/base/timeman-status.md: a read — a day never opened answers CLOSED and stores nothing."""
    return dict(_day(store, _timeman_user(store, params, caller), keep=False))


@method("timeman.open", "timeman")
def timeman_open(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """timeman/base/timeman-open.md: the day becomes OPENED (a paused day resumes)."""
    day = _day(store, _timeman_user(store, params, caller))
    started = _moment(store, params, "Day open")
    if day["STATUS"] != "OPENED":
        day.update(
            {
                "STATUS": "OPENED",
                "ACTIVE": True,
                "TIME_FINISH": None,
                "TIME_START": day["TIME_START"] if day["STATUS"] == "PAUSED" else started,
            }
        )
        day["LAT_OPEN"], day["LON_OPEN"] = upper(params).get("LAT", 0), upper(params).get("LON", 0)
    return dict(day)


@method("timeman.close", "timeman")
def timeman_close(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """timeman/base/timeman-close.md: an open or paused day becomes CLOSED."""
    day = _day(store, _timeman_user(store, params, caller))
    if day["STATUS"] not in ("OPENED", "PAUSED"):
        raise ApiError(
            "WRONG_DATETIME", "Day close date should correspond to the day open date", 400
        )  # UNVERIFIED
    finished = _moment(store, params, "Day close")
    if finished < str(day["TIME_START"]):
        raise ApiError("WRONG_DATETIME", "Day close date should correspond to the day open date", 400)
    start = datetime.fromisoformat(str(day["TIME_START"]))
    seconds = max(0, int((datetime.fromisoformat(finished) - start).total_seconds()))
    day.update(
        {
            "STATUS": "CLOSED",
            "ACTIVE": False,
            "TIME_FINISH": finished,
            "DURATION": f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
        }
    )
    return dict(day)
