"""`python -m bitrix24_agent_tools.sandbox`: serve a sandbox portal on loopback (``bitrix24-sandbox``)."""

from bitrix24_sandbox.cli import main

raise SystemExit(main())
