"""The testing kit's fixtures, taken the way a user's conftest takes them."""

from bitrix24_agent_tools.testing import b24_client, b24_portal, b24_toolbox  # noqa: F401
