"""One approval service behind every face: requests stored durably, answered once by an allowed person in
Bitrix24 chat (:mod:`.chat`), on a web page signed in through Bitrix24 OAuth (:mod:`.web`), in an MCP client,
at a terminal or by a plain callback."""

from bitrix24_agent_tools.approvals.service import (
    ApprovalConfirmer,
    ApprovalError,
    ApprovalService,
    Channel,
    decision_of,
    open_store,
    waiting_text,
)
from bitrix24_agent_tools.stores import Approval, ApprovalStore

__all__ = [
    "Approval",
    "ApprovalConfirmer",
    "ApprovalError",
    "ApprovalService",
    "ApprovalStore",
    "Channel",
    "decision_of",
    "open_store",
    "waiting_text",
]
