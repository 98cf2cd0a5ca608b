"""The REST methods the sandbox portal implements, one module per area; importing this registers them all.

``registry`` (the ``@method`` decorator, ``Listing``), ``crm`` (legacy CRM, pipelines, activities, timeline),
``crm_items`` (crm.item.*), ``users``, ``tasks``, ``im``, ``system``, and one module per pack beyond them:
``comms``, ``automation``, ``collab``, ``disk``, ``scrum``, ``commerce``, ``services``, ``platform``,
``sites``, ``compliance``.
"""

from __future__ import annotations

from bitrix24_sandbox import (  # noqa: F401 - importing registers the methods
    automation,
    collab,
    commerce,
    comms,
    compliance,
    crm,
    crm_items,
    disk,
    im,
    platform,
    scrum,
    services,
    sites,
    system,
    tasks,
    users,
)
from bitrix24_sandbox.crm import normalize_multifields
from bitrix24_sandbox.registry import METHODS, Listing, now_iso

__all__ = ["METHODS", "Listing", "normalize_multifields", "now_iso"]
