"""The tools a request's first model call needs, below the pack level, within a token budget.

The pack router (``router.route``) says which packs a request touches; this module picks, inside them, the few
tools the request's verbs and nouns point to (list or create, deal or task, upload, book...). Every other tool
stays one call away behind ``b24_load_pack``. When nothing in the request points to a tool, the selection is
the loader and the most general read of each routed pack: a guess costs a loader call, not the whole core
pack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from bitrix24_agent_tools.packs.loader import tool_packs
from bitrix24_agent_tools.router import longest_matches, normalize, route, stem_pattern

DEFAULT_BUDGET = 400  # o200k tokens of tool schemas in the first model call (issue: deferred packs)

# What a request does: verbs (and a few nouns) in the six router languages. A word matches a stem it starts
# with.
# fmt: off
ACTIONS: dict[str, tuple[str, ...]] = {
    "list": ("list", "show", "find", "search", "which", "what", "how many", "display", "look up", "get all",
             "покаж", "найд", "найти", "список", "какие", "какой", "сколько", "выведи", "поиск", "ищи",
             "mostr", "encontr", "busc", "quais", "quant", "liste", "listar", "muestr", "encuentr", "cuál",
             "cuáles",
             "cuánt", "zeig", "such", "finde", "welche", "wie viele", "pokaż", "pokaz", "znajdź", "znajdz",
             "lista",
             "które", "ktore", "ile"),
    "create": ("create", "add", "new", "make", "register", "open a", "созд", "добав", "нов", "завед",
               "заведи",
               "crie", "criar", "adicion", "novo", "nova", "crea", "crear", "añad", "agreg", "nuevo", "nueva",
               "erstell", "anleg", "leg an", "hinzufüg", "füge", "neu", "utwórz", "utworz", "dodaj", "now",
               "stwórz"),
    "update": ("update", "change", "set", "rename", "assign", "edit", "reassign", "измен", "обнов", "поменя",
               "назнач",
               "переимен", "установ", "перенес", "atualiz", "alter", "mud", "defin", "actualiz", "cambi",
               "modific",
               "asign", "änder", "aktualis", "setz", "zuweis", "zmień", "zmien", "przypisz", "ustaw"),
    "move": ("move", "stage", "won", "lost", "win", "lose", "close the deal", "close deal", "перевед",
             "передвин",
             "перемест", "стади", "этап", "выигр", "проигр", "успешн", "mova", "mover", "etapa", "ganh",
             "perd", "mueve",
             "ganad", "perdid", "verschieb", "phase", "stufe", "gewonn", "verlor", "przenieś", "przenies",
             "etap",
             "wygran", "przegran"),
    "comment": ("comment", "note", "коммент", "замет", "примечан", "coment", "nota", "kommentar", "notiz",
                "komentarz",
                "notatk"),
    "convert": ("convert", "qualif", "конверт", "сконверт", "преобраз", "convers", "konvert", "umwandel",
                "konwert",
                "przekształ"),
    "complete": ("complete", "finish", "done", "mark as done", "close the task", "заверш", "выполн",
                 "закрой задач",
                 "conclu", "finaliz", "complet", "termin", "erledig", "abschließ", "fertig", "zakończ",
                 "zakoncz",
                 "ukończ", "ukoncz"),
    "fields": ("field", "property", "properties", "pipeline", "stages", "поля", "полей", "поле", "свойств",
               "воронк",
               "стадии", "campo", "funil", "embudo", "feld", "felder", "pole", "pola", "lejek"),
}
# fmt: on
# Which records a request is about.
# fmt: off
ENTITIES: dict[str, tuple[str, ...]] = {
    "crm": ("deal", "lead", "contact", "compan", "client", "customer", "crm", "сдел", "лид", "контакт",
            "компани",
            "клиент", "negóci", "negoci", "trato", "prospect", "empresa", "cliente", "geschäft", "deal",
            "kontakt",
            "unternehm", "firma", "kunde", "transakc", "kontrahent", "klient"),
    "task": ("task", "to-do", "todo", "задач", "поручен", "tarefa", "tarea", "aufgabe", "zadani", "zadań",
             "zadan"),
    "user": ("user", "employee", "colleague", "department", "head of", "manager", "who is", "сотрудник",
             "пользоват",
             "отдел", "руковод", "коллег", "usuário", "usuario", "funcionário", "empleado", "departamento",
             "chefe",
             "jefe", "mitarbeiter", "benutzer", "abteilung", "leiter", "kolleg", "pracownik", "użytkownik",
             "dział",
             "kierownik"),
}
# fmt: on
# (entity, action) → the core tool that does it; an entity without an action is listed.
# fmt: off
CORE: dict[tuple[str, str], str] = {
    ("crm", "list"): "b24_crm_list", ("crm", "create"): "b24_crm_create", ("crm", "update"): "b24_crm_update",
    ("crm", "move"): "b24_deal_move", ("crm", "comment"): "b24_crm_comment",
    ("crm", "convert"): "b24_lead_convert",
    ("crm", "fields"): "b24_crm_fields", ("crm", "complete"): "b24_deal_move",
    ("task", "list"): "b24_task_list", ("task", "create"): "b24_task_create",
    ("task", "update"): "b24_task_update",
    ("task", "complete"): "b24_task_complete", ("task", "comment"): "b24_crm_comment",
    ("task", "move"): "b24_task_update",
    ("user", "list"): "b24_user_find",
}
# fmt: on
# The typed tools of the other packs, by what a request says; a routed pack none of whose tools is named gets
# its generic call.
# fmt: off
TYPED: dict[str, tuple[str, ...]] = {
    "b24_chat_send": ("chat", "message", "write to", "tell", "чат", "сообщ", "напиши", "mensag", "mensaj",
                      "nachricht",
                      "wiadomoś", "wiadomos", "czat"),
    "b24_notify": ("notif", "remind", "уведом", "напомн", "notifica", "benachrichtig", "erinner", "powiadom"),
    "b24_workflow_start": ("workflow", "business process", "approval", "start the", "бизнес-процесс",
                           "бизнес процесс",
                           "согласован", "запусти", "processo", "proceso", "flujo", "fluxo",
                           "geschäftsprozess",
                           "genehmig", "proces", "uruchom"),
    "b24_feed_post": ("post", "feed", "announce", "пост", "лент", "новост", "объяв", "publique", "feed",
                      "anunci",
                      "neuigkeit", "ogłoś", "ogłosz", "tablic"),
    "b24_folder_list": ("folder", "files in", "папк", "pasta", "carpeta", "ordner", "folder"),
    "b24_file_upload": ("upload", "save the file", "put the", "загруз", "положи", "сохрани файл", "envi",
                        "salve",
                        "sube", "guarda", "lade", "hochlad", "speicher", "prześlij", "przeslij", "wgraj",
                        "dodaj plik"),
    "b24_sprint_add_task": ("sprint", "спринт", "sprint"),
    "b24_product_add": ("product", "catalog", "товар", "каталог", "produto", "producto", "produkt",
                        "katalog"),
    "b24_calendar_add": ("calendar", "meeting", "event", "schedule", "календар", "встреч", "событи", "agenda",
                         "reuni",
                         "cita", "evento", "kalender", "termin", "treffen", "spotkan", "kalendarz"),
    "b24_book": ("book", "reserv", "room", "car", "бронир", "заброни", "резерв", "переговор", "reserva",
                 "sala",
                 "buch", "raum", "rezerw", "zarezerw", "sal"),
    "b24_page_publish": ("publish", "опубликуй", "публик", "publi", "veröffentlich", "opublikuj"),
    "b24_explain_error": ("error", "fails", "failing", "denied", "access_denied", "insufficient",
                          "wrong_auth", "ошиб", "не работает", "erro", "fehler", "błąd", "blad"),
    "b24_check_method": ("method", "scope", "permission", "allowed", "метод", "права", "доступ", "método",
                         "methode",
                         "berechtig", "uprawnie", "metod"),
}
# fmt: on


# Tools added, in this order, while the budget allows: the reads most everyday jobs make on the way.
FILL = ("b24_crm_list", "b24_user_find", "b24_task_list", "b24_crm_get")


@dataclass(frozen=True)
class Selection:
    """The first model call's tools: what the request points to, and the loader for everything else."""

    tools: tuple[str, ...]
    packs: tuple[str, ...]
    confident: bool
    reason: str


