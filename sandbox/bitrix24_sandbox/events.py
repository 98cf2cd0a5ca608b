"""The sandbox's events: bindings, online delivery to handler URLs, and the offline queue (protocol.md §7)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.query import php_intval
from bitrix24_sandbox.registry import wanted_scopes
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.portal import Portal

Deliverer = Callable[[str, bytes], None]

# The events each scope describes (api-reference/events/events.md lists the portal's); `basic` is the global
# scope.
EVENTS: dict[str, tuple[str, ...]] = {
    "basic": (
        "ONAPPUNINSTALL",
        "ONAPPINSTALL",
        "ONAPPUPDATE",
        "ONAPPPAYMENT",
        "ONAPPTEST",
        "ONAPPMETHODCONFIRM",
        "ONOFFLINEEVENT",
    ),
    "user": ("ONUSERADD",),
    "crm": tuple(
        f"ONCRM{e}{a}" for e in ("LEAD", "DEAL", "CONTACT", "COMPANY") for a in ("ADD", "UPDATE", "DELETE")
    ),
    "task": ("ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE", "ONTASKCOMMENTADD"),
    "im": ("ONIMMESSAGEADD",),
    "imbot": ("ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT", "ONIMBOTDELETE"),
    "calendar": ("ONCALENDARENTRYADD", "ONCALENDARENTRYUPDATE", "ONCALENDARENTRYDELETE"),
}
NO_OFFLINE = frozenset({"ONOFFLINEEVENT"})  # disableOffline in its description


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


def _binding(query: dict[str, Any], caller: Caller, doing: str) -> tuple[str, str, str]:
    """(EVENT, EVENT_TYPE, HANDLER) checked the way eventBind and eventUnbind both check them
    (lib/api/event.php): EVENT required, EVENT_TYPE online or offline (default online), offline for
    administrators only and without a handler, online with one."""
    event = str(query.get("EVENT") or "").upper()
    event_type = str(query.get("EVENT_TYPE") or "").lower()
    handler = str(query.get("HANDLER") or "")
    if not event:
        raise ApiError("ERROR_ARGUMENT", "Argument 'EVENT' is null or empty", 400)
    if event_type and event_type not in ("online", "offline"):
        raise ApiError("ERROR_ARGUMENT", "Value must be one of {online|offline}", 400)
    event_type = event_type or "online"
    if event_type == "offline":
        if not caller.is_admin:
            raise ApiError(
                "ACCESS_DENIED",
                f"Access denied! Offline events {doing} requires administrator access rights",
                403,
            )
        return event, event_type, ""
    if not handler:
        raise ApiError("ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty", 400)
    return event, event_type, handler


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
        self.produced_rows: list[int] = []  # every row ID ever queued: one delivery each

    def handles(self, method: str) -> bool:
        return method.startswith("event.") or method == "events"

    # -- producing ------------------------------------------------------------------------------------------
    def emit(
        self,
        event: str,
        data: dict[str, Any],
        *,
        caller: Caller | None = None,
        auth_connector: Any = None,
        app_id: str | None = None,
    ) -> None:
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
        """``EventOfflineTable::callEvent`` (lib/eventoffline.php): MESSAGE_ID = md5(name|JSON(data)); a
        change is merged into the row with the same (MESSAGE_ID, APP_ID, CONNECTOR_ID, PROCESS_ID='') — only
        while no process has reserved it; after that the next change is a new row with the same MESSAGE_ID."""
        connector = str(binding.get("auth_connector") or "")
        message_id = hashlib.md5(
            f"{event}|{json.dumps(data, ensure_ascii=False, separators=(',', ':'))}".encode()
        ).hexdigest()
        for row in self.queue.values():
            if (
                row["MESSAGE_ID"] == message_id
                and row["app_id"] == binding["app_id"]
                and row["connector"] == connector
                and row["process_id"] == ""
            ):
                row["EVENT_DATA"] = data
                row["TIMESTAMP_X"] = self.portal.wall()
                return
        self._next += 1
        self.queue[self._next] = {
            "ID": self._next,
            "TIMESTAMP_X": self.portal.wall(),
            "EVENT_NAME": event,
            "EVENT_DATA": data,
            "EVENT_ADDITIONAL": {"user_id": "1"},
            "MESSAGE_ID": message_id,
            "process_id": "",
            "error": 0,
            "app_id": binding["app_id"],
            "connector": connector,
        }
        self.produced.append(message_id)
        self.produced_rows.append(self._next)

    def _deliver_online(self, event: str, data: dict[str, Any], binding: dict[str, Any]) -> None:
        self.deliver_to(binding["handler"], event, data, binding["app_id"], None, binding["id"])

    def deliver_to(
        self,
        handler: str,
        event: str,
        data: dict[str, Any],
        app_id: str | None,
        user_id: int | None = None,
        handler_id: Any = 0,
    ) -> None:
        """POST one event to a handler URL, form-encoded, with the ``auth`` of ``app_id`` (tokens of the user
        it happened for, when given) and its application_token (protocol.md §7)."""
        app = self.portal.apps.get(app_id or "")
        auth: dict[str, Any] = {
            "domain": self.portal.domain,
            "member_id": self.portal.member_id,
            "application_token": app.application_token if app else "",
        }
        if app and event != "ONAPPUNINSTALL":
            tokens = self.portal.issue_tokens(app, user_id or 1)
            auth.update(
                {
                    k: tokens[k]
                    for k in (
                        "access_token",
                        "refresh_token",
                        "expires_in",
                        "scope",
                        "client_endpoint",
                        "server_endpoint",
                        "status",
                        "user_id",
                    )
                }
            )
        body = urlencode(
            form_encode(
                {
                    "event": event,
                    "event_handler_id": handler_id,
                    "data": data,
                    "ts": int(self.portal.wall()),
                    "auth": auth,
                }
            )
        ).encode()
        self.deliver(handler, body)

    # -- the REST methods -----------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any], caller: Caller) -> Any:
        if "event" not in caller.scopes and method != "events":
            raise ApiError("insufficient_scope", "The request requires higher privileges", 403)
        if (
            caller.kind != "oauth"
        ):  # every event.* method and `events` need an application (lib/api/event.php)
            raise ApiError("WRONG_AUTH_TYPE", "Current authorization type is denied for this method", 401)
        with self.lock:
            if method == "events":
                return self._events(params, caller)
            if method == "event.bind":
                return self._bind(params, caller)
            if method == "event.unbind":
                return self._unbind(params, caller)
            if method == "event.get":
                return self._get_bindings(caller)
            if method.startswith("event.offline."):
                return self._offline(method, params, caller)
        raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)

    @staticmethod
    def _events(params: dict[str, Any], caller: Caller) -> list[str]:
        """eventsList: the events of ``SCOPE``, of every scope with ``FULL``, else of the credential's
        scopes."""
        wanted = wanted_scopes(params, caller, EVENTS)
        return [name for scope, names in EVENTS.items() if scope in wanted for name in names]

    def _bind(self, params: dict[str, Any], caller: Caller) -> bool:
        """eventBind (lib/api/event.php; api-reference/events/event-bind.md), check by check."""
        query = {str(k).upper(): v for k, v in params.items()}
        user = php_intval(query.get("AUTH_TYPE"))
        if user > 0 and not caller.is_admin and user != caller.user_id:
            raise ApiError(
                "ACCESS_DENIED",
                "Access denied! Event binding with AUTH_TYPE requires administrator access rights",
                403,
            )
        event, event_type, handler = _binding(query, caller, "binding")
        known = {name for scope in (*caller.scopes, "basic") for name in EVENTS.get(scope, ())}
        if event not in known:
            raise ApiError("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
        if not handler and event in NO_OFFLINE:
            raise ApiError("ERROR_ARGUMENT", "Offline event cannot be registered for this event.", 400)
        self.bindings.append(
            {
                "id": len(self.bindings) + 1,
                "event": event,
                "handler": handler,
                "event_type": event_type,
                "auth_connector": params.get("auth_connector"),
                "app_id": caller.app_id,
                "user_id": 0
                if event_type == "offline"
                else (user or (0 if caller.is_admin else caller.user_id)),
            }
        )
        return True

    def _unbind(self, params: dict[str, Any], caller: Caller) -> dict[str, int]:
        query = {str(k).upper(): v for k, v in params.items()}
        event, _, handler = _binding(query, caller, "unbinding")
        user = (
            php_intval(query["AUTH_TYPE"]) if "AUTH_TYPE" in query else None
        )  # only that user's binding, if given
        before = len(self.bindings)
        self.bindings = [
            b
            for b in self.bindings
            if not (
                b["event"] == event
                and b["handler"] == handler
                and b["app_id"] == caller.app_id
                and (user is None or int(b.get("user_id") or 0) == user)
            )
        ]
        return {"count": before - len(self.bindings)}

    def _get_bindings(self, caller: Caller) -> list[dict[str, Any]]:
        """eventGet: online bindings with handler and auth_type, offline ones with connector_id."""
        out = []
        for b in self.bindings:
            if b["app_id"] != caller.app_id or (
                not caller.is_admin and b.get("user_id") not in (0, caller.user_id)
            ):
                continue
            if b["handler"]:
                out.append(
                    {
                        "event": b["event"],
                        "handler": b["handler"],
                        "auth_type": str(b.get("user_id") or 0),
                        "offline": 0,
                    }
                )
            else:
                out.append(
                    {"event": b["event"], "connector_id": str(b.get("auth_connector") or ""), "offline": 1}
                )
        return out

    def _offline(self, method: str, params: dict[str, Any], caller: Caller) -> Any:
        """``event.offline.*`` as ``Bitrix\\Rest\\Api\\Event`` implements them (lib/api/event.php,
        lib/eventoffline.php; protocol.md §7): keys lower-cased; ``clear``/``limit``/``error`` read with
        intval; new rows reserved only when no ``process_id`` is sent; with one, only rows already reserved
        under it come back."""
        # The server checks these three in this order (protocol.md §7).
        if caller.kind != "oauth":
            raise ApiError("WRONG_AUTH_TYPE", "Application context required", 401)
        if not caller.is_admin:
            raise ApiError("ACCESS_DENIED", "Access denied! Admin permissions required", 403)
        query = {str(k).lower(): v for k, v in params.items()}
        connector = str(query.get("auth_connector") or "")
        mine = [
            r for r in self.queue.values() if r["app_id"] == caller.app_id and r["connector"] == connector
        ]
        if method == "event.offline.list":
            from bitrix24_sandbox.methods import Listing

            # event-offline-list.md: filter and order by ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID, PROCESS_ID,
            # ERROR; order by default ID:ASC
            rows = _ordered([r for r in mine if _matches(r, query.get("filter"))], query.get("order"), "ID")
            start = max(0, php_intval(query.get("start")))
            page = [
                {**self._public(r), "PROCESS_ID": r["process_id"], "ERROR": r["error"]}
                for r in rows[start : start + 50]
            ]
            return Listing(page, len(rows), start + 50 if start + 50 < len(rows) else None)
        if method == "event.offline.get":
            return self._get(query, mine)
        process_id = _trimmed(query.get("process_id"))
        if process_id is None:
            raise ApiError("ERROR_ARGUMENT", "Argument 'PROCESS_ID' is null or empty", 400)
        if method == "event.offline.clear":
            if "message_id" in query:
                ids = query["message_id"]
                if not isinstance(ids, (list, dict)) or any(len(str(m).strip()) != 32 for m in _list(ids)):
                    raise ApiError("ERROR_ARGUMENT", "Value must be array of MESSAGE_ID values", 400)
                wanted = {str(m).strip() for m in _list(ids)}
                targets = [r for r in mine if r["process_id"] == process_id and r["MESSAGE_ID"] in wanted]
            elif "id" in query:
                ids = query["id"]
                if not isinstance(ids, (list, dict)) or any(php_intval(i) <= 0 for i in _list(ids)):
                    raise ApiError("ERROR_ARGUMENT", "Value must be array of integers", 400)
                wanted_ids = {php_intval(i) for i in _list(ids)}
                targets = [r for r in mine if r["process_id"] == process_id and r["ID"] in wanted_ids]
            else:
                targets = [r for r in mine if r["process_id"] == process_id]
            for row in targets:
                del self.queue[row["ID"]]
            return True
        if method == "event.offline.error":
            ids = query.get("message_id")
            if not isinstance(ids, (list, dict)):
                raise ApiError("ERROR_ARGUMENT", "Value must be array of MESSAGE_ID values", 400)
            wanted = {str(m) for m in _list(ids)}
            if wanted:  # EventOfflineTable::markError, statement by statement
                for row in [
                    r
                    for r in mine
                    if r["MESSAGE_ID"] in wanted and r["error"] == 0 and r["process_id"] != process_id
                ]:
                    del self.queue[row["ID"]]
                for row in [
                    r for r in mine if r["ID"] in self.queue and r["MESSAGE_ID"] in wanted and r["error"] == 0
                ]:
                    row["error"], row["process_id"] = 1, ""
            return True
        raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)

    def _get(self, query: dict[str, Any], mine: list[dict[str, Any]]) -> dict[str, Any]:
        clear = 1 if "clear" not in query or query["clear"] is None else php_intval(query["clear"])
        process_id = _trimmed(query.get("process_id"))
        if not clear and not self.portal.extended_offline_mode:
            raise ApiError(
                "ERROR_OFFLINE_EVENTS_LICENSE", "clear=0 needs the extended offline events mode", 400
            )
        limit = php_intval(query["limit"]) if "limit" in query else 50
        if limit <= 0:
            raise ApiError("ERROR_ARGUMENT", "Value must be positive integer", 400)
        error = 1 if php_intval(query.get("error")) == 1 else 0
        return_process_id = not clear
        # event-offline-get.md: filter (ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID) and order, by default
        # TIMESTAMP_X:ASC
        candidates = _ordered(
            [r for r in mine if r["error"] == error and _matches(r, query.get("filter"), _GET_FIELDS)],
            query.get("order"),
            "TIMESTAMP_X",
        )
        if process_id is None:  # markEvents: reserve up to `limit` unreserved rows under a new random id
            process_id = uuid.uuid4().hex
            for row in [r for r in candidates if r["process_id"] == ""][:limit]:
                row["process_id"] = process_id
        else:
            return_process_id = True
        rows = [r for r in candidates if r["process_id"] == process_id][:limit]
        result = [self._public(r) for r in rows]
        if clear and result:  # clearEvents: every row of that process goes, not only the ones returned
            for row in [r for r in mine if r["process_id"] == process_id]:
                self.queue.pop(row["ID"], None)
        return {"process_id": process_id if return_process_id else None, "events": result}

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        """A row as the docs' example shows it: ID and MESSAGE_ID as strings, TIMESTAMP_X an ISO date with
        the portal's offset (event-offline-get.md, "2024-07-18T12:32:31+02:00")."""
        return {
            "ID": str(row["ID"]),
            "TIMESTAMP_X": _iso(row["TIMESTAMP_X"]),
            "EVENT_NAME": row["EVENT_NAME"],
            "EVENT_DATA": row["EVENT_DATA"],
            "EVENT_ADDITIONAL": row["EVENT_ADDITIONAL"],
            "MESSAGE_ID": str(row["MESSAGE_ID"]),
        }


