"""The services pack's typed tools: anyone's calendar, add an event, bookings and booking a resource, a
person's work day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs import preflight
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class MeetingArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    start: str = Field(description="ISO 8601")
    end: str = Field(description="ISO 8601")
    user_id: int | None = Field(default=None, gt=0, description="whose calendar; default yours")


def calendar_add(ctx: ToolContext, args: MeetingArgs) -> HandlerGen:
    owner = args.user_id
    if owner is None:  # calendar.event.add needs type and ownerId (calendar-event-add.md): the caller's own
        owner = yield from preflight.current_user(ctx)
    response = yield Call(
        "calendar.event.add",
        {"type": "user", "ownerId": owner, "name": args.name, "from": args.start, "to": args.end},
    )
    return done_output(f"event #{response.result} '{args.name}' added", {"id": response.result})


class BookArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource: str = Field(min_length=1, max_length=255, description="resource id or name")
    start: str = Field(description="ISO 8601")
    end: str = Field(description="ISO 8601")
    name: str | None = Field(None, max_length=255)


def book(ctx: ToolContext, args: BookArgs) -> HandlerGen:
    """booking.v1.booking.add (booking-v1-booking-add.md) for a resource found by ID or name. The portal
    accepts an overlapping booking and marks it overbooked; this tool refuses one instead and names the
    booking in the way."""
    start = yield from preflight.timestamp(ctx, args.start, "start")
    end = yield from preflight.timestamp(ctx, args.end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    resources = yield from preflight.cached(ctx, "booking.v1.resource.list", {})
    rows = list((resources or {}).get("resource") or []) if isinstance(resources, dict) else []
    wanted = args.resource.strip()
    match = [
        r
        for r in rows
        if str(r.get("id")) == wanted or str(r.get("name", "")).casefold() == wanted.casefold()
    ]
    if not match:
        match = [r for r in rows if wanted.casefold() in str(r.get("name", "")).casefold()]
    if len(match) != 1:
        names = ", ".join(f"#{r.get('id')} {r.get('name')}" for r in (match or rows)[:8])
        raise ValueError(
            f"{'several' if match else 'no'} resources match {wanted!r}: {names or 'none exist'}"
        )
    resource = match[0]
    # The list filters by time only (FILTER takes within and client, booking-v1-booking-list.md): the
    # resource is matched here, on each booking's resourceIds.
    busy = yield Call("booking.v1.booking.list", {"filter": {"within": {"dateFrom": start, "dateTo": end}}})
    clash = [
        b
        for b in ((busy.result or {}).get("booking") or [])
        if int(b["datePeriod"]["from"]["timestamp"]) < end
        and int(b["datePeriod"]["to"]["timestamp"]) > start
        and str(resource["id"]) in {str(r) for r in b.get("resourceIds") or ()}
    ]
    if clash:
        raise ValueError(
            f"{resource['name']} is already booked then by #{clash[0]['id']} '{clash[0].get('name')}'"
        )
    period = {"from": {"timestamp": start, "timezone": "UTC"}, "to": {"timestamp": end, "timezone": "UTC"}}
    response = yield Call(
        "booking.v1.booking.add",
        {
            "fields": {
                "resourceIds": [resource["id"]],
                "datePeriod": period,
                "name": args.name or resource["name"],
            }
        },
    )
    booking_id = (response.result or {}).get("id")
    return done_output(
        f"booking #{booking_id}: {resource['name']} from {args.start} to {args.end}",
        {"id": booking_id, "resource": resource["id"]},
    )


class EventsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(description="ISO date")
    end: str
    user_id: int | None = Field(None, gt=0, description="default: yours")


def calendar_events(ctx: ToolContext, args: EventsArgs) -> HandlerGen:
    """calendar.event.get (calendar/calendar-event/calendar-event-get.md): a user's calendar (``type`` user,
    ``ownerId``) between two dates."""
    if not preflight.parse_date(args.start) or not preflight.parse_date(args.end):
        raise ValueError("start and end are ISO 8601 dates, e.g. 2026-12-07")
    owner = args.user_id or (yield from preflight.current_user(ctx))
    response = yield Call(
        "calendar.event.get", {"type": "user", "ownerId": owner, "from": args.start, "to": args.end}
    )
    rows = [
        {
            "ID": e.get("ID"),
            "NAME": e.get("NAME"),
            "FROM": _local(e.get("DATE_FROM_TS_UTC"), e.get("TZ_OFFSET_FROM")) or e.get("DATE_FROM"),
            "TO": _local(e.get("DATE_TO_TS_UTC"), e.get("TZ_OFFSET_TO")) or e.get("DATE_TO"),
            "ACCESSIBILITY": e.get("ACCESSIBILITY"),
        }
        for e in response.result or []
        if isinstance(e, dict)
    ]
    return rows_output(ctx, rows, searched=f"calendar of user {owner} from {args.start} to {args.end}")


class BookingsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(description="ISO 8601")
    end: str
    resource: str | None = Field(None, description="resource id or name")


def bookings(ctx: ToolContext, args: BookingsArgs) -> HandlerGen:
    """booking.v1.booking.list (booking/booking/booking-v1-booking-list.md: FILTER within dateFrom/dateTo),
    with each booking's resources by name; a resource narrows the list here (the filter takes none)."""
    start = yield from preflight.timestamp(ctx, args.start, "start")
    end = yield from preflight.timestamp(ctx, args.end, "end")
    resources = yield from preflight.cached(ctx, "booking.v1.resource.list", {})
    known = list((resources or {}).get("resource") or []) if isinstance(resources, dict) else []
    names = {str(r.get("id")): str(r.get("name")) for r in known}
    busy = yield Call("booking.v1.booking.list", {"filter": {"within": {"dateFrom": start, "dateTo": end}}})
    wanted = (args.resource or "").strip().casefold()
    rows = []
    for b in (busy.result or {}).get("booking") or []:
        ids = [str(r) for r in b.get("resourceIds") or ()]
        if wanted and not any(wanted in (i, names.get(i, "").casefold()) for i in ids):
            continue
        period = b.get("datePeriod") or {}
        begins = (period.get("from") or {}).get("timestamp")
        ends = (period.get("to") or {}).get("timestamp")
        rows.append(
            {
                "id": b.get("id"),
                "name": b.get("name"),
                "resources": [names.get(i, i) for i in ids],
                "from": _local(begins, 0) or begins,  # the booking's UTC timestamps, as ISO 8601
                "to": _local(ends, 0) or ends,
            }
        )
    what = f"bookings of {args.resource!r}" if args.resource else "bookings"
    return rows_output(ctx, rows, searched=f"{what} from {args.start} to {args.end}")