@lru_cache(maxsize=1)
def _patterns() -> dict[str, list[tuple[str, str, re.Pattern[str]]]]:
    def compile_all(table: dict[str, tuple[str, ...]]) -> list[tuple[str, str, re.Pattern[str]]]:
        return [
            (key, stem, pattern)
            for key, stems in table.items()
            for stem in stems
            if (pattern := stem_pattern(stem)) is not None
        ]

    return {"action": compile_all(ACTIONS), "entity": compile_all(ENTITIES), "typed": compile_all(TYPED)}


def _hits(kind: str, text: str) -> list[tuple[int, str]]:
    """(position, key) of every stem of ``kind`` in ``text``, in order; a longer match hides shorter ones
    in it."""
    return sorted((at, key) for at, key, _ in longest_matches(text, _patterns()[kind]))


def _numbered(text: str, at: int) -> bool:
    """Whether the record word at ``at`` is followed by its number ("deal 12", "сделку #12", "task no. 7")."""
    return re.match(r"[\w-]*\s*(?:#|no\.?|№|nr\.?)?\s*\d+", text[at:]) is not None


@lru_cache(maxsize=1)
def _costs() -> dict[str, int]:
    from bitrix24_agent_tools.tokens import COSTS

    try:
        return {str(k): int(v) for k, v in json.loads(COSTS.read_text()).items()}
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=128)
def _cost(name: str) -> int:
    """A tool's schema cost in o200k tokens, from the shipped table (no tokenizer needed); a tool the table
    does not know is over-estimated from its characters (three a token)."""
    if name in _costs():
        return _costs()[name]
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.packs.loader import loader_spec
    from bitrix24_agent_tools.tokens import tool_view

    spec = (
        loader_spec()
        if name == "b24_load_pack"
        else next(s for p in PACKS.values() for s in p.specs if s.name == name)
    )
    return len(json.dumps(tool_view(spec), ensure_ascii=False)) // 3 + 1


