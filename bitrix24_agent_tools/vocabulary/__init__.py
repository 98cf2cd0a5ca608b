"""The words the router and the tool selection read, as data (one TOML file each): a change of words is a
data diff, not a code change.

- ``router.toml``: product words per pack in six languages, the words that only look like a pack's, German
  compound tails, which pack implies another, and which words hand a pack's match to another.
- ``selection.toml``: verbs (actions), the records they act on, the tool each (record, action) pair names,
  word-triggered typed tools, and the reads added while the first call's budget allows.
- ``lexicon.toml``: dictionary words per pack and language, cut to stems by the Snowball stemmer.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover — Python 3.10
    import tomli as tomllib

__all__ = ["load", "parse_toml"]


def parse_toml(text: str) -> dict[str, Any]:
    """TOML text parsed (tomllib; tomli on Python 3.10)."""
    return tomllib.loads(text)


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed data file ``<name>.toml`` of this package."""
    text = resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_toml(text)
