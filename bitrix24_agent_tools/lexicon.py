"""Each pack's product words as dictionary words, per language, and the stemmer that turns them into match
stems.

The router matches a word of the request when it starts with an entry's stem. Written here as a person would
look them up ("новость", "Besprechungsraum", "zamówienie"), the words are cut to their stems by the Snowball
stemmer of their language (English, Russian, Portuguese, Spanish, German), so every inflection of a word
matches without hand-picked prefixes. Snowball has no Polish; a small table of Polish case endings does the
same there (and leaves out a consonant that softens: zamówienie, zamówień). A stem shorter than four letters
is too loose to match on ("подпись" → "подп" is fine, "почему" → "поч" is not): the word is kept whole
instead.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import Any

import snowballstemmer

from bitrix24_agent_tools.vocabulary import load

_DATA = load("lexicon")
# pack → language → comma-separated words or phrases (a phrase matches consecutive words of the request).
LEXICON: dict[str, dict[str, str]] = {
    pack: {lang: ", ".join(words) for lang, words in langs.items()}
    for pack, langs in _DATA["lexicon"].items()
}
# Words for a phone call, per language: telephony (comms), unless the request is about the API, where a call
# is a REST call ("why does the call return an error", "which methods can this app call").
CALLS: dict[str, str] = {lang: ", ".join(words) for lang, words in _DATA["calls"].items()}

_SNOWBALL = {"en": "english", "ru": "russian", "pt": "portuguese", "es": "spanish", "de": "german"}
# Polish case endings, longest first (Snowball has no Polish stemmer).
# fmt: off
_POLISH_ENDINGS = ("owania", "owanie", "ami", "ach", "ów", "om", "em", "ie", "ia", "ię", "ść", "ę", "ą",
                   "y", "i", "a", "u", "o", "e", "ć")
# fmt: on
_MIN_STEM = 4


@cache
def _stemmer(lang: str) -> Any:
    return snowballstemmer.stemmer(_SNOWBALL[lang])


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch.isascii() or "LATIN" not in unicodedata.name(ch, ""):
        return ch  # Cyrillic keeps its letters (й is not и)
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return {"ł": "l"}.get(base, base)


def fold_latin(text: str) -> str:
    """``text`` with its Latin letters stripped of accents (reunião → reuniao, zamówień → zamowien, ł → l)."""
    return text if text.isascii() else "".join(_fold_char(ch) for ch in text)


def stem(word: str, lang: str) -> str:
    """The match stem of one lower-case word of ``lang``: the language's stem, or the word when the stem is
    too short to match on safely."""
    if lang == "pl":
        cut = next(
            (
                word[: -len(e)]
                for e in _POLISH_ENDINGS
                if word.endswith(e) and len(word) - len(e) >= _MIN_STEM
            ),
            word,
        )
        if re.search(r"ie[ncsz]$", cut):  # the consonant softens in other cases: zamówienie, zamówień
            cut = cut[:-1]
    else:
        cut = _stemmer(lang).stemWord(word)
    # Snowball may drop an umlaut or an accent (ankündigen → ankund); the router folds them in the request too
    return cut if len(cut) >= _MIN_STEM and fold_latin(word).startswith(fold_latin(cut)) else word


def _variants(word: str, lang: str) -> list[str]:
    """A Polish word's stem and, where its final consonant softens in the locative, that form's stem too
    (t → ci: sprint → sprincie, projekt → projekcie; d → dzi: zarząd → zarządzie)."""
    stems = [stem(word, lang)]
    if lang == "pl" and word[-1:] in ("t", "d") and len(word) >= _MIN_STEM:
        stems.append(word[:-1] + ("ci" if word[-1] == "t" else "dzi"))
    return stems


def _stems(words: str, lang: str) -> list[str]:
    """The stemmed phrases of a comma-separated list of words or phrases of ``lang``."""
    out = []
    for phrase in words.split(","):
        tokens = [t for t in re.split(r"\s+", phrase.strip().casefold().replace("ё", "е")) if t]
        head = " ".join(stem(t, lang) for t in tokens[:-1])
        out += [f"{head} {last}".strip() for last in (_variants(tokens[-1], lang) if tokens else [])]
    return out


def call_stems() -> set[str]:
    """The stems of the phone-call words of every language."""
    return {s for lang, words in CALLS.items() for s in _stems(words, lang)}


def entries() -> list[tuple[str, str]]:
    """(pack, stemmed phrase) for every word of the lexicon, in the lexicon's order (the call words are
    comms')."""
    tables = [*LEXICON.items(), ("comms", CALLS)]
    return [
        (pack, s)
        for pack, languages in tables
        for lang, words in languages.items()
        for s in _stems(words, lang)
    ]
