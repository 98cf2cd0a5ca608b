"""`python -m bitrix24_sandbox`: serve a sandbox portal on loopback."""

from bitrix24_sandbox.cli import main

raise SystemExit(main())
