"""Test-wide settings: no network, offline tiktoken encodings."""

from __future__ import annotations

import os
from pathlib import Path

# tiktoken must never try to download encodings: point it at the files packaged with the library.
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parent.parent / "bitrix24_agent_tools" / "_static" / "tiktoken")
)
