"""What a person reads before a write: every parameter the portal will read, rendered from the contract.

Records and users are named beside their IDs, Unix times are shown as ISO date-times, uploads as name, size,
type and text (or a hash), multi-field changes as what is added, replaced, removed and kept, control
characters and escape sequences as visible escapes. Only registered secrets are masked; a secret-shaped word
the model wrote is shown as written and flagged.

Rendering is pure: :func:`lookups` says which records need a name, the guard reads them (as reads), and
:func:`render` draws the request from the call, the record's current values and those names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from bitrix24_agent_tools.contracts import Param, contract_for
from bitrix24_agent_tools.masking import MASK, mask_registered, mask_text
from bitrix24_agent_tools.risk import CanonicalCall

FOLD = 4000  # characters of one value shown before it is folded with an explicit "(+N chars)" marker
_VERBS = {"add": "Create", "update": "Update", "delete": "Delete", "complete": "Complete", "start": "Start"}
# C0/C1 controls, DEL, bidirectional overrides and zero-width characters: a terminal obeys them, so a value
# could erase or reorder the lines around it. Each is shown as its escape.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_REF = re.compile(r"^\$result\[([^\[\]]+)\]((?:\[[^\[\]]*\])*)$")
Names = Mapping[tuple[str, str], str | None]  # (entity, id) → its name; None: looked up, not found


@cache
def entities() -> dict[str, dict[str, Any]]:
    data = json.loads(resources.files("bitrix24_agent_tools.contracts").joinpath("entities.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def visible(text: str) -> str:
    """Control characters and escape sequences as visible escapes (``\\x1b``, ``\\u202e``); newlines as
    ``\\n``."""
    text = text.replace("\\", "\\\\") if _INVISIBLE.search(text) else text
    text = _INVISIBLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )
    return text.replace("\n", "\\n")


@dataclass(frozen=True)
class Rendering:
    summary: str
    flags: tuple[str, ...]
    fields: tuple[str, ...]  # the keys an edit may change, as shown (``fields.TITLE``, ``taskId``)


class _Out:
    def __init__(self, names: Names, commands: Mapping[str, str]) -> None:
        self.lines: list[str] = []
        self.flags: list[str] = []
        self.fields: list[str] = []
        self.names = names
        self.commands = commands

    def value(self, path: str, value: Any, limit: int = FOLD) -> str:
        """A value as a person reads it: registered secrets masked, what the model wrote shown (and flagged
        when it has a secret's shape), invisible characters escaped, folded with a marker — never cut
        silently."""
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        shown = mask_registered(text)
        if MASK in shown and MASK not in text:
            self.flag(f"{path} holds a secret of this installation (masked here; the portal receives it)")
        if mask_text(shown) != shown:
            self.flag(f"{path} looks like a credential (shown as written; the portal receives it)")
        if _INVISIBLE.search(shown):
            self.flag(f"{path} contains control characters (shown as escapes)")
        shown = visible(shown)
        if len(shown) <= limit:
            return shown
        if limit == FOLD:  # a value the portal reads in full, shown in part: said, so the rest is looked at
            self.flag(
                f"{path} is {len(shown):,} characters; the first {limit:,} are shown here, all are sent"
            )
        return f"{shown[:limit]}… (+{len(shown) - limit} chars)"

    def flag(self, text: str) -> None:
        if text not in self.flags:
            self.flags.append(text)

    def name(self, entity: str, ident: Any) -> str:
        if _REF.match(str(ident)):
            return ""
        key = (entity, str(ident))
        if key not in self.names:
            return f" ({entity} #{ident})"
        found = self.names[key]
        if found is None:
            self.flag(f"{entity} #{ident} was not found on the portal")
            return f" ({entity} #{ident}: not found)"
        return f" ({entity} '{self.value(entity, found, 80)}')"


def _ci(mapping: Mapping[str, Any] | None, key: str) -> Any:
    if not mapping:
        return None
    folded = key.replace("_", "").lower()
    for k, v in mapping.items():
        if str(k).replace("_", "").lower() == folded:
            return v
    return None


def _entity_of(spec: Param | None) -> str | None:
    return spec.refers_to if spec is not None else None


def lookups(call: CanonicalCall) -> list[tuple[str, str, dict[str, Any]]]:
    """The records a confirmation names: (entity, id, the read's extra params), at most 12."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    known = entities()

    def want(entity: str | None, value: Any, extra: dict[str, Any] | None = None) -> None:
        if entity == "dialog" and re.fullmatch(r"\d+", str(value)):
            entity = "user"
        if entity not in known or len(out) >= 12:
            return
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, (int, str)) and re.fullmatch(r"\d+", str(v)) and str(v) != "0":
                item = (entity, str(v), extra or {})
                if item not in out:
                    out.append(item)

    for method, params in _calls(call):
        contract = contract_for(method)
        if contract is None:
            continue
        if contract.record:
            entity = contract.record[1]
            extra = {k: params[k] for k in entities().get(entity, {}).get("with", []) if k in params}
            want(entity, params.get(contract.record[0]), extra)
        for key, value in params.items():
            spec = contract.param(key)
            if spec is None or (contract.record and key == contract.record[0]):
                continue
            if isinstance(value, Mapping) and spec.fields:
                for sub, sub_value in value.items():
                    want(_entity_of(spec.key(str(sub))), sub_value)
            elif spec.ref == "access" and isinstance(value, list):  # U5 in DEST: user 5; DR2: department 2
                want("user", [str(v)[1:] for v in value if re.fullmatch(r"U\d+", str(v))])
                want(
                    "department",
                    [re.sub(r"^DR?", "", str(v)) for v in value if re.fullmatch(r"DR?\d+", str(v))],
                )
            else:
                want(_entity_of(spec), value)
    return out


def _calls(call: CanonicalCall) -> list[tuple[str, dict[str, Any]]]:
    if call.method == "batch":
        return [(c.method, c.params) for c in call.commands]
    return [(call.method, call.params)]


def record_name(entity: str, record: Any) -> str | None:
    """A record's name from a read's answer, by the entity's name fields."""
    spec = entities().get(entity, {})
    if isinstance(record, list):
        record = record[0] if record else None
    if isinstance(record, Mapping) and spec.get("unwrap") and isinstance(record.get(spec["unwrap"]), Mapping):
        record = record[spec["unwrap"]]
    if not isinstance(record, Mapping):
        return None
    parts = [str(_ci(record, k)) for k in spec.get("name", ()) if _ci(record, k) not in (None, "")]
    return " ".join(parts) or f"#{_ci(record, 'ID') or _ci(record, 'id')}"


def render(
    call: CanonicalCall, current: Mapping[str, Any] | None = None, names: Names | None = None
) -> Rendering:
    """Everything a write will do, one line per parameter the portal reads and per batch command."""
    names = names or {}
    commands = {c.key: c.method for c in call.commands}
    out = _Out(names, commands)
    if call.method != "batch":
        _describe(out, call.method, call.params, current, "")
    else:
        halts = ", stops at the first error" if call.halt else ""
        out.lines.append(f"Batch of {len(call.commands)} command(s){halts}:")
        for command in call.commands:
            _describe(out, command.method, command.params, None, f"[{command.key}] ")
    if out.flags:
        out.lines.append("Check: " + "; ".join(out.flags))
    return Rendering("\n".join(out.lines), tuple(out.flags), tuple(out.fields))


def _describe(
    out: _Out, method: str, params: Mapping[str, Any], current: Mapping[str, Any] | None, tag: str
) -> None:
    contract = contract_for(method)
    parts = method.split(".")
    verb = _VERBS.get(parts[-1].lower(), parts[-1])
    noun = parts[-2] if len(parts) >= 2 else method
    record = contract.record if contract else None
    entity_type = _ci(params, "entityTypeId")
    if noun == "item" and entity_type:
        noun = f"item (type {entity_type})"
    head = f"{tag}{verb} {noun}"
    title = ""
    if record and record[0] in params:
        ident = params[record[0]]
        same = record[1] in (noun, "item")
        head += (
            f" #{out.value(record[0], ident, 40)}"
            if same
            else f" → {record[1]} {out.value(record[0], ident, 40)}"
        )
        name = record_name(record[1], current) if current is not None else None
        if name and same:
            title = f" '{out.value('title', name, 80)}'"
        elif not same:
            head += out.name("user" if record[1] == "dialog" and str(ident).isdigit() else record[1], ident)
    if contract is not None and not contract.verified:
        out.flag(f"{method}: no docs page says what it reads (UNVERIFIED); every parameter is shown as given")
    out.lines.append(f"{head} ({method}){title}")
    pad = "  " * (2 if tag else 1)
    for key, value in params.items():
        spec = contract.param(key) if contract else None
        if record and key == record[0]:  # shown in the head line
            out.fields.append(key)
            continue
        if isinstance(value, Mapping) and (spec is None or spec.fields is not None or not spec.file):
            prefix = "" if key.lower() == "fields" else f"{key}."
            for sub, sub_value in value.items():
                sub_spec = spec.key(str(sub)) if spec is not None else None
                _line(out, f"{prefix}{sub}", sub_spec, sub_value, current, pad, f"{key}.{sub}")
            if not value:
                _line(out, key, spec, value, None, pad)
        else:
            _line(out, key, spec, value, current if spec and spec.refers_to else None, pad)


def _odd_key(out: _Out, path: str) -> None:
    """A key with letters outside ASCII (a Cyrillic І in TІTLE) reads like a real one but is not."""
    if not path.isascii():
        out.flag(f"the key {visible(path)!r} has non-ASCII letters: it is not the field it looks like")


def _line(
    out: _Out,
    path: str,
    spec: Param | None,
    value: Any,
    current: Mapping[str, Any] | None,
    pad: str,
    where: str | None = None,
) -> None:
    """One parameter's line; ``path`` as shown, ``where`` as an edit names it (``fields.TITLE``)."""
    _odd_key(out, path)
    if (
        isinstance(value, Mapping)
        and value
        and spec is not None
        and spec.fields
        and not spec.time
        and not spec.file
    ):
        for sub, sub_value in value.items():  # an object inside an object: each key on its own line
            _line(out, f"{path}.{sub}", spec.key(str(sub)), sub_value, None, pad, f"{where or path}.{sub}")
        return
    out.fields.append(where or path)
    name = path.rsplit(".", 1)[-1]
    if isinstance(value, str) and _REF.match(value):
        out.lines.append(f"{pad}{path} ← {_reference(out, value)}")
        out.flag(f"{path} takes its value from an earlier command of the batch")
        return
    if spec is not None and spec.ref == "access" and isinstance(value, list):
        out.lines.append(f"{pad}{path} = {_access(out, value)}")
        return
    if spec is not None and spec.list and isinstance(value, (list, str)):
        _multifield(out, path, value, _ci(current, name) if current is not None else None, pad)
        return
    if (spec is not None and spec.file) or _looks_like_upload(value):
        out.lines.append(f"{pad}{path} = {_upload(out, path, value)}")
        return
    if spec is not None and spec.time:
        shown = _time(value)
        if shown:
            out.lines.append(f"{pad}{path} = {shown}")
            return
    text = out.value(path, value)
    entity = spec.refers_to if spec is not None else None
    named = (
        "".join(out.name(entity, v) for v in (value if isinstance(value, list) else [value]))
        if entity
        else ""
    )
    if current is not None and (old := _ci(current, name)) is not None:
        old_named = out.name(entity, old) if entity and not isinstance(old, (list, dict)) else ""
        out.lines.append(f"{pad}{path}: {out.value(path, old, 200)}{old_named} → {text}{named}")
    else:
        out.lines.append(f"{pad}{path} = {text}{named}")


_ACCESS = re.compile(r"^(UA|U|SG|DR|D)(\d*)$")


def _access(out: _Out, codes: list[Any]) -> str:
    """Access codes as who they reach (log-blogpost-add.md, DEST): UA every authorised user, U<id> a user,
    SG<id> a workgroup, DR<id> a department with its sub-departments; an unknown code is flagged."""
    parts = []
    for code in codes:
        match = _ACCESS.match(str(code))
        if match is None:
            out.flag(f"{visible(str(code))!r} is not an access code the portal documents")
            parts.append(out.value("access", code, 40))
        elif match.group(1) == "UA":
            parts.append("EVERYONE (all authorised users)")
        elif match.group(1) == "U":
            parts.append(f"user #{match.group(2)}{out.name('user', match.group(2))}")
        elif match.group(1) == "SG":
            parts.append(f"workgroup #{match.group(2)}")
        else:
            parts.append(
                f"department #{match.group(2)}{out.name('department', match.group(2))}"
                + (" with sub-departments" if match.group(1) == "DR" else "")
            )
    return "; ".join(parts)


def _reference(out: _Out, value: str) -> str:
    match = _REF.match(value)
    assert match is not None
    key, rest = match.group(1), re.findall(r"\[([^\[\]]*)\]", match.group(2))
    method = out.commands.get(key, "?")
    what = f"field {'.'.join(rest)} of what" if rest else "what"
    return f"{what} command [{key}] ({method}) returns"


def _multifield(out: _Out, path: str, value: Any, current: Any, pad: str) -> None:
    """A CRM multi-field as the portal applies it: an entry without ID is appended; with an ID it replaces
    that entry, or removes it with DELETE=Y or an empty VALUE
    (api-reference/crm/contacts/crm-contact-update.md, "Working with Multiple Fields")."""
    entries = [{"VALUE": value}] if isinstance(value, str) else value
    existing = {str(_ci(e, "ID")): e for e in current or [] if isinstance(e, Mapping)}
    touched: set[str] = set()
    out.lines.append(f"{pad}{path} (multi-field: entries without ID are added; the others stay):")
    for entry in entries:
        if not isinstance(entry, Mapping):
            entry = {"VALUE": entry}
        ident = _ci(entry, "ID")
        shown = out.value(path, _ci(entry, "VALUE") or "", 200)
        kind = _ci(entry, "VALUE_TYPE")
        kind_text = f" ({out.value(path, kind, 20)})" if kind else ""
        if ident in (None, ""):
            duplicate = any(str(_ci(e, "VALUE")) == str(_ci(entry, "VALUE")) for e in existing.values())
            out.lines.append(
                f"{pad}  + adds '{shown}'{kind_text}"
                + (" — the same value is already there" if duplicate else "")
            )
            if duplicate:
                out.flag(f"{path}: '{shown}' is already on the record; adding it again duplicates it")
            continue
        touched.add(str(ident))
        old = existing.get(str(ident))
        old_text = f" '{out.value(path, _ci(old, 'VALUE'), 200)}'" if old else " (not on the record)"
        if str(_ci(entry, "DELETE") or "").upper() == "Y" or not _ci(entry, "VALUE"):
            out.lines.append(f"{pad}  - removes #{out.value(path, ident, 20)}{old_text}")
        else:
            out.lines.append(
                f"{pad}  ~ replaces #{out.value(path, ident, 20)}{old_text} with '{shown}'{kind_text}"
            )
    for ident, entry in existing.items():
        if ident not in touched:
            out.lines.append(f"{pad}  = keeps '{out.value(path, _ci(entry, 'VALUE'), 200)}' (#{ident})")


def _looks_like_upload(value: Any) -> bool:
    pair = value.get("fileData") if isinstance(value, Mapping) else value
    return (
        isinstance(pair, (list, tuple))
        and len(pair) == 2
        and isinstance(pair[0], str)
        and "." in pair[0]
        and isinstance(pair[1], str)
        and len(pair[1]) >= 16
        and re.fullmatch(r"[A-Za-z0-9+/=\s]+", pair[1]) is not None
    )


def _upload(out: _Out, path: str, value: Any) -> str:
    """An upload as name, size, type and its text (or a hash for binary content)."""
    pair = value.get("fileData") if isinstance(value, Mapping) else value
    if isinstance(pair, Mapping):
        pair = [pair.get("name") or pair.get("0"), pair.get("content") or pair.get("1")]
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[1], str)):
        return out.value(path, value)
    name = str(pair[0])
    try:
        data = base64.b64decode(pair[1], validate=False)
    except (binascii.Error, ValueError):
        out.flag(f"{path} is not valid base64: the portal may store something else")
        return f"file '{out.value(path, name, 120)}' (content is not valid base64)"
    kind = mimetypes.guess_type(name)[0] or "unknown type"
    size = f"{len(data):,} bytes"
    try:
        text = data.decode("utf-8")
        printable = not any(ch in text for ch in "\x00\x01\x02\x03\x04\x05")
    except UnicodeDecodeError:
        printable = False
    body = (
        f"text '{out.value(path, text, 300)}'"
        if printable
        else f"sha256 {hashlib.sha256(data).hexdigest()[:16]}"
    )
    return f"file '{out.value(path, name, 120)}', {size}, {kind}, {body}"


def _time(value: Any) -> str | None:
    """A Unix time (or ``{"timestamp", "timezone"}``) as an ISO date-time, local to the zone it names."""
    zone: Any = None
    if isinstance(value, Mapping):
        zone_name = _ci(value, "timezone")
        value = _ci(value, "timestamp")
        try:
            zone = ZoneInfo(str(zone_name)) if zone_name else None
        except (ValueError, KeyError, OSError):
            zone = None
    try:
        seconds = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    local = moment.astimezone(zone) if zone else moment.astimezone()
    return f"{local.isoformat()} (Unix {seconds})"