def _local(stamp: Any, offset: Any) -> str | None:
    """An event's moment (calendar-event-get.md: DATE_FROM_TS_UTC and TZ_OFFSET_FROM) as ISO 8601 in its own
    zone — the portal's DATE_FROM is in its locale's format ("12/11/2024 05:59:00 pm")."""
    try:
        zone = timezone(timedelta(seconds=int(offset or 0)))
        return datetime.fromtimestamp(int(stamp), tz=zone).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


class WorkdayArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(None, gt=0, description="default: yours")


def workday(ctx: ToolContext, args: WorkdayArgs) -> HandlerGen:
    """timeman.status (timeman/base/timeman-status.md): the work day's status (OPENED, PAUSED, CLOSED,
    EXPIRED), when it started and ended, and its duration."""
    response = yield Call("timeman.status", {"USER_ID": args.user_id} if args.user_id else {})
    day = response.result if isinstance(response.result, dict) else {}
    shown = {k: day.get(k) for k in ("STATUS", "TIME_START", "TIME_FINISH", "DURATION", "TIME_LEAKS")}
    who = f"user {args.user_id}" if args.user_id else "you"
    return done_output(f"work day of {who}: " + ", ".join(f"{k}={v}" for k, v in shown.items()), day)


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_calendar_events",
            "List a person's calendar events between two dates.",
            EventsArgs,
            "read",
            ("calendar.event.get", "user.current"),
            calendar_events,
            "services",
        ),
        ToolSpec(
            "b24_booking_list",
            "List bookings between two times.",
            BookingsArgs,
            "read",
            ("booking.v1.booking.list", "booking.v1.resource.list", "server.time"),
            bookings,
            "services",
        ),
        ToolSpec(
            "b24_workday",
            "A person's work day: open, paused or closed.",
            WorkdayArgs,
            "read",
            ("timeman.status",),
            workday,
            "services",
        ),
        ToolSpec(
            "b24_calendar_add",
            "Add a calendar event.",
            MeetingArgs,
            "write",
            ("calendar.event.add", "user.current"),
            calendar_add,
            "services",
        ),
        ToolSpec(
            "b24_book",
            "Book a resource (room, car...) for a time.",
            BookArgs,
            "write",
            ("booking.v1.booking.add", "booking.v1.booking.list", "booking.v1.resource.list", "server.time"),
            book,
            "services",
        ),
    ]
