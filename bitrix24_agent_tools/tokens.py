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
        raise EncodingUnavailable(
            "token counting needs the 'tokens' extra: pip install bitrix24-agent-tools[tokens]"
        ) from exc
    if name not in _URLS:
        raise EncodingUnavailable(f"unknown encoding {name!r}; packaged: {', '.join(_URLS)}")
    # The encoding files ship with a clone (bitrix24_agent_tools/_static/tiktoken), not in the wheel (5 MB
    # most installs never use): elsewhere, point TIKTOKEN_CACHE_DIR at a directory that holds them.
    digest = hashlib.sha1(_URLS[name].encode()).hexdigest()
    places = [
        PACKAGED,
        *([Path(os.environ["TIKTOKEN_CACHE_DIR"])] if os.environ.get("TIKTOKEN_CACHE_DIR") else []),
    ]
    folder = next((p for p in places if (p / digest).exists()), None)
    if folder is None:
        raise EncodingUnavailable(
            f"the {name} encoding file ({digest}) is in neither {PACKAGED} nor TIKTOKEN_CACHE_DIR; "
            "we never download it: copy it from a clone's bitrix24_agent_tools/_static/tiktoken"
        )
    # tiktoken looks for its cache in TIKTOKEN_CACHE_DIR; point it at the files for the load only.
    with _lock:
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
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


COSTS = Path(__file__).parent / "_static" / "tool_costs.json"


def shipped_costs() -> dict[str, int]:
    """Every tool's schema cost in o200k tokens (the loader's too), as shipped in ``_static/tool_costs.json``:
    no tokenizer and no encoding file needed (an installed wheel has none)."""
    return {str(k): int(v) for k, v in json.loads(COSTS.read_text()).items()}


def cost_table() -> dict[str, int]:
    """Every tool's schema cost in o200k tokens (the loader's too), measured now with the tokenizer (needs the
    encodings); ``_static/tool_costs.json`` ships its result and ``tests/test_selection.py`` keeps it
    current."""
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.packs.loader import loader_spec

    specs = [*(s for p in PACKS.values() for s in p.specs), loader_spec()]
    return {spec.name: tool_cost(spec) for spec in specs}


def write_cost_table() -> None:
    COSTS.write_text(json.dumps(cost_table(), indent=0, sort_keys=True) + "\n")
