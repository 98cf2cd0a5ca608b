"""One canonical form of a call and one risk model, fail closed — shared by the guard, the client and the
audit.

A call is judged the way the portal will read it (protocol.md §1, §7): the method name case-insensitive, with
surrounding whitespace and a ``.json``/``.xml`` suffix dropped; a batch's own keys upper-cased
(``CRestProvider::methodsBatch``); each batch command's query parsed as PHP's ``parse_str`` reads it. Whatever
the portal could read in more than one way — two case variants of one key, a key PHP would rename, a value set
twice, unknown batch keys, an empty batch — is refused as :class:`AmbiguousCall`, never guessed.

Risk: ``read`` only when a catalog says so or the method's last name part is a known read verb; destructive
verbs are destructive; everything else — unknown verbs included — is at least ``write``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

Risk = Literal["read", "write", "destructive"]
RISK_ORDER: Mapping[str, int] = {"read": 0, "write": 1, "destructive": 2}


def riskiest(risks: list[Risk] | tuple[Risk, ...]) -> Risk:
    """The highest of several risks (``read`` when there are none)."""
    result: Risk = "read"
    for risk in risks:
        if RISK_ORDER[risk] > RISK_ORDER[result]:
            result = risk
    return result


class AmbiguousCall(ValueError):
    """The portal could read this request in more than one way (or not as we do): refused, never guessed."""


# --- the catalog: each pack's methods with their risk (catalog.md)
# ---------------------------------------------


def _parse(spec: str) -> dict[str, Risk]:
    out: dict[str, Risk] = {}
    for line in spec.split(";"):
        line = line.strip()
        if not line:
            continue
        risk, names = line.split(":", 1)
        for name in names.split():
            out[name.strip()] = risk.strip()  # type: ignore[assignment]
    return out


CATALOG: dict[str, dict[str, Risk]] = {
    "core": _parse("""
        read: user.current user.get user.search department.get crm.lead.list crm.lead.get crm.lead.fields
              crm.deal.list crm.deal.get crm.deal.fields crm.contact.list crm.contact.get crm.contact.fields
              crm.company.list crm.company.get crm.company.fields crm.item.list crm.item.get crm.item.fields
              crm.category.list crm.status.list crm.activity.list tasks.task.list tasks.task.get event.get
              event.offline.list crm.duplicate.findbycomm crm.currency.list;
        write: crm.lead.add crm.lead.update crm.deal.add crm.deal.update crm.contact.add crm.contact.update
               crm.company.add crm.company.update crm.item.add crm.item.update crm.activity.todo.add
               crm.timeline.comment.add tasks.task.add tasks.task.update tasks.task.complete
               task.commentitem.add event.bind event.offline.error event.offline.get batch;
        destructive: crm.lead.delete crm.deal.delete crm.contact.delete crm.company.delete crm.item.delete
                     tasks.task.delete event.unbind event.offline.clear"""),
    "comms": _parse("""
        write: im.message.add im.message.update im.notify.system.add im.notify.personal.add imbot.register
               imbot.command.register imbot.command.answer imbot.message.add telephony.externalCall.register
               telephony.externalCall.finish;
        destructive: im.message.delete;
        read: im.dialog.messages.get messageservice.sender.list imopenlines.config.list.get imconnector.list
              mailservice.list im.search.chat.list im.chat.user.list im.recent.list"""),
    "automation": _parse("""
        write: bizproc.workflow.start bizproc.task.complete bizproc.robot.add bizproc.robot.update
               bizproc.workflow.template.update crm.automation.trigger;
        destructive: bizproc.workflow.terminate bizproc.workflow.kill;
        read: bizproc.workflow.instances bizproc.task.list bizproc.robot.list bizproc.workflow.template.list
              lists.element.get"""),
    "collab": _parse("""
        read: sonet_group.get sonet_group.user.get log.blogpost.get;
        write: sonet_group.create sonet_group.update log.blogpost.add log.blogpost.update log.blogcomment.add;
        destructive: sonet_group.delete log.blogpost.delete log.blogcomment.delete"""),
    "content": _parse("""
        read: disk.storage.getlist disk.storage.getchildren disk.folder.getchildren disk.file.get;
        write: disk.folder.addsubfolder disk.folder.uploadfile disk.file.copyto disk.file.moveto
               documentgenerator.document.add;
        destructive: disk.file.delete"""),
    "boards": _parse("""
        read: tasks.api.scrum.sprint.list tasks.api.scrum.kanban.getStages tasks.api.scrum.epic.list
              tasks.api.scrum.task.get;
        write: tasks.api.scrum.sprint.add tasks.api.scrum.sprint.start tasks.api.scrum.sprint.complete
               tasks.api.scrum.kanban.addTask tasks.api.scrum.epic.add tasks.api.scrum.backlog.add
               tasks.api.scrum.task.update;
        destructive: tasks.api.scrum.kanban.deleteTask"""),
    "commerce": _parse("""
        read: sale.order.list sale.order.get sale.payment.list sale.delivery.getlist catalog.product.list
              catalog.product.get catalog.price.list catalog.catalog.list;
        write: sale.order.add sale.order.update sale.payment.add catalog.product.add catalog.product.update
               catalog.price.add"""),
    "services": _parse("""
        read: booking.v1.booking.list booking.v1.resource.list calendar.event.get calendar.section.get
              calendar.accessibility.get timeman.status;
        write: booking.v1.booking.add booking.v1.booking.update calendar.event.add calendar.event.update
               timeman.open timeman.close;
        destructive: calendar.event.delete"""),
    "platform": _parse("""
        read: ai.engine.list entity.get entity.item.get biconnector.source.list biconnector.connector.list;
        write: ai.engine.register ai.prompt.register entity.add entity.update entity.item.add
               entity.item.update biconnector.source.add;
        destructive: ai.engine.unregister entity.item.delete"""),
    "sites": _parse("""
        read: landing.site.getList landing.landing.getList landing.block.getList;
        write: landing.site.add landing.site.update landing.landing.add landing.landing.update
               landing.landing.publication landing.block.addCard;
        destructive: landing.site.delete landing.landing.delete"""),
    "compliance": _parse("""
        read: userconsent.agreement.list userconsent.agreement.text sign.b2e.personal.tail
              sign.b2e.mysafe.tail;
        write: userconsent.consent.add"""),
    "diagnostics": _parse("read: server.time scope methods method.get events feature.get app.info profile"),
}

_BY_METHOD: dict[str, tuple[str, Risk]] = {}
for _pack, _methods in CATALOG.items():
    for _method, _risk in _methods.items():
        _BY_METHOD.setdefault(_method.lower(), (_pack, _risk))

# A method no catalog lists is read only when its last name part is one of these (exactly); see catalog.md.
READ_VERBS = frozenset(
    [
        "get",
        "list",
        "fields",
        "search",
        "current",
        "count",
        "getlist",
        "getchildren",
        "getstages",
        "getfields",
        "getbyid",
        "find",
        "findbycomm",
        "tail",
        "instances",
        "status",
        "info",
        "time",
        "version",
        "profile",
        "scope",
        "methods",
        "events",
        "text",
        "userfields",
        "getall",
        "getfiles",
        "history",
    ]
)
DESTRUCTIVE_VERBS = frozenset(
    [
        "delete",
        "remove",
        "unregister",
        "unbind",
        "terminate",
        "kill",
        "clear",
        "recyclebin",
        "deletetask",
        "markdeleted",
        "destroy",
        "purge",
        "erase",
        "drop",
        "uninstall",
        "unpublic",
        "unpublish",
        "revoke",
        "reset",
        "truncate",
        "wipe",
    ]
)
_METHOD_RE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")


def canonical_method(raw: Any) -> str:
    """The method as the portal resolves it: lower case, surrounding whitespace and a .json/.xml suffix
    dropped.

    Anything that is not a plain dotted ASCII name after that (unicode look-alikes, inner spaces, slashes, a
    query or fragment) is refused: the portal would either not find it or read something else.
    """
    if not isinstance(raw, str):
        raise AmbiguousCall(f"method must be a string, got {type(raw).__name__}")
    name = raw.strip(" \t\n\r\0\x0b").lower()
    while name.endswith((".json", ".xml")):
        name = name.rsplit(".", 1)[0]
    if not name.isascii() or not _METHOD_RE.fullmatch(name):
        raise AmbiguousCall(
            f"method name {raw[:60]!r} is not a plain dotted name the portal would resolve as written"
        )
    return name


def catalog_risk(method: str, params: Mapping[str, Any] | None = None) -> Risk | None:
    """The catalog's risk for a call, including the parameter-dependent ones; None if not in any catalog."""
    lower = method.lower()
    if lower == "event.offline.get":
        # The server lower-cases the keys and reads clear with intval, absent (or null) = 1: it deletes what
        # it returns unless clear is a scalar whose intval is 0 (protocol.md §7).
        clear = _get_ci(params or {}, "clear")
        return (
            "write"
            if clear is not None and not isinstance(clear, (Mapping, list, tuple)) and php_intval(clear) == 0
            else "destructive"
        )
    found = _BY_METHOD.get(lower)
    return found[1] if found else None