_LIST_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID", "PROCESS_ID", "ERROR")
_GET_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
_OPERATOR = re.compile(r"^(>=|<=|!=|!|=|>|<)?(.*)$")


def _iso(stamp: float) -> str:
    """A unix time as the portal writes dates: ISO 8601 in its own offset, to the second."""
    from bitrix24_sandbox.data import EPOCH

    return datetime.fromtimestamp(stamp, tz=EPOCH.tzinfo).isoformat(timespec="seconds")


def _column(row: dict[str, Any], name: str) -> Any:
    return {
        "ID": row["ID"],
        "TIMESTAMP_X": row["TIMESTAMP_X"],
        "EVENT_NAME": row["EVENT_NAME"],
        "MESSAGE_ID": row["MESSAGE_ID"],
        "PROCESS_ID": row["process_id"],
        "ERROR": row["error"],
    }[name]


def _comparable(name: str, value: Any) -> Any:
    """A filter value as the column compares it: numbers for ID and ERROR, a unix time for TIMESTAMP_X
    (given as an ISO date or a number), text otherwise."""
    if name in ("ID", "ERROR"):
        return php_intval(value)
    if name == "TIMESTAMP_X":
        try:
            return float(value)
        except (TypeError, ValueError):
            try:
                return datetime.fromisoformat(str(value)).timestamp()
            except ValueError:
                return float("nan")
    return str(value)


