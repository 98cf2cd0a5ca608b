"""Each pack's allowlist with the risk of every method (catalog.md); the data and the risk model live in
``risk``."""

from __future__ import annotations

from bitrix24_agent_tools.risk import CATALOG, catalog_risk, classify, name_risk, pack_of

__all__ = ["CATALOG", "catalog_risk", "classify", "name_risk", "pack_of"]