def name_risk(method: str) -> Risk:
    """Risk by the method's last name part, for methods no catalog lists: unknown verbs are writes."""
    last = method.lower().rsplit(".", 1)[-1]
    if last in DESTRUCTIVE_VERBS or any(
        last.startswith(v) for v in ("delete", "remove", "unregister", "unbind", "clear")
    ):
        return "destructive"
    if last in READ_VERBS:
        return "read"
    return "write"


def pack_of(method: str) -> str | None:
    """The pack whose catalog lists ``method`` (case-insensitive), or None."""
    found = _BY_METHOD.get(method.lower())
    return found[0] if found else None


# --- PHP's view of values and queries
# -------------------------------------------------------------------------


def php_intval(value: Any) -> int:
    """``intval`` as PHP computes it: the leading integer of a string (0 when there is none); an array is 1
    when it is not empty."""
    if isinstance(value, (list, dict)):
        return 1 if value else 0
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, (int, float)):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else 0


def _get_ci(params: Mapping[str, Any], key: str) -> Any:
    for k, v in params.items():
        if str(k).lower() == key:
            return v
    return None


_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_query_strict(query: str) -> dict[str, Any]:
    """A batch command's query as PHP's ``parse_str`` reads it, refusing every form it could read another
    way."""
    out: dict[str, Any] = {}
    if "#" in query:
        raise AmbiguousCall("a batch command must not contain '#': the portal drops what follows it")
    for piece in query.split("&"):
        if not piece:
            continue
        raw_key, has_value, raw_value = piece.partition("=")
        key = unquote_plus(raw_key)
        value: Any = unquote_plus(raw_value) if has_value else ""
        base, _, rest = key.partition("[")
        rest = "[" + rest if rest or key.endswith("[") else ""
        if not base or not re.fullmatch(r"[A-Za-z0-9_\-]+", base):
            raise AmbiguousCall(f"query key {key[:40]!r} would be renamed or dropped by the portal's parser")
        parts = _KEY_PART.findall(rest)
        if "".join(f"[{p}]" for p in parts) != rest:
            raise AmbiguousCall(f"query key {key[:40]!r} has brackets the portal would read differently")
        _assign(out, [base, *parts], value, key)
    return out


