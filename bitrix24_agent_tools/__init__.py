"""Safe, token-lean Bitrix24 tools for LangChain, LlamaIndex and MCP agents.

from bitrix24_agent_tools import Bitrix24, Toolbox, Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
"""

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
