"""Demo data for the packs beyond CRM and tasks, read from ``seed/packs.json``: a drive, a scrum group, a
catalog with orders, calendars and booking resources, a site, consents, business processes, AI engines.
Coherent with the CRM seed (companies by name). The file's few computed values are expanded here: dates after
the seed's epoch, a file's base64 content, the seeded users."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from bitrix24_sandbox.data import EPOCH, iso


@lru_cache(maxsize=1)
def _tables() -> str:
    return resources.files(__package__).joinpath("seed/packs.json").read_text(encoding="utf-8")


def _moment(spec: dict[str, Any]) -> Any:
    moment = EPOCH + timedelta(days=int(spec.get("days", 0)))
    if "at" in spec:
        hour, minute = (int(part) for part in str(spec["at"]).split(":"))
        moment = moment.replace(hour=hour, minute=minute)
    return moment


def _expand(value: Any, users: int, user: int | None = None) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$date"}:
            return iso(_moment(value["$date"]))
        if set(value) == {"$timestamp"}:
            return int(_moment(value["$timestamp"]).timestamp())
        if set(value) == {"$base64"}:
            return base64.b64encode(str(value["$base64"]).encode()).decode()
        return {k: _expand(v, users, user) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, users, user) for v in value]
    if value == "$when":
        return iso(EPOCH)
    if value == "$user":
        return str(user)
    if value == "$second_user":
        return "2" if users >= 2 else "1"
    if value == "$everyone":
        return list(range(1, users + 1))
    return value


def _key(raw: str) -> Any:
    return int(raw) if raw.isdigit() else raw


def seed_packs(state: dict[str, Any], users: int) -> None:
    """Add every other pack's seed to ``state`` (int-keyed tables, so the portal's id counters follow
    them)."""
    for kind, rows in json.loads(_tables())["tables"].items():
        if set(rows) == {"$per_user"}:  # one record per seeded user
            state[kind] = {uid: _expand(rows["$per_user"], users, uid) for uid in range(1, users + 1)}
        else:
            state[kind] = {_key(k): _expand(v, users) for k, v in rows.items()}
    for chat in state["chat"].values():  # members the portal does not have are not seeded
        chat["USERS"] = [u for u in chat["USERS"] if u <= users]
    for tid in (1, 2):  # the first two tasks are on the scrum project's first sprint's board
        if tid in state.get("task", {}):
            state["task"][tid]["groupId"] = "1"
            state["scrum_item"][tid] = {"taskId": tid, "sprintId": 1, "stageId": 10 + tid - 1}
