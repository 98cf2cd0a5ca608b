"""Interop: langchain-mcp-adapters (in its own venv, mcp 1.x) loads our MCP server's tools over stdio and
calls one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS_PY = ROOT / ".venv-mcp-adapters" / "bin" / "python"


def test_langchain_mcp_adapters_load_and_call_our_tools() -> None:
    if not ADAPTERS_PY.exists():
        message = "no .venv-mcp-adapters: `make test` builds it from tools/mcp_adapters_env.txt"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    server = [sys.executable, "-m", "bitrix24_agent_tools.cli", "mcp", "--sandbox", "--packs", "core,comms"]
    done = subprocess.run(
        [str(ADAPTERS_PY), str(ROOT / "tests" / "integrations" / "mcp_adapters_client.py"), *server],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"b24_crm_list", "b24_chat_send", "b24_core_call"} <= set(report["tools"])
    assert '"ID":"2"' in report["result"]