def _matches(row: dict[str, Any], flt: Any, fields: tuple[str, ...] = _LIST_FIELDS) -> bool:
    """The filter the docs describe: a field, the operation before it (=, !, >, <, >=, <=), "standard
    operations"; a key naming another field is not read (UNVERIFIED: the docs do not say it is refused)."""
    if not isinstance(flt, dict):
        return True
    for key, value in flt.items():
        op, name = _OPERATOR.match(str(key)).groups()  # type: ignore[union-attr]
        name = name.upper()
        if name not in fields:
            continue
        have = _comparable(name, _column(row, name))
        want = _comparable(name, value)
        ok = {
            None: have == want,
            "=": have == want,
            "!": have != want,
            "!=": have != want,
            ">": have > want,
            "<": have < want,
            ">=": have >= want,
            "<=": have <= want,
        }[op]
        if not ok:
            return False
    return True


def _ordered(rows: list[dict[str, Any]], order: Any, default: str) -> list[dict[str, Any]]:
    """Rows sorted by ``order`` ({field: ASC|DESC}, fields as in the filter), else by ``default`` ascending;
    ID breaks ties."""
    keys = [
        (str(k).upper(), str(v).upper() == "DESC")
        for k, v in (order.items() if isinstance(order, dict) else [])
        if str(k).upper() in _LIST_FIELDS
    ] or [(default, False)]
    out = sorted(rows, key=lambda r: r["ID"])
    for name, descending in reversed(keys):
        out.sort(key=lambda r, n=name: _comparable(n, _column(r, n)), reverse=descending)  # type: ignore[misc]
    return out


def _trimmed(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else [value]
