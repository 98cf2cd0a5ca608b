"""The services pack's typed tools: add a calendar event, book a resource."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs import preflight
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


class MeetingArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    start: str = Field(description="ISO 8601")
    end: str = Field(description="ISO 8601")
    user_id: int | None = Field(default=None, gt=0, description="whose calendar; default yours")


def calendar_add(ctx: ToolContext, args: MeetingArgs) -> HandlerGen:
    owner = args.user_id
    if (
        owner is None
    ):  # calendar.event.add needs type and ownerId (calendar-event-add.md): the caller's own calendar
        me = yield Call("user.current", {})
        owner = int((me.result or {}).get("ID") or 0) if isinstance(me.result, dict) else 0
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


def specs() -> list[ToolSpec]:
    return [
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
