"""Offline token counting (tiktoken with the packaged encoding files) and the cost of a tool's LLM view."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bitrix24_agent_tools.packs.base import ToolSpec

PACKAGED = Path(__file__).parent / "_static" / "tiktoken"
_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_lock = threading.Lock()


class EncodingUnavailable(RuntimeError):
    """The encoding file is not packaged; we never download it."""


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    try:
        import tiktoken
    except ImportError as exc:  # the `tokens` extra
        raise EncodingUnavailable("token counting needs the 'tokens' extra: pip install bitrix24-agent-tools[tokens]") from exc
    if name not in _URLS:
        raise EncodingUnavailable(f"unknown encoding {name!r}; packaged: {', '.join(_URLS)}")
    cache_file = PACKAGED / hashlib.sha1(_URLS[name].encode()).hexdigest()
    if not cache_file.exists():
        raise EncodingUnavailable(f"encoding file for {name} missing at {cache_file}; refusing to download it")
    # tiktoken looks for its cache in TIKTOKEN_CACHE_DIR; point it at our files for the load only.
    with _lock:
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(PACKAGED)
        try:
            return tiktoken.get_encoding(name)
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    """Tokens of ``text`` under ``encoding`` (o200k_base or cl100k_base), offline."""
    return len(_encoding(encoding).encode(text, disallowed_special=()))


def tool_view(spec: ToolSpec) -> dict[str, Any]:
    """What a model is sent for one tool: name, description and the compact JSON input schema."""
    from bitrix24_agent_tools.packs.schema import compact_schema

    return {"name": spec.name, "description": spec.description, "parameters": compact_schema(spec.args)}


def tool_cost(spec: ToolSpec, encoding: str = "o200k_base") -> int:
    """Tokens of a tool's LLM view (JSON, compact separators)."""
    return count_tokens(json.dumps(tool_view(spec), ensure_ascii=False, separators=(",", ":")), encoding)


def tools_cost(specs: list[ToolSpec], encoding: str = "o200k_base") -> int:
    return sum(tool_cost(s, encoding) for s in specs)
