"""Map what a user says (EN, RU, PT, ES, DE, PL product words) to the minimal set of packs; ``core`` always.

Matching is on word stems, so case, plural and inflection do not matter ("сделку", "Deals", "pedidos"); a
phrase matches when its stems start consecutive words ("живой ленте", "open lines"). Of overlapping matches
the longest wins, so a phrase can claim words a shorter stem would misread ("product backlog" is scrum, "номер
телефона" is a CRM field, "an epic called X" names it). Deterministic and table-driven.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from . import lexicon, vocabulary
from .risk import CATALOG

# pack → stems (a word matches a stem it starts with); phrases are space-separated stems.
_DATA = vocabulary.load("router")
# pack → stems (a word matches a stem it starts with); phrases are space-separated stems (router.toml).
VOCABULARY: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["vocabulary"].items()}
# German compound tails (long and distinctive enough to appear in no other word of the six languages).
COMPOUND_TAILS = {k: tuple(v) for k, v in _DATA["compound_tails"].items()}
ORDER = tuple(CATALOG)  # the packs, core first, as the catalog lists them
# Scrum words imply the workgroup pack too (catalog.md: collab, and boards when scrum/sprint/backlog/epic is
# said).
IMPLIES = {k: tuple(v) for k, v in _DATA["implies"].items()}


@dataclass(frozen=True)
class RouteDecision:
    packs: tuple[str, ...]
    matched: tuple[str, ...]
    reason: str


# A name in quotes (an epic «Оплата картой», a task "Call Anna", the chat 'Sales team', a page ‘Contacts’) is
# a name, not words of the request; so is text the user dictates in quotes (a message body, a prompt). A
# single quote opens only where no letter stands before it and closes only where none follows: "it's" is none.
_QUOTED = re.compile(
    r'«[^»]{1,120}»|"[^"]{1,120}"|“[^”]{1,120}”|„[^“”]{1,120}[“”]|‘[^’]{1,120}’'
    r"|(?<![\w'])'(?=\S)[^'\n]{1,120}(?<=\S)'(?![\w'])"
)


# A bot's slash command is a name too ("register a command /stock").
_SLASH_COMMAND = re.compile(r"(?<!\S)/[\w-]+")
# Portuguese and Spanish "called" is the word for a call: "um épico chamado Aplicativo", "una tarea llamada
# Revisión". Before a capitalised name or a quoted one it names the thing and reads as "called".
_CALLED = re.compile(r"\b(?:chamad|llamad)[oa]s?\s+(?=[A-ZÀ-ÖØ-Þ\"«“„])")


_DICTATION = _DATA["dictation"]
_DICTATED_HEAD = re.compile(
    "|".join(rf"(?<!\w){re.escape(h.strip())}" for h in _DICTATION["heads"]), re.IGNORECASE
)
_DICTATED_MARKER = re.compile(
    "|".join(rf"(?<!\w){re.escape(m)}(?!\w)" for m in _DICTATION["markers"]), re.IGNORECASE
)


def without_dictation(text: str) -> str:
    """The request without the text it dictates: what follows a colon after a word that introduces content
    (message, comment, post, prompt…) or a marker ("saying", "со словами", "mit dem Text")."""
    colon = text.find(":")
    if colon > 0 and _DICTATED_HEAD.search(text[:colon]):
        text = text[:colon]
    marker = _DICTATED_MARKER.search(text)
    return text[: marker.start()] if marker else text


def normalize(text: str) -> str:
    """Lower case, quoted names and dictated text out, punctuation out, and Latin letters without their
    accents (people type "reuniao", "zamowienie", "catalogo"; the vocabulary goes through the same
    function)."""
    text = _CALLED.sub("called ", unicodedata.normalize("NFKC", text))
    text = without_dictation(_QUOTED.sub(" ", _SLASH_COMMAND.sub(" ", text)))
    text = lexicon.fold_latin(text.casefold().replace("ё", "е"))
    return re.sub(r"[^\w\s:-]+", " ", _join_separable(text))


# German separable verbs put their prefix at the end of the clause: "Ruf den Kunden an" (anrufen), "Lade die
# Datei hoch" (hochladen), "Kündige die Richtlinie an" (ankündigen). The joined verb is added to the text.
_SEPARABLE = {"an", "ab", "auf", "aus", "ein", "hoch", "mit", "vor", "zu", "zuruck", "los", "fest", "weiter"}
_CLAUSE = re.compile(r"[,;.!?]|\b(?:und|oder|dann)\b")


def _join_separable(text: str) -> str:
    joined = []
    for clause in _CLAUSE.split(text):
        words = re.findall(r"[\w-]+", clause)
        if len(words) >= 3 and words[-1] in _SEPARABLE:
            joined.append(words[-1] + words[0])
    return " ".join([text, *joined])


# Words that mean an API call, not a phone call, once the request is about methods, scopes or errors.
_API_CALL = {"call", "звон", "позвон", "llamad", "anruf", "ligaç", *lexicon.call_stems()}
_METHOD_NAME = re.compile(r"\b[a-z]+(?:\.[a-z_]+){2,}\b")  # crm.deal.list, tasks.task.add
_API_WORD = re.compile(r"(?<![\w-])(?:api|rest|endpoint)(?![\w-])")
_CODE_LIKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")  # ACCESS_DENIED, insufficient_scope
# A website followed by its address, beside a CRM record, is the record's field, not a site to build.
_SITE_FIELD = re.compile(
    r"(?i)\b(?:website|site|сайт\w*|sitio(?: web)?|webseite|strona(?: www)?)\s*:?\s*(?:https?://)?"
    r"[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b"
)
# A request that came through the website, beside a CRM record, is the record's source ("create a deal from
# the request on our website", "создай сделку из заявки на сайте").
_WEB_REQUEST = re.compile(
    r"(?<!\w)(?:requests?|inquir\w*|enquir\w*|submission\w*|заявк\w*|обращени\w*|solicitac\w*|solicitud\w*|"
    r"consulta\w*|anfrage\w*|zapytani\w*|zgloszeni\w*)(?!\w)"
)
# A pack named only by words starting with these yields to the pack in the key when that one is named too:
# a price list beside a file or a folder is the file ("загрузи прайс в папку"); a document waiting for a
# signature is an e-signature document ("which documents are waiting for my signature").
_YIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    k: {k2: tuple(v2) for k2, v2 in v.items()} for k, v in _DATA["yields"].items()
}


@lru_cache(maxsize=1)
def _error_codes() -> frozenset[str]:
    from .client.errors import known_codes

    return known_codes()


_SORTING = re.compile(r"\border\b(?:\s+[\w-]+){1,4}\s+by\b")


# A stem of three or four letters takes at most this many more letters ("disc" is not "discount", "feed" is
# not "feedback"); a hyphen ends the word (смс-провайдер).
_SHORT_TAIL = 3


def _word_pattern(word: str, last: bool) -> str:
    """One word of a vocabulary entry: a very short one (бп, ии, "с" in "с сайта") whole — "с сайта" must not
    match "создай сайт"; a short one with at most ``_SHORT_TAIL`` more letters; a longer one as a prefix. The
    last word of an entry matches only as long as it is, so a longer entry wins an overlap."""
    if len(word) <= 2:
        return re.escape(word) + r"\b"
    if len(word) <= 4:
        return re.escape(word) + (rf"(?!\w{{{_SHORT_TAIL + 1}}})" if last else rf"\w{{0,{_SHORT_TAIL}}}")
    return re.escape(word) + ("" if last else r"[\w-]*")


def stem_pattern(stem: str, inflect: bool = True) -> re.Pattern[str] | None:
    """The pattern of a vocabulary entry: each word a prefix of a word of the text (its nominative ending
    inflects unless ``inflect`` is false), within the limits of ``_word_pattern``. An entry may start after a
    hyphen, where compounds join their words (Support-Chat, Team-Kalender, бизнес-процесс)."""
    words = [_root(w) if inflect else w for w in normalize(stem).split()]
    if not words:
        return None
    # an English possessive may sit between the words of an entry: "the app's storage", "the contact's phone"
    body = r"\s+(?:s\s+)?".join(_word_pattern(w, i == len(words) - 1) for i, w in enumerate(words))
    return re.compile(rf"(?<!\w){body}")


def longest_matches(text: str, table: list[tuple[str, str, re.Pattern[str]]]) -> list[tuple[int, str, str]]:
    """(position, key, stem) of every entry of ``table`` found in ``text``, leftmost-longest without overlap:
    a longer phrase ("product backlog", "номер телефона", "called") takes its words from a shorter entry
    inside it. In the order they were taken (longest first)."""
    found = [(m.start(), m.end(), key, stem) for key, stem, pattern in table for m in pattern.finditer(text)]
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    taken: list[tuple[int, int]] = []
    out = []
    for start, end, key, stem in found:
        if not any(start < e and s < end for s, e in taken):
            taken.append((start, end))
            out.append((start, key, stem))
    return out


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, str, re.Pattern[str]]]:
    words = [(pack, stem) for pack, stems in VOCABULARY.items() for stem in stems] + lexicon.entries()
    table = [
        (pack, stem.strip(), pattern)
        for pack, stem in dict.fromkeys(words)
        if (pattern := stem_pattern(stem, inflect=bool(pack))) is not None
    ]
    # German compounds end in the word that names the thing: Vertragsdatei, Projektordner, Teamkalender.
    table += [
        (pack, tail, re.compile(rf"(?<![\w-])\w+?{tail}\w*"))
        for pack, tails in COMPOUND_TAILS.items()
        for tail in tails
    ]
    return table


# A noun's nominative ending is where its inflections happen (страна/страну, strona/stronę, reunião/reuniões):
# a vocabulary word of five letters or more ending in -a/-o/-я is matched without that vowel. Stems that
# already end in another vowel were cut on purpose (согласи- is not соглас-ование) and stay as they are.
_FINAL_VOWELS = set("aoаоя")


def _root(word: str) -> str:
    return word[:-1] if len(word) >= 6 and word[-1] in _FINAL_VOWELS else word


# fmt: off
# A question whether someone is free at a time is about the calendar: "am I free Thursday at 2", "bin ich
# Donnerstag um 14 Uhr frei", "estou livre quinta às 14h".
_FREE = re.compile(
    r"(?<!\w)(?:free|busy|available|свобод\w*|занят\w*|livre|ocupad[oa]|libre|frei|besetzt|wolny|wolna|zaj[eę]t[ya])"
    r"(?!\w)"
)
_WHEN = re.compile(
    r"(?<!\w)(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow|tonight|"
    r"понедельник|вторник|сред[ауы]|четверг|пятниц[уае]|суббот[уа]|воскресень[ея]|сегодня|завтра|"
    r"segunda|terca|quarta|quinta|sexta|sabado|domingo|hoje|amanha|"
    r"lunes|martes|miercoles|jueves|viernes|manana|hoy|"
    r"montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|heute|morgen|"
    r"poniedzialek|wtorek|srod[ae]|czwartek|piatek|sobot[ae]|niedziel[ae]|dzis|dzisiaj|jutro)(?!\w)"
    r"|\d{1,2}(?::\d\d)?\s*(?:am|pm|h|uhr)(?!\w)|(?:at|às|as|a las|um|o|в)\s+\d{1,2}(?!\d)"
)
# What a credential can do is a diagnostics question: "what can this webhook do", "что умеет этот вебхук",
# "o que este webhook consegue fazer", "was kann dieser Webhook".
_CREDENTIAL = re.compile(
    r"(?<!\w)(?:this|my|our|этот|мой|моего|моему|наш|este|esse|meu|minha|nosso|mi|nuestro|dieser|diese|diesem|"
    r"mein|meine|meinem|unser|unsere|ten|moj|moja|nasz)"
    r"\s+(?:webhook|вебхук\w*|app|application|приложени\w*|aplicativo|aplicacion|anwendung|aplikacj\w*|token)"
    r"(?!\w)"
)
# Scope words with a credential: "is the crm scope enabled for my token", "zakres crm dla mojego tokena".
_SCOPE = re.compile(r"(?<!\w)(?:scope|скоуп|escopo|alcance|zakres)\w*")
_TOKEN = re.compile(
    r"(?<!\w)(?:webhook|вебхук\w*|token\w*|токен\w*|apps?|application|приложени\w*|aplicativo|aplicacion"
    r"|anwendung|aplikacj\w*)(?!\w)"
)
# Planning a call for a day or an hour puts it in the calendar too.
_PLAN = re.compile(
    r"(?<!\w)(?:schedule|pencil|book|запланир\w*|постав\w*|agend\w*|marca|marque|programa|planifica|plane|planen|"
    r"terminier\w*|eintrag|zaplanuj\w*|wrzuc)(?!\w)"
)
_MODAL = re.compile(
    r"(?<!\w)(?:can|could|may|allowed|able|умеет|может|можно|pode|consegue|puede|kann|darf|potrafi|moze)(?!\w)"
)
# Hours a person logged or worked are the work-time records.
_HOURS = re.compile(r"(?<!\w)(?:hours|часов|часа|часы|horas|stunden|godzin\w*)(?!\w)")
_WORKED = re.compile(
    r"(?<!\w)(?:log|logged|work|worked|отработ\w*|проработ\w*|registr\w*|trabalh\w*|erfass\w*|gearbeitet|"
    r"przepracow\w*|zarejestrow\w*)(?!\w)"
)
# A REST method that fails, breaks or chokes is a diagnostics question in any words.
_FAILING = re.compile(
    r"(?<!\w)(?:fail\w*|break\w*|crash\w*|chok\w*|пада\w*|пал|ломает\w*|trava\w*|falha\w*|quebra\w*|"
    r"falla\w*|atraganta\w*|cae|hangt|scheitert|bricht|absturz\w*|wywala\w*|sypie\w*)(?!\w)"
)
# fmt: on


def _senses(lower: str, clean: str, hits: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(pack, what it read) for the requests the word table cannot see: word pairs anywhere in the request."""
    out = []
    if _FREE.search(clean) and _WHEN.search(clean):
        out.append(("services", "free at a time"))
    if _PLAN.search(clean) and _WHEN.search(clean) and set(hits.get("comms", ())) & _API_CALL:
        out.append(("services", "a call planned for a time"))
    if _CREDENTIAL.search(clean) and _MODAL.search(clean):
        out.append(("diagnostics", "what a credential can do"))
    if _SCOPE.search(clean) and _TOKEN.search(clean):
        out.append(("diagnostics", "a credential's scope"))
    if _HOURS.search(clean) and _WORKED.search(clean):
        out.append(("services", "hours worked"))
    if _METHOD_NAME.search(lower) and _FAILING.search(clean):
        out.append(("diagnostics", "a method that fails"))
    if any(code in _error_codes() for code in _CODE_LIKE.findall(lower)):
        out.append(("diagnostics", "error code"))  # "what does ACCESS_DENIED mean"
    return out


