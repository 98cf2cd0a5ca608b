"""The one canonical form of a call: as the portal will read it, checked against the method's contract.

It is computed once per call and is what the guard judges, the person is shown, the audit records and the
client sends. A batch whose commands had to be respelled is re-encoded from the canonical commands, so the
query the portal parses is the one that was shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bitrix24_agent_tools.client._batch import php_query
from bitrix24_agent_tools.contracts import ContractError, conform, contract_for
from bitrix24_agent_tools.packs.base import CallRefused
from bitrix24_agent_tools.risk import AmbiguousCall, CanonicalCall, Command, canonical_call


def judged(method: Any, params: Any) -> CanonicalCall:
    """The canonical call; raises :class:`CallRefused` for what the portal could read two ways, a parameter
    the method does not read, or a ``$result`` reference where the contract does not allow one."""
    if isinstance(params, Mapping) and any(str(k).lower() == "auth" for k in params):
        raise CallRefused(
            "params must not carry 'auth'; credentials are added by the client", code="BAD_PARAMS"
        )
    try:
        call = canonical_call(method, params)
        if call.method != "batch":
            return replace(call, params=conform(call.method, call.params))
        commands = tuple(
            Command(c.key, c.method, conform(c.method, c.params, in_batch=True)) for c in call.commands
        )
    except AmbiguousCall as exc:
        raise CallRefused(f"refused, ambiguous request: {exc}", code="AMBIGUOUS") from None
    except ContractError as exc:
        raise CallRefused(str(exc), code=exc.code) from None
    except RecursionError:
        raise CallRefused("params are nested too deeply", code="BAD_PARAMS") from None
    if commands == call.commands:
        return call
    upper = {str(k).upper(): k for k in call.params}
    cmd_key = upper["CMD"]
    as_list = isinstance(call.params[cmd_key], (list, tuple))
    encoded = [f"{c.method}?{php_query(c.params)}" for c in commands]
    cmd: Any = encoded if as_list else {c.key: text for c, text in zip(commands, encoded, strict=True)}
    return replace(call, params={**call.params, cmd_key: cmd}, commands=commands)


def lenient(method: str, params: Mapping[str, Any]) -> CanonicalCall:
    """The canonical call, or — for showing and keying a call the guard will refuse anyway — its plain
    form."""
    try:
        return judged(method, params)
    except CallRefused:
        try:
            return canonical_call(method, params)
        except (AmbiguousCall, RecursionError):
            return CanonicalCall(str(method).strip().lower(), dict(params))


def unverified(method: str) -> bool:
    """A catalog method whose contract could not be read from the docs (its risk is never below write)."""
    contract = contract_for(method)
    return contract is not None and not contract.verified
