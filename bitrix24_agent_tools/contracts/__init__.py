"""Method contracts: what each catalog method reads, as the official docs describe it (one data file a pack).

Every record cites the page it was read from (``doc``: a path in ``bitrix24/b24restdocs``, or the ``rest``
module source for ``batch``). A record lists the parameters the portal reads, spelled as the docs spell them,
with their type, whether they are required, the values the docs enumerate and, for object parameters whose
keys the method's own page lists (``fields`` of ``crm.deal.update``), those keys. What the docs cannot say is
written beside it by hand: which parameter names the record (``record``), which values name other records
(``ref``), uploads (``file``), Unix times (``time``) and values that change the risk (``switch``).

:func:`conform` is the one engine that reads them: the guard, the confirmations, the edits and the method help
all go through it, never through guesses from parameter names. A record marked ``verified: false`` is
UNVERIFIED: its parameters are not known, so nothing is refused for its keys, and its risk is never below
``write``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "Contract",
    "ContractError",
    "Param",
    "all_contracts",
    "conform",
    "contract_for",
    "is_reference",
]

# A batch command's value that the portal replaces with an earlier command's output
# (CRestUtil::ParseBatchQuery, modules/rest/classes/general/rest_util.php): $result, $result_error, …
_REFERENCE = re.compile(r"\$result(?:_\w+)?\[", re.IGNORECASE)
_FILTER_OPERATOR = re.compile(r"^(!?[<>]=?|!?=?%=?|!?@|!?=|!)?(.*)$")
_ONE_REFERENCE = re.compile(r"^\$result\[([^\[\]]+)\]((?:\[[^\[\]]*\])*)$")
# Types whose values name a record of another kind (api-reference/data-types.md, crm/data-types.md).
_TYPE_REFS = {
    "user": "user",
    "employee": "user",
    "crm_company": "company",
    "crm_contact": "contact",
    "crm_lead": "lead",
    "crm_deal": "deal",
    "crm_contact[]": "contact",
}
_ID_TYPES = ("integer", "user", "employee", "crm_company", "crm_contact", "crm_lead", "crm_deal")


class ContractError(ValueError):
    """A call the method's contract does not allow (an unknown parameter, a reference where none may
    stand)."""

    def __init__(self, message: str, *, code: str = "BAD_PARAMS") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Param:
    """One parameter (or one key of an object parameter) as the portal reads it."""

    name: str
    type: str = "UNVERIFIED"
    required: bool = False
    enum: tuple[str, ...] = ()
    fields: Mapping[str, Param] | None = None  # keys of an object parameter the method's page lists
    closed: bool = False  # True: a key ``fields`` does not list is not read (the portal drops it)
    ref: str | None = None  # the kind of record its value names
    file: bool = False
    time: str | None = None
    switch: str | None = None
    list: str | None = None  # how the portal applies a list value (a CRM multi-field appends)

    @property
    def refers_to(self) -> str | None:
        return self.ref or _TYPE_REFS.get(self.type.split("|", 1)[0])

    @property
    def is_id(self) -> bool:
        """Does its value name a record (where a batch may pass an earlier command's new ID)?"""
        named = (
            re.search(r"(?i)(?:^|_)ids?$", self.name) is not None
            or re.search(r"[a-z]Ids?$", self.name) is not None
        )
        kind = self.type.split("|", 1)[0]
        return self.refers_to is not None or (
            named and (kind in _ID_TYPES or kind.endswith(".id") or kind == "UNVERIFIED")
        )

    def key(self, name: str) -> Param | None:
        """The key of this object parameter that ``name`` spells (any case), or a pattern it matches."""
        return _lookup(self.fields or {}, name)


def _fold(name: str) -> str:
    # The portal's converters map camelCase to UPPER_SNAKE (crm.item.*: stageId = STAGE_ID), so a key is
    # matched without case and underscores, then sent as the contract spells it.
    return name.replace("_", "").lower()


def _lookup(specs: Mapping[str, Param], name: str) -> Param | None:
    """The parameter ``name`` spells (any case, with or without underscores), or the listed pattern
    (``UF_CRM_...``, ``ufCrm...``, ``UF_*``) it matches."""
    low = str(name).lower()
    for key, spec in specs.items():
        if key.lower() == low:
            return spec
    folded = _fold(str(name))
    found = [spec for key, spec in specs.items() if _fold(key) == folded]
    if len(found) == 1:
        return found[0]
    for key, spec in specs.items():
        stem = key.rstrip(".*\\")
        if (key != stem or key.endswith("_")) and len(stem) > 1 and low.startswith(stem.lower()):
            return Param(str(name), spec.type, ref=spec.ref)
    return None


@dataclass(frozen=True)
class Contract:
    """What one method reads, and from which docs page that was read."""

    method: str
    pack: str
    doc: str
    risk: str
    scope: str | None
    params: Mapping[str, Param] = field(default_factory=dict)
    record: tuple[str, str] | None = None  # (parameter, entity) naming the one record the call acts on
    verified: bool = True
    open: str | None = None  # the method also reads keys its table does not list (e.g. user.get's filter)
    result: tuple[str, ...] = ()  # keys of the result the page's "Returned Data" lists

    def param(self, name: str) -> Param | None:
        return _lookup(self.params, name)

    def names(self) -> str:
        return ", ".join(self.params) or "no parameters"


def _param(name: str, raw: Mapping[str, Any]) -> Param:
    sub = raw.get("fields")
    return Param(
        name,
        str(raw.get("type") or "UNVERIFIED"),
        bool(raw.get("required")),
        tuple(str(v) for v in raw.get("enum") or ()),
        {k: _param(k, v) for k, v in sub.items()} if isinstance(sub, Mapping) else None,
        # Keys listed on the method's own page are all it reads; a fields page of the entity (fields_doc)
        # lists what it returns, which is not always what it reads: advisory there.
        closed=isinstance(sub, Mapping) and not raw.get("fields_doc") and not raw.get("open"),
        ref=raw.get("ref"),
        file=bool(raw.get("file")),
        time=raw.get("time"),
        switch=raw.get("switch"),
        list=raw.get("list"),
    )


@cache
def all_contracts() -> dict[str, Contract]:
    """Every method's contract, keyed by the lower-case method name."""
    out: dict[str, Contract] = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        if "methods" not in data:
            continue
        for method, raw in data["methods"].items():
            record = raw.get("record")
            out[method.lower()] = Contract(
                method,
                data["pack"],
                str(raw.get("doc") or "UNVERIFIED"),
                str(raw["risk"]),
                raw.get("scope"),
                {k: _param(k, v) for k, v in (raw.get("params") or {}).items()},
                (record["param"], record["entity"]) if record else None,
                raw.get("verified", True) is not False,
                raw.get("open"),
                tuple(raw.get("result") or ()),
            )
    return out


def contract_for(method: str) -> Contract | None:
    """The contract of a catalog method (any case), or None for a method no pack lists."""
    return all_contracts().get(str(method).lower())


def is_reference(value: Any) -> bool:
    """Does a batch value carry a ``$result[...]`` reference (anywhere in it)?"""
    return isinstance(value, str) and bool(_REFERENCE.search(value))


def _has_reference(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(is_reference(str(k)) or _has_reference(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_reference(v) for v in value)
    return is_reference(value)


def _check_reference(contract: Contract, spec: Param, where: str, value: Any) -> None:
    """A ``$result`` reference may stand only as the whole value of a parameter that names another record:
    never in the record's own key, a value that changes the risk, a key, or inside a larger value."""
    if not _has_reference(value):
        return
    record = contract.record[0].lower() if contract.record else None
    if spec.switch or where.lower() == record:
        raise ContractError(
            f"{contract.method}: {where} decides {'the risk' if spec.switch else 'which record is changed'}; "
            "a $result reference may not stand there (the person could not see what it will be)"
        )
    if not (isinstance(value, str) and _ONE_REFERENCE.match(value) and spec.is_id):
        raise ContractError(
            f"{contract.method}: a $result reference may stand only as the whole value of a parameter that "
            f"names another record (an ID); not in {where}"
        )


def conform(method: str, params: Mapping[str, Any], *, in_batch: bool = False) -> dict[str, Any]:
    """``params`` as the method's contract reads them: every key spelled as the portal reads it.

    Raises :class:`ContractError` for a parameter the method does not read (naming those it does), a key of
    a listed object it would drop, and a ``$result`` reference (in a batch) anywhere but the whole value of a
    parameter naming another record. A method without a contract, or an UNVERIFIED one, is returned as given
    (its risk is judged elsewhere, never below write).
    """
    contract = contract_for(method)
    if contract is None or not contract.verified:
        return dict(params)
    out: dict[str, Any] = {}
    for raw_key, value in params.items():
        key = str(raw_key)
        if in_batch and is_reference(key):
            raise ContractError(f"{contract.method}: a $result reference may not stand in a key ({key[:40]})")
        spec = contract.param(key)
        if spec is None:
            if contract.open:
                if in_batch and _has_reference(value):
                    raise ContractError(f"{contract.method}: a $result reference may not stand in {key}")
                out[key] = value
                continue
            raise ContractError(
                f"{contract.method} does not read {key!r} (the portal would ignore it); it reads: "
                f"{contract.names()} (docs: {contract.doc})"
            )
        if spec.name in out:
            raise ContractError(f"{contract.method}: {spec.name} is given twice ({key!r})", code="AMBIGUOUS")
        if spec.closed and isinstance(value, Mapping):
            value = _conform_keys(contract, spec, value, in_batch)
        elif spec.fields is not None and isinstance(value, Mapping):
            _no_folded_twins(contract, spec.name, value)
        elif in_batch:
            _check_reference(contract, spec, spec.name, value)
        is_record = contract.record is not None and spec.name == contract.record[0]
        if (spec.is_id or is_record) and not (in_batch and is_reference(value)):
            _plain_id(contract, spec.name, value, record=is_record)
        out[spec.name] = value
    return out


def _no_folded_twins(contract: Contract, where: str, value: Mapping[str, Any]) -> None:
    """Two keys of one object that the portal's converters read as one (RESPONSIBLE_ID and responsibleId)."""
    seen: dict[str, str] = {}
    for key in value:
        folded = _fold(str(key))
        if folded in seen:
            raise ContractError(
                f"{contract.method}: {where} has {seen[folded]!r} and {key!r}, "
                "which the portal reads as one key",
                code="AMBIGUOUS",
            )
        seen[folded] = str(key)


_PLAIN_ID = re.compile(r"^[0-9]+$")


def _plain_id(contract: Contract, name: str, value: Any, *, record: bool) -> None:
    """A value that names a record must be a plain number: PHP's intval would read ``"5abc"`` as 5 and
    an array as 1, acting on a record the person was not shown. A list of IDs is checked item by item; a
    non-numeric code (a dialog ``chat12``, a CRM ``D_5`` binding) is left to the parameter's own rules."""
    kind = next((p.type for p in contract.params.values() if p.name == name), "")
    numeric = kind.split("|", 1)[0] in _ID_TYPES
    values = value if isinstance(value, (list, tuple)) and not record else [value]
    for item in values:
        if isinstance(item, (bool, Mapping, list, tuple)):
            raise ContractError(f"{contract.method}: {name} must be a record's ID, not {type(item).__name__}")
        if isinstance(item, int) or item is None:
            continue
        text = str(item)
        if numeric and not _PLAIN_ID.match(text.strip()) and text.strip() != "":
            raise ContractError(
                f"{contract.method}: {name} must be a plain number (the portal would read {text[:20]!r} as "
                "another ID)"
            )


def _conform_keys(
    contract: Contract, spec: Param, value: Mapping[str, Any], in_batch: bool
) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    for raw_sub, sub_value in value.items():
        sub_key = str(raw_sub)
        if in_batch and is_reference(sub_key):
            raise ContractError(
                f"{contract.method}: a $result reference may not stand in a key ({sub_key[:40]})"
            )
        sub = spec.key(sub_key)
        prefix = ""
        if sub is None and spec.name.lower() == "filter":
            # A list filter's key carries its comparison in front (crm list filters; sonet-group-get.md,
            # "Supported operators in the filter key"): the field is the rest.
            prefix, field = _FILTER_OPERATOR.match(sub_key).groups()  # type: ignore[union-attr]
            sub = spec.key(field) if prefix else None
        if sub is None:
            listed = ", ".join(k for k in (spec.fields or {}))
            raise ContractError(
                f"{contract.method} does not read {spec.name}.{sub_key} (the portal would drop it); "
                f"{spec.name} takes: {listed[:600]} (docs: {contract.doc})"
            )
        name = prefix + sub.name
        if name in inner:
            raise ContractError(f"{contract.method}: {spec.name}.{name} is given twice", code="AMBIGUOUS")
        if in_batch:
            _check_reference(contract, sub, f"{spec.name}.{name}", sub_value)
        inner[name] = sub_value
    return inner
