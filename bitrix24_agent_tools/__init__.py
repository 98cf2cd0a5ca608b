"""Safe, token-lean Bitrix24 tools for LangChain, LlamaIndex and MCP agents.

from bitrix24_agent_tools import Bitrix24, Toolbox, Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bitrix24_agent_tools.client import (
        AsyncBitrix24,
        Bitrix24,
        Bitrix24Error,
        OAuth,
        RatePlan,
        Webhook,
    )
    from bitrix24_agent_tools.confirmers import (
        AutoConfirmer,
        DeferredConfirmer,
        NotebookConfirmer,
        TerminalConfirmer,
    )
    from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
    from bitrix24_agent_tools.packs import PACKS, ToolSpec, specs_for
    from bitrix24_agent_tools.router import RouteDecision, route
    from bitrix24_agent_tools.toolbox import Toolbox

# The names below load on first use (PEP 562): `import bitrix24_agent_tools.client` in a script that only
# exports loads the client, not the guard, the packs and the router.
_LAZY = {
    "AsyncBitrix24": "client",
    "Bitrix24": "client",
    "Bitrix24Error": "client",
    "OAuth": "client",
    "RatePlan": "client",
    "Webhook": "client",
    "AutoConfirmer": "confirmers",
    "DeferredConfirmer": "confirmers",
    "NotebookConfirmer": "confirmers",
    "TerminalConfirmer": "confirmers",
    "ConfirmationRequest": "guard",
    "Decision": "guard",
    "Guard": "guard",
    "Policy": "guard",
    "PACKS": "packs",
    "ToolSpec": "packs",
    "specs_for": "packs",
    "RouteDecision": "router",
    "route": "router",
    "Toolbox": "toolbox",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bitrix24_agent_tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bitrix24_agent_tools.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "PACKS",
    "AsyncBitrix24",
    "AutoConfirmer",
    "Bitrix24",
    "Bitrix24Error",
    "ConfirmationRequest",
    "Decision",
    "DeferredConfirmer",
    "Guard",
    "NotebookConfirmer",
    "OAuth",
    "Policy",
    "RatePlan",
    "RouteDecision",
    "TerminalConfirmer",
    "ToolSpec",
    "Toolbox",
    "Webhook",
    "__version__",
    "route",
    "specs_for",
]