# What a page, a post, a group or an epic is made *for*, or is *about*, is its subject, not a pack to work in:
# "a landing page for the new product", "an epic for payments", "a story about login errors", "uma notícia no
# feed sobre o novo produto". (Polish "o" is left out: it is also Portuguese "the" and a clock's "at".)
_CONTAINERS = {"sites", "collab", "boards"}
_FOR = re.compile(
    r"(?<![\w-])(?:for|для|para|fur|dla|about|regarding|про|об|обо|sobre|acerca|uber|zu|zum|zur|na temat)"
    r"(?![\w-])"
)  # (für, über: folded)


def _drop_topics(clean: str, matches: list[tuple[int, str, str]], hits: dict[str, list[str]]) -> None:
    marker = _FOR.search(clean)
    if marker is None:
        return
    found = sorted((at, pack) for at, pack, _ in matches if pack and pack != "core")
    before = [pack for at, pack in found if at < marker.start()]
    if not before or before[-1] not in _CONTAINERS:
        return
    for pack in {pack for at, pack in found if at > marker.start()} - set(before):
        hits.pop(pack, None)


def route(text: str) -> RouteDecision:
    """The packs a request needs: ``core`` plus every pack whose vocabulary it mentions."""
    if not isinstance(text, str):
        raise TypeError("route() takes the user's text")
    clean = normalize(text)
    hits: dict[str, list[str]] = {}
    matches = longest_matches(clean, _compiled())
    for _, pack, stem in matches:
        if pack:
            hits.setdefault(pack, [])
            if stem not in hits[pack]:
                hits[pack].append(stem)
    lower = text.casefold()
    for pack, sense in _senses(lower, clean, hits):
        hits.setdefault(pack, []).append(sense)
    api_talk = "diagnostics" in hits or _METHOD_NAME.search(lower) is not None or _API_WORD.search(clean)
    if api_talk and "comms" in hits and set(hits["comms"]) <= _API_CALL:
        del hits["comms"]  # "which methods can this app call", "call crm.deal.list with a filter"
    if "commerce" in hits and set(hits["commerce"]) <= {"order"} and _SORTING.search(clean):
        del hits["commerce"]  # "order the tasks by deadline" sorts them
    if "sites" in hits and "core" in hits and (_SITE_FIELD.search(text) or _WEB_REQUEST.search(clean)):
        del hits[
            "sites"
        ]  # "website initech.com" is a field; "a deal from the request on our website" a source
    _drop_topics(clean, matches, hits)
    for named, yielding in _YIELDS.items():
        for pack, roots in yielding.items():
            if named in hits and pack in hits and all(h.startswith(roots) for h in hits[pack]):
                del hits[pack]
    chosen = {"core", *hits}
    for pack in list(chosen):
        chosen.update(IMPLIES.get(pack, ()))
    packs = tuple(p for p in ORDER if p in chosen)
    matched = tuple(dict.fromkeys(s for p in ORDER for s in hits.get(p, [])))
    if len(packs) == 1:
        reason = "only core: " + (", ".join(matched) if matched else "no pack vocabulary matched")
    else:
        reason = "; ".join(f"{p}: {', '.join(hits[p])}" for p in packs if p in hits and p != "core")
    return RouteDecision(packs, matched, reason)
