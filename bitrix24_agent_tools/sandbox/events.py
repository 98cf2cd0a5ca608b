"""The sandbox's events: bindings, online delivery to handler URLs, and the offline queue (protocol.md §7)."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_agent_tools.sandbox.portal import Portal

Deliverer = Callable[[str, bytes], None]


def form_encode(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested data as PHP-style form pairs (``data[FIELDS][ID]=5``), the way portals POST events."""
    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            pairs += form_encode(value, f"{prefix}[{key}]" if prefix else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            pairs += form_encode(value, f"{prefix}[{index}]")
    else:
        pairs.append((prefix, "" if data is None else str(data)))
    return pairs


class EventHub:
    """Event bindings and the offline queue of one portal; online events go to ``deliver(url, body)``."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.lock = threading.RLock()
        self.bindings: list[dict[str, Any]] = []
        self.queue: dict[int, dict[str, Any]] = {}
        self._next = 0
        self.deliveries: list[tuple[str, bytes]] = []
        self.deliver: Deliverer = lambda url, body: self.deliveries.append((url, body))
        self.produced: list[str] = []  # every MESSAGE_ID ever queued, for no-loss tests

    def handles(self, method: str) -> bool:
        return method.startswith("event.") or method == "events"

    # -- producing ------------------------------------------------------------------------------------------
    def emit(self, event: str, data: dict[str, Any], *, caller: Caller | None = None, auth_connector: Any = None,
             app_id: str | None = None) -> None:
        event = event.upper()
        with self.lock:
            for binding in list(self.bindings):
                if binding["event"] != event or (app_id and binding["app_id"] != app_id):
                    continue
                if auth_connector and binding.get("auth_connector") == auth_connector:
                    continue  # the app's own write: no echo (protocol.md §7)
                if binding["event_type"] == "offline":
                    self._enqueue(event, data, binding)
                else:
                    self._deliver_online(event, data, binding)

    def _enqueue(self, event: str, data: dict[str, Any], binding: dict[str, Any]) -> None:
        key = f"{event}:{json.dumps(data, sort_keys=True)}"
        message_id = hashlib.md5(key.encode()).hexdigest()
        for row in self.queue.values():  # repeated changes of one object collapse into the waiting row
            if row["MESSAGE_ID"] == message_id and row["process_id"] is None and not row["error"]:
                row["EVENT_DATA"] = data
                row["TIMESTAMP_X"] = self.portal.wall()
                return
        self._next += 1
        self.queue[self._next] = {"ID": self._next, "TIMESTAMP_X": self.portal.wall(), "EVENT_NAME": event,
                                  "EVENT_DATA": data, "EVENT_ADDITIONAL": {"user_id": "1"}, "MESSAGE_ID": message_id,
                                  "process_id": None, "error": False, "app_id": binding["app_id"]}
        self.produced.append(message_id)

    def _deliver_online(self, event: str, data: dict[str, Any], binding: dict[str, Any]) -> None:
        app = self.portal.apps.get(binding["app_id"] or "")
        auth: dict[str, Any] = {"domain": self.portal.domain, "member_id": self.portal.member_id,
                                "application_token": app.application_token if app else ""}
        if app and event != "ONAPPUNINSTALL":
            tokens = self.portal.issue_tokens(app)
            auth.update({k: tokens[k] for k in ("access_token", "refresh_token", "expires_in", "scope",
                                                "client_endpoint", "server_endpoint", "status", "user_id")})
        body = urlencode(form_encode({"event": event, "event_handler_id": binding["id"], "data": data,
                                      "ts": int(self.portal.wall()), "auth": auth})).encode()
        self.deliver(binding["handler"], body)

    # -- the REST methods -----------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any], caller: Caller) -> Any:
        if "event" not in caller.scopes and method != "events":
            raise ApiError("insufficient_scope", "The request requires higher privileges", 403)
        with self.lock:
            if method == "events":
                return ["ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALDELETE", "ONCRMLEADADD", "ONTASKADD", "ONTASKUPDATE",
                        "ONAPPINSTALL", "ONAPPUNINSTALL", "ONOFFLINEEVENT"]
            if method == "event.bind":
                return self._bind(params, caller)
            if method == "event.unbind":
                before = len(self.bindings)
                self.bindings = [b for b in self.bindings if not (
                    b["event"] == str(params.get("event", "")).upper() and b["handler"] == params.get("handler", b["handler"])
                    and b["app_id"] == caller.app_id)]
                return {"count": before - len(self.bindings)}
            if method == "event.get":
                return [{"event": b["event"], "handler": b["handler"], "auth_type": "0", "offline": int(b["event_type"] == "offline")}
                        for b in self.bindings if b["app_id"] == caller.app_id]
            if method.startswith("event.offline."):
                return self._offline(method, params, caller)
        raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)

    def _bind(self, params: dict[str, Any], caller: Caller) -> bool:
        event = str(params.get("event") or params.get("EVENT") or "").upper()
        handler = str(params.get("handler") or params.get("HANDLER") or "")
        event_type = str(params.get("event_type") or "online").lower()
        if not event:
            raise ApiError("ERROR_ARGUMENT", "event is required")
        if event_type == "online" and not handler:
            raise ApiError("ERROR_ARGUMENT", "handler is required for online events")
        if caller.kind != "oauth":
            raise ApiError("WRONG_AUTH_TYPE", "Application context required", 401)
        self.bindings.append({"id": len(self.bindings) + 1, "event": event, "handler": handler, "event_type": event_type,
                              "auth_connector": params.get("auth_connector"), "app_id": caller.app_id})
        return True

    def _offline(self, method: str, params: dict[str, Any], caller: Caller) -> Any:
        # The server checks these three in this order (protocol.md §7).
        if caller.kind != "oauth":
            raise ApiError("WRONG_AUTH_TYPE", "Application context required", 401)
        if method != "event.offline.list" and not caller.is_admin:
            raise ApiError("ACCESS_DENIED", "Access denied! Admin permissions required", 403)
        clear = str(params.get("clear", 1)) not in ("0", "false", "N")
        if method == "event.offline.get" and not clear and not self.portal.extended_offline_mode:
            raise ApiError("ERROR_OFFLINE_EVENTS_LICENSE", "clear=0 needs the extended offline events mode", 400)
        mine = {k: r for k, r in self.queue.items() if r["app_id"] == caller.app_id}
        if method == "event.offline.list":
            return [self._public(r) for r in mine.values()][: int(params.get("limit") or 50)]
        if method == "event.offline.get":
            limit = max(1, min(int(params.get("limit") or 50), 1000))
            process_id = str(params.get("process_id") or "") or uuid.uuid4().hex
            want_error = str(params.get("error", 0)) in ("1", "true", "Y")
            rows = [r for r in mine.values() if r["process_id"] == process_id and r["error"] == want_error]
            rows += [r for r in mine.values() if r["process_id"] is None and r["error"] == want_error]
            rows = sorted(rows, key=lambda r: r["ID"])[:limit]
            for row in rows:
                if clear:
                    del self.queue[row["ID"]]
                else:
                    row["process_id"] = process_id
            return {"process_id": process_id, "events": [self._public(r) for r in rows]}
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise ApiError("ERROR_ARGUMENT", "process_id is required")
        ids = {int(i) for i in _list(params.get("id"))}
        message_ids = set(map(str, _list(params.get("message_id"))))
        targets = [r for r in mine.values() if r["process_id"] == process_id
                   and ((not ids and not message_ids) or r["ID"] in ids or r["MESSAGE_ID"] in message_ids)]
        if method == "event.offline.clear":
            for row in targets:
                del self.queue[row["ID"]]
            return True
        if method == "event.offline.error":
            if not message_ids:
                raise ApiError("ERROR_ARGUMENT", "message_id is required")
            for row in targets:
                row["error"] = True  # comes back only with error=1; still clearable by its process
            return True
        raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("ID", "TIMESTAMP_X", "EVENT_NAME", "EVENT_DATA", "EVENT_ADDITIONAL", "MESSAGE_ID")}


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else [value]
