"""The REST methods the sandbox portal implements, one module per area; importing this registers them all.

``registry`` (the ``@method`` decorator, ``Listing``), ``crm`` (legacy CRM, pipelines, activities, timeline),
``crm_items`` (crm.item.*), ``users``, ``tasks``, ``im``, ``system`` and ``other_packs``.
"""

from __future__ import annotations

from bitrix24_agent_tools.sandbox import crm, crm_items, im, other_packs, system, tasks, users  # noqa: F401 - registers
from bitrix24_agent_tools.sandbox.crm import normalize_multifields
from bitrix24_agent_tools.sandbox.registry import METHODS, Listing, now_iso

__all__ = ["METHODS", "Listing", "normalize_multifields", "now_iso"]