def select_tools(text: str, budget: int = DEFAULT_BUDGET) -> Selection:
    """The tools for the first model call on ``text``: at most ``budget`` tokens of schemas, the loader
    included."""
    from bitrix24_agent_tools.packs import PACKS

    decision = route(text)
    clean = normalize(text)
    actions, entities, typed = _hits("action", clean), _hits("entity", clean), _hits("typed", clean)
    # Each action goes with the record mentioned nearest to it ("move it to WON, create a task": move→deal,
    # create→task); a record no action goes with is looked up (listed).
    wanted: list[tuple[int, str]] = []
    paired: set[int] = set()
    for at, action in actions:
        if action == "convert":
            wanted.append((at, "b24_lead_convert"))
            continue
        # the object of a verb mostly follows it ("create a task for its manager"); else the nearest one
        # before
        fits = [e for e in entities if (e[1], action) in CORE]  # only records this action can apply to
        after = [e for e in fits if 0 <= e[0] - at <= 40]
        near = after[0] if after else min(fits, key=lambda e: abs(e[0] - at), default=None)
        if near is not None and (near[1], action) in CORE:
            wanted.append((min(at, near[0]), CORE[(near[1], action)]))
            if _numbered(
                clean, near[0]
            ):  # "deal 12": the action has its ID; "the Acme deal" must be found first
                paired.add(near[0])
        elif action == "fields":
            wanted.append((at, "b24_crm_fields"))
    wanted.extend((at, CORE[(entity, "list")]) for at, entity in entities if at not in paired)
    if (
        wanted
        and any(a in ("create", "update") for _, a in actions)
        and all(e != "user" for _, e in entities)
    ):
        wanted.append((len(clean), "b24_user_find"))  # a person's name must become an ID
    for pack in decision.packs:
        if pack == "core":
            continue
        names = {s.name for s in PACKS[pack].specs}
        named = [(at, t) for at, t in typed if t in names]
        wanted.extend(named or [(len(clean) + 1, f"b24_{pack}_call")])
    wanted.sort()
    confident = bool(wanted)
    if not wanted:  # nothing points to a tool: the most general read, and the loader for the rest
        wanted = [(0, "b24_crm_list")]
    # What is left of the budget goes to the tools most jobs use next (finding a record, a person, a task by
    # name), so fewer jobs need a loader call.
    wanted.extend((len(clean) + 2, name) for name in FILL)
    tools: list[str] = []
    spent = _cost("b24_load_pack")
    for name in dict.fromkeys(name for _, name in wanted):
        if spent + _cost(name) <= budget:
            tools.append(name)
            spent += _cost(name)
    reason = (
        f"packs {', '.join(decision.packs)}; actions {', '.join(a for _, a in actions) or '-'}; "
        f"records {', '.join(e for _, e in entities) or '-'}; {spent} tokens with the loader"
    )
    packs = tuple(dict.fromkeys(tool_packs()[t] for t in tools))
    return Selection((*tools, "b24_load_pack"), packs, confident, reason)
