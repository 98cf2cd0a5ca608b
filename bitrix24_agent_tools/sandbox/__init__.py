"""A local Bitrix24 portal for tests, demos and notebooks: seeded data, real URL shapes, errors, limits,
faults.

from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
client = Bitrix24(portal.webhook_url, transport=portal.transport())   # in-process, no sockets
with portal.serve(https=True) as server: ...                          # loopback, for other clients
"""

from bitrix24_agent_tools.masking import register_secrets
from bitrix24_agent_tools.sandbox import hooks
from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.portal import CostModel, Faults, Portal
from bitrix24_agent_tools.sandbox.server import ServerHandle
from bitrix24_agent_tools.sandbox.types import Caller, RequestRecord, SandboxApp

# The toolkit masks the sandbox's secrets (webhook codes, client secrets, tokens) like real ones: the emulator
# shares them through a hook, importing nothing of the toolkit.
if register_secrets not in hooks.SECRET_HOOKS:
    hooks.SECRET_HOOKS.append(register_secrets)

__all__ = [
    "ApiError",
    "Caller",
    "CostModel",
    "Faults",
    "Portal",
    "RequestRecord",
    "SandboxApp",
    "ServerHandle",
]
