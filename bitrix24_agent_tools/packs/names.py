"""People and departments found by what a user types, in any of the router's languages and either script:
departments by the kind of department (people.toml's groups: "отдел продаж" finds "Sales"), people by their
names folded, transliterated and compared loosely ("Мюллер" finds "Müller")."""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import cache

from bitrix24_agent_tools.vocabulary import load

__all__ = ["department_matches", "fold", "latin", "name_matches"]


def fold(text: str) -> str:
    """Case and diacritics folded: "Müller" and "muller" compare equal."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def latin(text: str) -> str:
    """``text`` folded, its Cyrillic letters in Latin."""
    table = load("people")["latin"]
    return "".join(table.get(c, c) for c in fold(text))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", latin(text))


@cache
def _groups() -> dict[str, tuple[str, ...]]:
    return {kind: tuple(latin(t) for t in terms) for kind, terms in load("people")["departments"].items()}


def _kinds(text: str) -> set[str]:
    """The kinds of department ``text`` names (sales, support, …)."""
    folded = " ".join(_words(text))
    found = set()
    for kind, terms in _groups().items():
        for term in terms:
            pattern = rf"(?<!\w){re.escape(term)}" + (r"(?!\w)" if len(term) <= 2 else "")
            if re.search(pattern, folded):
                found.add(kind)
                break
    return found


def department_matches(query: str, name: str) -> bool:
    """Whether the department called ``name`` is the one ``query`` asks for: by name, or by kind."""
    if latin(query) in latin(name):
        return True
    wanted = _kinds(query)
    return bool(wanted) and bool(wanted & _kinds(name))


def name_matches(query: str, name: str) -> bool:
    """Whether every word of ``query`` is a word of ``name`` — any case, accents and script, a letter or two
    apart from the same first letter ("Мюллер" and "Müller", "Sokolowa" and "Sokolova"; not "Anna" and
    "Hanna")."""
    have = _words(name)
    wanted = _words(query)
    return bool(wanted) and all(
        any(
            h.startswith(w) or (h[:1] == w[:1] and difflib.SequenceMatcher(None, w, h).ratio() >= 0.8)
            for h in have
        )
        for w in wanted
    )
