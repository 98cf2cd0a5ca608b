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

# pack → language → comma-separated words or phrases (a phrase matches consecutive words of the request).
# fmt: off
LEXICON: dict[str, dict[str, str]] = {
    "comms": {
        "en": ("chat, message, messenger, notification, notify, chatbot, telephony, text message, open line, "
               "open channel, channel, group chat, ping, whatsapp, telegram, voicemail, dm, direct message, "
               "private message, mail service, mail services, let me know, ping me"),
        "ru": ("чат, сообщение, мессенджер, уведомление, уведомить, оповещение, оповестить, чат-бот, "
               "эсэмэска, открытая линия, канал, переписка, диалог, ватсап, телеграм, групповой чат, "
               "пингани, дай знать, дайте знать, маякни"),
        "pt": ("mensagem, notificação, notificar, linha aberta, canal, no privado, pelo privado, chat em "
               "grupo, chat de grupo"),
        "es": ("mensaje, notificación, notificar, línea abierta, canal, por privado, al privado, en privado, "
               "chat grupal, chat de grupo"),
        "de": ("Nachricht, Benachrichtigung, benachrichtigen, Telefonie, Chatbot, Sprachnachricht, Kanal, "
               "Bescheid"),
        "pl": "wiadomość, powiadomienie, powiadomić, czat, kanał, na priv, na priva, na privie, czat grupowy",
    },
    "automation": {
        "en": ("business process, workflow, robot, automation, automate, trigger, approval, approve, "
               "elements of the list, list elements, list element"),
        "ru": ("бизнес-процесс, робот, триггер, автоматизация, автоматизировать, согласование, согласовать, "
               "утверждение, утвердить, элементы списка"),
        "pt": ("processo de negócio, fluxo de trabalho, robô, gatilho, automação, automatizar, aprovação, "
               "aprovar, elementos da lista"),
        "es": ("proceso de negocio, flujo de trabajo, robot, disparador, automatización, automatizar, "
               "aprobación, aprobar, aprueba, apruebe, elementos de la lista"),
        "de": ("Geschäftsprozess, Workflow, Roboter, Auslöser, Automatisierung, automatisieren, "
               "Genehmigung, genehmigen, Freigabe, Listenelement"),
        "pl": ("proces biznesowy, przepływ pracy, robot, wyzwalacz, automatyzacja, akceptacja, "
               "zatwierdzenie, zatwierdzić, elementy listy"),
    },
    "collab": {
        "en": ("workgroup, project, live feed, news feed, newsfeed, announcement, announce, news, shout out, "
               "shout-out, whole team, entire team, entire company, "
               "company-wide, everyone, group, group members, the post, a post, s post, my post, memo, "
               "circular"),
        "ru": ("рабочая группа, группа, проект, лента, новость, объявление, объявить, всем сотрудникам, "
               "памятка, рассылка по компании, всей компании, всей команде"),
        "pt": ("grupo de trabalho, grupo, projeto, feed, notícia, anúncio, anunciar, todos os funcionários, "
               "comunicado, toda a empresa, empresa toda"),
        "es": ("grupo de trabajo, grupo, proyecto, noticia, anuncio, anunciar, toda la empresa, comunicado, "
               "circular"),
        "de": ("Arbeitsgruppe, Gruppe, Projekt, Neuigkeit, Ankündigung, ankündigen, Beitrag, alle "
               "Mitarbeiter, Rundschreiben, Rundmail, ganze Firma, Newsfeed"),
        "pl": ("grupa robocza, grupa, projekt, tablica, aktualności, ogłoszenie, ogłosić, wpis, cała firma, "
               "wszyscy pracownicy, komunikat"),
    },
    "boards": {
        "en": "scrum, sprint, backlog, epic, kanban, story points, user story, iteration",
        "ru": "скрам, спринт, бэклог, эпик, канбан, итерация",
        "pt": "sprint, backlog, épico, kanban",
        "es": "sprint, backlog, épica, kanban",
        "de": "Sprint, Backlog, Epic, Kanban, Iteration",
        "pl": "sprint, backlog, epik, kanban, iteracja",
    },
    "content": {
        "en": "drive, disk, file, folder, subfolder, document, attachment, upload, pdf",
        "ru": "диск, файл, папка, подпапка, документ, вложение, загрузить",
        "pt": "arquivo, documento, anexo",
        "es": "archivo, carpeta, documento, adjunto, disco, subir, sube, súbelo",
        "de": "Datei, Ordner, Dokument, Anhang, Laufwerk, hochladen, hochgeladen",
        "pl": "plik, folder, dokument, załącznik, dysk, wgraj, wgrać",
    },
    "commerce": {
        "en": ("order, payment, catalog, catalogue, product, delivery, shipment, price list, warehouse, "
               "stock, online store, shop, webshop"),
        "ru": "заказ, оплата, платеж, товар, каталог, доставка, отгрузка, прайс, склад, корзина, магазин",
        "pt": "pedido, pagamento, produto, catálogo, entrega, estoque, loja",
        "es": "pedido, pago, producto, catálogo, entrega, inventario, tienda",
        "de": "Bestellung, Zahlung, Produkt, Katalog, Lieferung, Versand, Lager, Warenkorb, Shop, Onlineshop",
        "pl": "zamówienie, płatność, produkt, katalog, dostawa, wysyłka, magazyn, sklep, towar",
    },
    "services": {
        "en": ("calendar, meeting, booking, bookable, reservation, reserve, meeting room, conference room, "
               "work time, working day, clock in, free on, free at, busy on, busy at, on a break, "
               "video call, videocall, video meeting, lunch break, lunch, coffee break, absent, absence, "
               "out of office, on vacation, on leave, reschedule"),
        "ru": ("календарь, встреча, бронирование, забронировать, бронь, зарезервировать, переговорная, "
               "переговорка, рабочий день, рабочее время, свободен в, свободна в, занят в, занята в, "
               "перерыв, обед, обеденный перерыв, созвон, видеозвонок, видеоконференция, отсутствует, "
               "отсутствие, в отпуске, на больничном"),
        "pt": ("calendário, agenda, reunião, reserva, reservar, agendamento, agendar, compromisso, sala de "
               "reunião, expediente, livre na, livre no, ocupado na, videochamada, almoço, intervalo, "
               "ausente, ausência, está de férias, estão de férias, estou de férias"),
        "es": ("calendario, agenda, reunión, reserva, reservar, cita, sala de reuniones, jornada, "
               "libre el, ocupado el, videollamada, almuerzo, descanso, ausente, ausencia, "
               "está de vacaciones, están de vacaciones, estoy de vacaciones"),
        "de": ("Kalender, Termin, Besprechung, Buchung, buchen, reservieren, Reservierung, "
               "Besprechungsraum, Konferenzraum, Arbeitszeit, Schicht, Arbeitstag, frei am, frei um, in der "
               "Pause, Mittagspause, Videocall, Videokonferenz, abwesend, Abwesenheit, im Urlaub"),
        "pl": ("kalendarz, spotkanie, rezerwacja, zarezerwować, sala konferencyjna, czas pracy, dzień "
               "pracy, wolny w, wolna w, zajęty w, przerwa, obiad, wideorozmowa, wideokonferencja, "
               "nieobecny, nieobecna, nieobecność, na urlopie"),
    },
    "platform": {
        "en": ("copilot, ai, artificial intelligence, prompt, app storage, application storage, "
               "bi connector, neural network, bi, power bi, looker studio, entity storage"),
        "ru": ("копилот, нейронка, искусственный интеллект, нейросеть, промпт, бизнес-аналитика, "
               "хранилище приложения, хранилище данных приложения, хранилище сущностей"),
        "pt": ("ia, inteligência artificial, armazenamento do aplicativo, armazenamento da aplicação, "
               "armazenamento do app, armazenamento de entidades"),
        "es": ("ia, inteligencia artificial, almacenamiento de la aplicación, almacenamiento de la app, "
               "almacenamiento del app, almacenamiento de entidades"),
        "de": ("ki, künstliche Intelligenz, App-Speicher, Anwendungsspeicher, Speicher der App, "
               "Entitätsspeicher"),
        "pl": "sztuczna inteligencja, magazyn aplikacji, pamięć aplikacji, dane aplikacji, magazyn encji",
    },
    "sites": {
        "en": "website, web page, knowledge base",
        "ru": "сайт, лендинг, страница, целевая страница, база знаний",
        "pt": "página, landing page, página de destino, base de conhecimento",
        "es": "sitio web, página, página de destino, base de conocimiento",
        "de": "Webseite, Website, Landingpage, Zielseite, Wissensdatenbank, Wissensbasis",
        "pl": "witryna, strona, strona internetowa, strona www, strona docelowa, baza wiedzy",
    },
    "compliance": {
        "en": ("agreement, consent, privacy policy, e-signature, signature, e-signature document, signature "
               "document, for signing, for signature"),
        "ru": "соглашение, подписание, персональные данные, политика конфиденциальности",
        "pt": "consentimento, assinatura, assinar, termo de uso, política de privacidade",
        "es": "consentimiento, firma electrónica, acuerdo, política de privacidad",
        "de": ("Einwilligung, Zustimmung, Signatur, Unterschrift, unterschreiben, unterzeichnen, "
               "Datenschutzerklärung, Nutzungsbedingungen"),
        "pl": "zgoda, podpis, podpisanie, polityka prywatności, regulamin",
    },
    "diagnostics": {
        "en": ("scope, permission, access rights, error, failure, access denied, rate limit, request "
               "limit, query limit, api limit, throttling, installed application, installed app, app info, "
               "application info"),
        "ru": ("ошибка, права доступа, доступ, разрешение, лимит запросов, ограничение запросов, лимит api, "
               "установленное приложение, информация о приложении"),
        "pt": ("erro, permissão, falha, escopo, direitos de acesso, limite de requisições, limite de "
               "solicitações, limite da api, aplicativo instalado"),
        "es": ("error, permiso, alcance, ámbito, derechos de acceso, límite de solicitudes, límite de "
               "peticiones, límite de la api, aplicación instalada"),
        "de": ("Fehler, Berechtigung, Zugriffsrechte, Ratenlimit, Anfragelimit, Rate-Limit, API-Limit, "
               "installierte App, installierte Anwendung"),
        "pl": ("błąd, uprawnienie, prawa dostępu, zakres uprawnień, limit zapytań, limit żądań, limit api, "
               "zainstalowana aplikacja"),
    },
    "core": {
        "en": "deal, lead, contact, company, pipeline, funnel, stage, task, user, employee, crm",
        "ru": "сделка, лид, контакт, компания, воронка, стадия, задача, пользователь, сотрудник, клиент",
        "pt": "negócio, tarefa, empresa, etapa, funil, usuário, funcionário, cliente",
        "es": "negocio, tarea, empresa, etapa, embudo, usuario, empleado, cliente",
        "de": "Deal, Aufgabe, Kontakt, Unternehmen, Firma, Phase, Mitarbeiter, Benutzer, Kunde",
        "pl": "transakcja, zadanie, kontrahent, lejek, etap, pracownik, klient",
    },
}
# Words for a phone call, per language: telephony (comms), unless the request is about the API, where a call
# is a REST call ("why does the call return an error", "which methods can this app call").
CALLS: dict[str, str] = {
    "en": "call, phone call",
    "ru": "звонок, позвонить",
    "pt": "chamada, ligação, ligar",
    "es": "llamada, llamar",
    "de": "Anruf, anrufen, anzurufen, Rückruf, zurückrufen, zurückzurufen",
    "pl": "zadzwonić, zadzwoń, oddzwonić, oddzwoń, połączenie, rozmowa",
}
# fmt: on

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
