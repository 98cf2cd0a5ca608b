"""The sandbox portal for the toolkit's tests, demo and notebooks: a thin layer over the ``bitrix24-sandbox``
distribution (``pip install "bitrix24-agent-tools[sandbox]"``), which imports nothing of the toolkit.

from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
client = Bitrix24(portal.webhook_url, transport=portal.transport())   # in-process, no sockets
with portal.serve(https=True) as server: ...                          # loopback, for other clients

What this layer adds: the toolkit masks the sandbox's secrets like real ones, and ``Portal.app_auth`` builds
the toolkit's :class:`~bitrix24_agent_tools.client.OAuth` for an installed app. The old module paths
(``bitrix24_agent_tools.sandbox.portal`` ...) still name the emulator's modules, for tests written before.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

try:
    import bitrix24_sandbox
except ModuleNotFoundError as error:  # the wheel check's bare install tries this message
    raise ModuleNotFoundError(
        'the sandbox portal is the bitrix24-sandbox package: pip install "bitrix24-agent-tools[sandbox]"',
        name="bitrix24_sandbox",
    ) from error

from bitrix24_sandbox import (
    ApiError,
    Caller,
    CostModel,
    Faults,
    RequestRecord,
    SandboxApp,
    ServerHandle,
    hooks,
)
from bitrix24_sandbox import Portal as _Portal

from bitrix24_agent_tools.client.auth import OAuth
from bitrix24_agent_tools.masking import register_secrets

# The toolkit masks the sandbox's secrets (webhook codes, client secrets, tokens) like real ones: the emulator
# shares them through a hook, importing nothing of the toolkit.
if register_secrets not in hooks.SECRET_HOOKS:
    hooks.SECRET_HOOKS.append(register_secrets)


class Portal(_Portal):
    """:class:`bitrix24_sandbox.Portal`, plus the toolkit's OAuth credential for an installed app."""

    def app_auth(self, app: SandboxApp, tokens: dict[str, Any], **options: Any) -> OAuth:
        """The OAuth credential an installed ``app`` builds from the ``tokens`` its install gave it, pointed
        at this portal's OAuth server; ``options`` go to :class:`OAuth` (a token store, a user id). The
        examples build it by hand, as a real application does."""
        found = self.app_credentials(app, tokens)
        return OAuth(
            found["domain"],
            found["access_token"],
            found["refresh_token"],
            found["client_id"],
            found["client_secret"],
            oauth_server=found["oauth_server"],
            client_endpoint=found["client_endpoint"],
            **options,
        )


# `from bitrix24_agent_tools.sandbox.portal import ...` keeps working: the old module paths name the
# emulator's modules (one object each, so a patch through either name patches both).
for _module in pkgutil.iter_modules(bitrix24_sandbox.__path__):
    if not _module.name.startswith("_"):  # never __main__ (it serves a portal)
        _real = importlib.import_module(f"bitrix24_sandbox.{_module.name}")
        sys.modules[f"{__name__}.{_module.name}"] = _real

__all__ = [
    "ApiError",
    "Caller",
    "CostModel",
    "Faults",
    "Portal",
    "RequestRecord",
    "SandboxApp",
    "ServerHandle",
    "bitrix24_sandbox",
]
