"""The guard: every tool call is checked against its method's contract, judged by policy, shown to a person
and audited.

Modules, one job each: ``policy`` (which risks may run), ``canonical`` (the call as the portal reads it,
checked against the contract), ``render`` (what a person reads), ``edits`` (a person's edit, through the
contract), ``answers`` (requests and decisions, bound to each other), ``flow`` (the order they run in).
"""

from bitrix24_agent_tools.guard.answers import (
    ConfirmationRequest,
    Confirmer,
    Decision,
    bound_decision,
    named_request,
)
from bitrix24_agent_tools.guard.flow import AskPerson, Guard, GuardFlow, PortalCall, canonical_key, summarize
from bitrix24_agent_tools.guard.policy import Policy

__all__ = [
    "AskPerson",
    "ConfirmationRequest",
    "Confirmer",
    "Decision",
    "Guard",
    "GuardFlow",
    "Policy",
    "PortalCall",
    "bound_decision",
    "canonical_key",
    "named_request",
    "summarize",
]
