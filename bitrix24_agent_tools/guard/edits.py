"""A person's edit, applied through the contract to the keys they were shown.

An edit names keys as they were shown (``TITLE`` or ``fields.TITLE``, any case, nested or at the top level) or
holds the whole edited call. Each key lands where the portal reads it; a key that matches nothing shown and
nothing the method reads is refused, and so is a masked value that was not the original. The guard then checks
the edited call again and shows it again for a final yes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bitrix24_agent_tools.contracts import contract_for
from bitrix24_agent_tools.guard.answers import ConfirmationRequest
from bitrix24_agent_tools.masking import MASK, mask_registered_params
from bitrix24_agent_tools.packs.base import CallRefused


def _fold(name: str) -> str:
    return str(name).replace("_", "").lower()


def _targets(method: str, params: Mapping[str, Any], shown: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every place an edit may land: the paths shown, and the keys the contract reads — by folded name."""
    out: dict[str, tuple[str, ...]] = {}
    for path in shown:
        path = ".".join(path.split(".")[:2])  # a deeper key is edited with its object (fields.datePeriod)
        out.setdefault(_fold(path), tuple(path.split(".", 1)))
    contract = contract_for(method)
    if contract is not None:
        for name, spec in contract.params.items():
            out.setdefault(_fold(name), (name,))
            for sub in spec.fields or {}:
                if not sub.endswith((".", "*", "\\", "_")):
                    out.setdefault(_fold(f"{name}.{sub}"), (name, sub))
    return out


def _flatten(edit: Mapping[str, Any], objects: set[str]) -> list[tuple[str, Any]]:
    """(path, value) pairs: an object parameter's keys one by one, anything else whole."""
    pairs: list[tuple[str, Any]] = []
    for key, value in edit.items():
        if _fold(key) in objects and isinstance(value, Mapping):
            pairs.extend((f"{key}.{sub}", sub_value) for sub, sub_value in value.items())
        else:
            pairs.append((str(key), value))
    return pairs


def _restore(edited: Any, original: Any, path: str) -> Any:
    """Where the person left a masked value as shown, the original is meant, never the mask."""
    if original is not None and edited == mask_registered_params(original):
        return original
    if MASK in str(edited):
        raise CallRefused(
            f"the edit of {path} contains a masked value (***) that is not the original; "
            "type the new value in full",
            code="BAD_EDIT",
        )
    return edited


def apply_edit(
    method: str, params: Mapping[str, Any], edit: Mapping[str, Any], request: ConfirmationRequest
) -> dict[str, Any]:
    """``params`` with the person's edit applied where the portal reads each key."""
    if str(method).lower() == "batch":
        # A batch is edited whole (its commands as shown): the guard checks every command again.
        if not any(str(k).lower() == "cmd" for k in edit):
            raise CallRefused("edit a batch whole: give its cmd (and halt) as shown", code="BAD_EDIT")
        unknown = [k for k in edit if str(k).lower() not in ("cmd", "halt")]
        if unknown:
            raise CallRefused(
                f"a batch reads only cmd and halt; the edit names {unknown[0]!r}", code="BAD_EDIT"
            )
        return {str(k): _restore(v, params.get(str(k)), str(k)) for k, v in edit.items()}
    targets = _targets(method, params, request.fields)
    objects = {_fold(k) for k, v in params.items() if isinstance(v, Mapping)}
    contract = contract_for(method)
    if contract is not None:
        objects |= {_fold(n) for n, s in contract.params.items() if s.fields is not None}
    by_leaf: dict[str, list[tuple[str, ...]]] = {}
    for path in targets.values():
        by_leaf.setdefault(_fold(path[-1]), []).append(path)
    out = copy.deepcopy(dict(params))
    for raw_path, value in _flatten(edit, objects):
        target = targets.get(_fold(raw_path))
        if target is None and "." not in raw_path:
            leaf = [p for p in by_leaf.get(_fold(raw_path), []) if len(p) == 2]
            target = leaf[0] if len(leaf) == 1 else None
        if target is None:
            shown = ", ".join(request.fields) or "none"
            raise CallRefused(
                f"the edit names {raw_path!r}, which is neither shown nor read by {method}; "
                f"keys shown: {shown}",
                code="BAD_EDIT",
            )
        if len(target) == 1:
            real = next((k for k in out if _fold(k) == _fold(target[0])), target[0])
            out[real] = _restore(value, params.get(real), raw_path)
        else:
            top = next((k for k in out if _fold(k) == _fold(target[0])), target[0])
            inner = out.get(top)
            inner = dict(inner) if isinstance(inner, Mapping) else {}
            real = next((k for k in inner if _fold(k) == _fold(target[1])), target[1])
            original = params.get(top, {}).get(real) if isinstance(params.get(top), Mapping) else None
            inner[real] = _restore(value, original, raw_path)
            out[top] = inner
    return out
