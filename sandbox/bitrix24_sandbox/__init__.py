"""A local Bitrix24 portal to test any client against: seeded data, the REST API's URL shapes, envelopes,
errors, limits, an OAuth server, events and faults, as the official docs describe them.

from bitrix24_sandbox import Portal
portal = Portal(seed=1)
portal.transport()                        # an httpx transport: in-process, no sockets
with portal.serve(https=True) as server:  # loopback HTTP/HTTPS, for any client in any language
    print(server.webhook_url)
"""

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.limits import CostModel, Faults
from bitrix24_sandbox.portal import Portal
from bitrix24_sandbox.server import ServerHandle
from bitrix24_sandbox.types import Caller, RequestRecord, SandboxApp

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Caller",
    "CostModel",
    "Faults",
    "Portal",
    "RequestRecord",
    "SandboxApp",
    "ServerHandle",
    "__version__",
]