def _assign(target: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    node: Any = target
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, list):
            if part != "":
                raise AmbiguousCall(f"query key {key[:40]!r} mixes list and map forms")
            if last:
                node.append(value)
                return
            child: Any = {}
            node.append(child)
            node = child
            continue
        if part == "":
            if node is target:
                raise AmbiguousCall(f"query key {key[:40]!r} is empty")
            raise AmbiguousCall(f"query key {key[:40]!r} mixes list and map forms")
        twins = [k for k in node if k.lower() == part.lower() and k != part]
        if twins:
            raise AmbiguousCall(
                f"query keys {twins[0]!r} and {part!r} differ only by case; the portal may read either"
            )
        if last:
            if part in node:
                raise AmbiguousCall(f"query key {key[:40]!r} is set twice; the portal would keep only one")
            node[part] = value
            return
        nxt = path[depth + 1]
        if part not in node:
            node[part] = [] if nxt == "" else {}
        elif not isinstance(node[part], (dict, list)) or isinstance(node[part], list) != (nxt == ""):
            raise AmbiguousCall(
                f"query key {key[:40]!r} is both a value and a list; the portal would keep only one"
            )
        node = node[part]


def _check_case_twins(value: Any, where: str, depth: int = 0) -> None:
    """Refuse maps that hold two keys differing only by case (the portal upper- or lower-cases them)."""
    if depth > 12:
        raise AmbiguousCall(f"{where} is nested too deeply")
    if isinstance(value, Mapping):
        seen: dict[str, str] = {}
        for key in value:
            low = str(key).lower()
            if low in seen:
                raise AmbiguousCall(
                    f"{where} has keys {seen[low]!r} and {key!r} that differ only by case; "
                    "the portal may read either"
                )
            seen[low] = str(key)
            _check_case_twins(value[key], f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_case_twins(item, where, depth + 1)


# --- the canonical call
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command of a batch, as the portal will run it."""

    key: str
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class CanonicalCall:
    method: str
    params: dict[str, Any]
    commands: tuple[Command, ...] = ()
    halt: bool = False

    @property
    def risk(self) -> Risk:
        if self.method == "batch":
            return riskiest([classify_one(c.method, c.params) for c in self.commands])
        return classify_one(self.method, self.params)

    def fingerprint(self, tenant: str) -> str:
        """A stable digest of the whole call (used for idempotency keys and request ids)."""
        blob = json.dumps([tenant, self.method, self.params], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


def canonical_call(method: Any, params: Any) -> CanonicalCall:
    """Judge a call the way the portal reads it; raises :class:`AmbiguousCall` if it could be read two
    ways."""
    name = canonical_method(method)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise AmbiguousCall("params must be an object")
    _check_case_twins(params, "params")
    params = dict(params)
    if name != "batch":
        return CanonicalCall(name, params)
    upper = {str(k).upper(): v for k, v in params.items()}
    unknown = sorted(set(upper) - {"CMD", "HALT"})
    if unknown:
        raise AmbiguousCall(f"batch takes only 'cmd' and 'halt'; unknown key(s): {', '.join(unknown)[:60]}")
    cmd = upper.get("CMD")
    if isinstance(cmd, Mapping):
        items = [(str(k), v) for k, v in cmd.items()]
    elif isinstance(cmd, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(cmd)]
    else:
        raise AmbiguousCall("batch needs 'cmd': a map or list of 'method?query' strings")
    if not items:
        raise AmbiguousCall("an empty batch does nothing; refused")
    commands = []
    for key, item in items:
        if isinstance(item, (list, tuple)) and item:
            sub_params = item[1] if len(item) > 1 else {}
            if not isinstance(sub_params, Mapping):
                raise AmbiguousCall(f"batch command {key!r}: params must be an object")
            _check_case_twins(sub_params, f"batch command {key!r}")
            sub_method, sub = canonical_method(item[0]), dict(sub_params)
        elif isinstance(item, str):
            path, _, query = item.partition("?")
            if any(ch in path for ch in "/:#"):
                raise AmbiguousCall(f"batch command {key!r} is not a plain 'method?query' string")
            sub_method, sub = canonical_method(path), parse_query_strict(query)
        else:
            raise AmbiguousCall(f"batch command {key!r} must be a 'method?query' string")
        if sub_method == "batch":
            raise AmbiguousCall("a batch inside a batch is refused")
        if any(str(k).lower() == "auth" for k in sub):
            raise AmbiguousCall("batch commands must not carry 'auth'")
        commands.append(Command(key, sub_method, sub))
    halt = upper.get("HALT")
    return CanonicalCall(
        "batch",
        params,
        tuple(commands),
        bool(php_intval(halt)) if not isinstance(halt, (Mapping, list)) else True,
    )


def classify_one(method: str, params: Mapping[str, Any] | None = None) -> Risk:
    """Catalog first (with parameter-dependent risk), then the method name; unknown verbs are writes."""
    return catalog_risk(method, params) or name_risk(method)


def classify(method: str, params: Mapping[str, Any] | None = None) -> Risk:
    """The risk of a call; a batch takes its riskiest command, and one that cannot be read unambiguously is
    a write."""
    try:
        call = canonical_call(method, params or {})
    except AmbiguousCall:
        try:
            return riskiest(["write", classify_one(canonical_method(method), None)])
        except AmbiguousCall:
            return "write"
    return call.risk


# The scope a method needs, by its first name part (api-reference/scopes/permissions.md); None: unknown or
# global.
_SCOPE_BY_PREFIX = {
    "crm": "crm",
    "tasks": "task",
    "task": "task",
    "im": "im",
    "imbot": "imbot",
    "user": "user",
    "department": "department",
    "disk": "disk",
    "calendar": "calendar",
    "bizproc": "bizproc",
    "log": "log",
    "sonet_group": "sonet_group",
    "landing": "landing",
    "sale": "sale",
    "catalog": "catalog",
    "timeman": "timeman",
    "booking": "booking",
    "entity": "entity",
    "biconnector": "biconnector",
    "userconsent": "userconsent",
    "telephony": "telephony",
    "imopenlines": "imopenlines",
    "imconnector": "imopenlines",
    "sign": "sign.b2e",
    "messageservice": "messageservice",
    "mailservice": "mailservice",
    "documentgenerator": "documentgenerator",
    "lists": "lists",
    "ai": "ai_admin",
    "event": None,
    "batch": None,
    "server": None,
    "scope": None,
    "methods": None,
    "method": None,
    "app": None,
    "profile": None,
    "feature": None,
    "events": None,
}


def scope_of(method: str) -> str | None:
    """The scope a method needs (``crm.deal.list`` → ``crm``), or None when it is global or unknown."""
    return _SCOPE_BY_PREFIX.get(method.lower().split(".", 1)[0])
