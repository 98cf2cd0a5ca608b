"""Batches as sans-I/O flows: PHP-style command strings, ``$result[...]`` references, any number of
commands."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from bitrix24_agent_tools.client._flow import (
    BATCH_LIMIT,
    BatchResult,
    Flow,
    Settings,
    call_flow,
    valid_method,
)
from bitrix24_agent_tools.client.errors import Bitrix24Error, ConfigError, error_from


@lru_cache(maxsize=8192)
def _quoted(text: str) -> str:
    # Keys and values repeat across a batch's commands (ID, ASC, field names): each is quoted once.
    return quote(text, safe="")


def php_query(params: Mapping[str, Any]) -> str:
    """Encode params the way PHP's parse_str reads them back (``fields[TITLE]=x``, ``select[0]=ID``)."""
    pairs: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if not value:
                pairs.append(f"{prefix}=")
            for k, v in value.items():
                walk(f"{prefix}[{_quoted(str(k))}]", v)
        elif isinstance(value, (list, tuple)):
            if not value:
                pairs.append(f"{prefix}=")
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif value is None:
            pairs.append(f"{prefix}=")
        elif isinstance(value, bool):
            pairs.append(f"{prefix}={'1' if value else '0'}")
        elif type(value) is int:  # digits and a minus sign: nothing to quote
            pairs.append(f"{prefix}={value}")
        else:
            text = str(value)
            pairs.append(f"{prefix}={_quoted(text) if len(text) <= 64 else quote(text, safe='')}")

    for key, value in params.items():
        walk(_quoted(str(key)), value)
    return "&".join(pairs)


class Query(str):
    """A command's params already encoded as :func:`php_query` writes them: a flow that sends many alike
    commands (an export's range pages) encodes the common part once."""


Params = Mapping[str, Any] | Query


def _has_ref(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("$result[")
    if isinstance(value, Mapping):
        return any(_has_ref(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_ref(v) for v in value)
    return False


_REF_RE = re.compile(r"^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$")


def _resolve_ref(value: Any, earlier: Mapping[str, Any], local_keys: set[str]) -> Any:
    """Substitute ``$result[key]...`` refs to commands sent in an *earlier* request (the portal only sees
    its own)."""
    if isinstance(value, Mapping):
        return {k: _resolve_ref(v, earlier, local_keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve_ref(v, earlier, local_keys) for v in value]
    if isinstance(value, str):
        match = _REF_RE.match(value)
        if match and match.group(1) not in local_keys and match.group(1) in earlier:
            current: Any = earlier[match.group(1)]
            for part in re.findall(r"\[([^\]]*)\]", match.group(2)):
                if isinstance(current, list) and part.isdigit() and int(part) < len(current):
                    current = current[int(part)]
                elif isinstance(current, Mapping) and part in current:
                    current = current[part]
                else:
                    return value
            return current
    return value


def _encoded(params: Params, earlier: Mapping[str, Any], local_keys: set[str]) -> str:
    """A command's query string; references to an earlier request's results substituted (the first request
    has none to look for)."""
    if isinstance(params, Query):
        return params
    return php_query(_resolve_ref(params, earlier, local_keys) if earlier and _has_ref(params) else params)


def normalize_commands(commands: Any) -> list[tuple[str, str, Params]]:
    if isinstance(commands, Mapping):
        items = list(commands.items())
    elif isinstance(commands, (list, tuple)):
        items = [(str(i), c) for i, c in enumerate(commands)]
    else:
        raise ConfigError(
            "batch commands must be a dict {key: (method, params)} or a list of (method, params)"
        )
    out: list[tuple[str, str, Params]] = []
    for key, command in items:
        params: Params
        if isinstance(command, str):
            method, params = command, {}
        elif isinstance(command, (list, tuple)) and len(command) in (1, 2):
            method = command[0]
            params = command[1] if len(command) == 2 and command[1] is not None else {}
        else:
            raise ConfigError(f"batch command {key!r} must be (method, params)")
        if not isinstance(method, str) or not valid_method(method):
            raise ConfigError(f"batch command {key!r} has an invalid method name {method!r}")
        if method.lower() == "batch":
            raise ConfigError(f"batch command {key!r} is itself a batch; Bitrix24 refuses nested batches")
        if isinstance(params, Query):
            if any(re.split(r"[=\[]", pair, maxsplit=1)[0].lower() == "auth" for pair in params.split("&")):
                raise ConfigError("batch params must not carry 'auth'")
        elif not isinstance(params, Mapping):
            raise ConfigError(f"params of batch command {key!r} must be a dict")
        elif any(str(k).lower() == "auth" for k in params):
            raise ConfigError("batch params must not carry 'auth'")
        out.append((str(key), method, params))
    return out


def _section(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of a batch reply under the command keys. PHP writes an array whose keys are 0..n-1 as a
    JSON list (an empty section is ``[]``), anything else as an object (protocol.md §5)."""
    value = body.get(name)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def batch_flow(settings: Settings, commands: Any, *, halt: bool = False) -> Flow:
    """Any number of commands, 50 per request, results and errors mapped back to the caller's keys."""
    items = normalize_commands(commands)
    if halt and len(items) > BATCH_LIMIT:
        raise ConfigError(
            f"halt=True needs all commands in one request, but {len(items)} > {BATCH_LIMIT}: "
            "split the work or drop halt"
        )
    results: dict[str, Any] = {}
    errors: dict[str, Bitrix24Error] = {}
    totals: dict[str, int] = {}
    nexts: dict[str, int] = {}
    for offset in range(0, len(items), BATCH_LIMIT):
        chunk = items[offset : offset + BATCH_LIMIT]
        local = {key for key, _, _ in chunk}
        cmd = {key: f"{method}?{_encoded(params, results, local)}" for key, method, params in chunk}
        response = yield from call_flow(settings, "batch", {"halt": 1 if halt else 0, "cmd": cmd})
        body = response.result if isinstance(response.result, Mapping) else {}
        got = _section(body, "result")
        results.update({k: v for k, v in got.items() if k in local})
        for key, err in _section(body, "result_error").items():
            if isinstance(err, Mapping):
                errors[str(key)] = error_from(
                    str(err.get("error") if err.get("error") is not None else "ERROR"),
                    str(err.get("error_description") or ""),
                    None,
                    next((m for k, m, _ in chunk if k == str(key)), None),
                )
        for key, val in _section(body, "result_total").items():
            if str(val).isdigit():
                totals[str(key)] = int(val)
        for key, val in _section(body, "result_next").items():
            if str(val).isdigit():
                nexts[str(key)] = int(val)
        if halt and errors:
            break
    return BatchResult(results=results, errors=errors, totals=totals, nexts=nexts)
