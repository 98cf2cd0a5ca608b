"""The router: product words in six languages to the minimal set of packs, whatever the inflection."""

from __future__ import annotations

import pytest

from bitrix24_agent_tools.router import route


@pytest.mark.parametrize(
    ("text", "packs"),
    [
        ("Show me the deals closing this week", ("core",)),
        ("Сколько сделок в воронке продаж?", ("core",)),
        ("Передвинь сделку на стадию WON", ("core",)),
        ("Set up OPEN LINES for the support team", ("core", "comms")),
        ("настрой открытые линии", ("core", "comms")),
        ("post it to the live feed", ("core", "collab")),
        ("опубликуй в живой ленте", ("core", "collab")),
        ("создай рабочую группу для проекта", ("core", "collab")),
        ("plan the next sprint and groom the backlog", ("core", "collab", "boards")),
        ("спринт и бэклог", ("core", "collab", "boards")),
        ("start the approval business process", ("core", "automation")),
        ("запусти бизнес-процесс и робота", ("core", "automation")),
        ("upload the contract to Drive", ("core", "content")),
        ("положи файл в папку на диске", ("core", "content")),
        ("list unpaid orders and payments", ("core", "commerce")),
        ("заказы и оплаты за неделю", ("core", "commerce")),
        ("book a meeting room in the calendar", ("core", "services")),
        ("учёт рабочего времени", ("core", "services")),
        ("ask CoPilot to draft a reply", ("core", "platform")),
        ("попроси Копилот", ("core", "platform")),
        ("publish the landing page", ("core", "sites")),
        ("сделай лендинг", ("core", "sites")),
        ("record the customer's consent", ("core", "compliance")),
        ("нужна подпись и согласие", ("core", "compliance")),
        ("why does crm.deal.add fail with insufficient scope?", ("core", "diagnostics")),
        ("Criar pedido e registrar pagamento", ("core", "commerce")),
        ("Abrir líneas abiertas y enviar mensajes", ("core", "comms")),
        ("Neuen Termin im Kalender anlegen", ("core", "services")),
        ("Dodaj plik do folderu", ("core", "content")),
        ("hello", ("core",)),
        ("", ("core",)),
    ],
)
def test_routes(text: str, packs: tuple[str, ...]) -> None:
    assert route(text).packs == packs


def test_decision_explains_itself_and_is_deterministic() -> None:
    first = route("Send the deal summary to the chat and start the workflow")
    assert first == route("Send the deal summary to the chat and start the workflow")
    assert first.packs == ("core", "comms", "automation")
    assert "chat" in first.matched and "workflow" in first.matched
    assert "comms: chat" in first.reason


def test_non_text_is_a_clear_error() -> None:
    with pytest.raises(TypeError):
        route(None)  # type: ignore[arg-type]


def _labeled() -> list[tuple[str, tuple[str, ...]]]:
    from pathlib import Path

    rows = []
    for line in (Path(__file__).parent / "router_phrases.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            phrase, packs = line.split("\t")
            rows.append((phrase, tuple(packs.split(","))))
    return rows


def test_labeled_phrases_route_to_the_exact_pack_set() -> None:
    from bitrix24_agent_tools.router import ORDER

    rows = _labeled()
    russian = [p for p, _ in rows if any("а" <= ch <= "я" for ch in p.lower())]
    assert len(rows) >= 150 and len(russian) >= 40
    wrong = []
    for phrase, expected in rows:
        got = route(phrase).packs
        if got != tuple(p for p in ORDER if p in expected):
            wrong.append((phrase, got, expected))
    accuracy = 1 - len(wrong) / len(rows)
    assert accuracy >= 0.97, wrong


def test_routing_never_returns_an_empty_set() -> None:
    for text in ["", " ", "???", "x" * 10_000, "\x00", "🙂", *(p for p, _ in _labeled())]:
        assert route(text).packs[0] == "core"


@pytest.mark.parametrize(
    ("text", "packs"),
    [
        ("Create an epic called Mobile app", ("core", "collab", "boards")),  # "called" names it: no telephony
        ("Опубликуй пост в ленте о новом сотруднике", ("core", "collab")),
        ("I'm starting my working day now", ("core", "services")),
        ("Clock in for the work day", ("core", "services")),
        ("Which methods can this app call?", ("core", "diagnostics")),
        ("Why do I get insufficient_scope when calling crm.deal.list?", ("core", "diagnostics")),
        ("Найди контакт по номеру телефона", ("core",)),
        ("Создай лид из заявки с сайта", ("core",)),
        ("What's in the product backlog?", ("core", "collab", "boards")),
        ("Позвони клиенту завтра", ("core", "comms")),
        ("Call the client back", ("core", "comms")),
    ],
)
def test_longer_phrases_claim_their_words_from_shorter_stems(text: str, packs: tuple[str, ...]) -> None:
    assert route(text).packs == packs


def _rows(name: str) -> list[tuple[str, tuple[str, ...]]]:
    from pathlib import Path

    from bitrix24_agent_tools.router import ORDER

    rows = []
    for line in (Path(__file__).parent / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            phrase, packs = line.split("\t")
            rows.append((phrase, tuple(p for p in ORDER if p in packs.split(","))))
    return rows


def test_held_out_phrases_in_six_languages() -> None:
    """The held-out split (tests/router_heldout.tsv) is never used to change the vocabulary; its accuracy is
    reported by benchmarks/tokens.py. A floor here catches a router change that generalizes worse."""
    for name, floor in (
        ("router_heldout.tsv", 0.90),
        ("router_heldout_c.tsv", 0.9),
        ("router_heldout_e.tsv", 0.9),
        ("router_heldout_m.tsv", 0.9),
        ("router_heldout_t.tsv", 0.9),
    ):
        rows = _rows(name)
        assert len(rows) >= 45
        right = sum(route(phrase).packs == expected for phrase, expected in rows)
        assert right / len(rows) >= floor, f"{name}: held-out accuracy {right}/{len(rows)}"


def test_short_words_of_a_phrase_are_whole_words_and_nominative_endings_inflect() -> None:
    assert route("Создай сайт для акции").packs == (
        "core",
        "sites",
    )  # "с сайта" (a lead's source) is not "создай сайт"
    assert route("Opublikuj stronę internetową").packs == ("core", "sites")  # strona → stronę


@pytest.mark.parametrize(
    ("text", "packs"),
    [
        ("Покажи последние новости компании", ("core", "collab")),  # новость → новост-: новости, новостью
        (
            "Pokaż powiadomienia z wczoraj",
            ("core", "comms"),
        ),  # Polish case endings: powiadomienie → powiadomie-
        ("Revisa las notificaciones pendientes", ("core", "comms")),  # notificación → notif-
        ("Alle Besprechungen dieser Woche", ("core", "services")),  # Besprechung → besprech-
        ("Ile zamówień przyszło wczoraj?", ("core", "commerce")),  # zamówienie → zamówie- (zamówień)
        ("Ask the AI to summarize this deal", ("core", "platform")),  # a two-letter word matches whole
        ("Show deals from the past week", ("core",)),  # "pasta" (a folder in Portuguese) is not "past"
        ("Vereinbare ein Treffen mit dem Lieferanten", ("core", "services")),  # a supplier is not a delivery
    ],
)
def test_dictionary_words_of_the_lexicon_match_their_inflections(text: str, packs: tuple[str, ...]) -> None:
    assert route(text).packs == packs


def test_lexicon_stems_by_language_and_keeps_too_short_stems_whole() -> None:
    from bitrix24_agent_tools.lexicon import entries, stem

    assert stem("новость", "ru") == "новост"
    assert stem("почему", "ru") == "почему"  # Snowball's "поч" would match "почта"
    assert stem("powiadomienie", "pl") == "powiadomie"
    assert stem("reservierung", "de") == "reservier"
    assert ("collab", "новост") in entries()


# Rules found by held-out rounds, grouped as the rounds found them: cases that fail without their rule, and
# cases that keep each rule from reaching too far.
_RULE_CASES: list[tuple[str, tuple[str, ...]]] = [
    # a stem of three or four letters takes at most three more letters
    ("Start the discount approval for deal 8", ("core", "automation")),  # "disc" (disco) is not discount
    ("Collect feedback from the client on deal 3", ("core",)),  # "feed" is not feedback
    ("Какие смс-провайдеры подключены?", ("core", "comms")),  # a hyphen ends the word
    # a known error code is a diagnostics question, whatever words surround it
    ("Got OPERATION_TIME_LIMIT on the export", ("core", "diagnostics")),
    ("What does NO_AUTH_FOUND mean?", ("core", "diagnostics")),
    ("Set UF_CRM_SOURCE_NOTE on deal 5", ("core",)),  # a field name is not an error code
    # a call in a question about the API is a REST call, in every language
    ("Por que a chamada retorna erro?", ("core", "diagnostics")),
    ("¿Por qué falla la llamada a la API?", ("core", "diagnostics")),
    ("What rate limit applies to REST calls?", ("core", "diagnostics")),
    ("Llama al cliente mañana", ("core", "comms")),  # and a phone call otherwise
    # Spanish "firma" is a signature; German and Polish "Firma" is a company
    ("Guarda la firma del contrato", ("core", "compliance")),
    ("Dodaj firmę Kowalski do CRM", ("core",)),
    ("Zeig die Firma des Kunden", ("core",)),
    ("Coloque o contrato assinado na pasta", ("core", "content")),  # a signed contract is a file
    # a price list named beside a file or a folder is the file
    ("Загрузи прайс в папку", ("core", "content")),
    ("Покажи прайс на товары", ("core", "commerce")),
    # scopes, rights and app storage in every language
    ("Welche Rechte hat der Webhook?", ("core", "diagnostics")),
    ("Leg den Vertrag in den Ordner Recht", ("core", "content")),  # das Recht (law) is not die Rechte
    ("¿Qué alcances tiene mi webhook?", ("core", "diagnostics")),
    ("Who owns the Initech deal right now?", ("core",)),
    ("Guarda estos datos en el almacenamiento de la aplicación", ("core", "platform")),
    ("Zapisz to w pamięci aplikacji", ("core", "platform")),
    # everyday phrasings
    ("Termina el flujo de trabajo atascado", ("core", "automation")),  # terminar is to finish
    ("Verschiebe den Termin auf Freitag", ("core", "services")),  # der Termin is an appointment
    ("Hat jemand im Support-Chat geantwortet?", ("core", "comms")),  # compounds join at a hyphen
    ("Can my webhook read calendars?", ("core", "services", "diagnostics")),  # what a credential may do
    ("Darf mein Webhook Kalender lesen?", ("core", "services", "diagnostics")),
    ("Хватает ли прав у вебхука на создание сделок?", ("core", "diagnostics")),
    ("Я ушёл на обед", ("core", "services")),  # a break in the working day
    ("Zdejmij stronę docelową z publikacji", ("core", "sites")),  # a landing page by its Polish name
    # tempting words of core requests
    ("Show leads whose source is the website", ("core",)),  # a lead's source, not a site to edit
    ("Покажи лиды, которые пришли через сайт", ("core",)),
    ("Zeig Leads, die über die Webseite kamen", ("core",)),
    ("Archive the old deals of the Partners pipeline", ("core",)),  # to archive is not archivo (a file)
    ("Busca el archivo del contrato", ("core", "content")),
    ("Sube el contrato y pide la firma electrónica", ("core", "content", "compliance")),  # subir uploads
    ("Измени телефон у контакта Петров", ("core",)),  # a contact's phone is a CRM field
    # signatures possessives and shifts
    ("Which of my documents are waiting for my signature?", ("core", "compliance")),
    ("Какие документы ждут моей подписи?", ("core", "compliance")),
    ("Upload the document and send it for e-signature", ("core", "content", "compliance")),
    ("Store the sync cursor in the app's storage", ("core", "platform")),  # a possessive inside a phrase
    ("Change the client's phone number", ("core",)),
    ("Which features are enabled on this portal?", ("core", "diagnostics")),
    ("Rozpocznij moją zmianę", ("core", "services")),  # a shift
    ("Hat der Kunde die Datenschutzerklärung akzeptiert?", ("core", "compliance")),
    # requests typed without accents
    # people type without accents; the vocabulary and the request fold Latin letters the same way
    ("Marque uma reuniao com a Ana na quarta", ("core", "services")),
    ("Crie uma notificacao para o gerente", ("core", "comms")),
    ("Agrega un producto al catalogo", ("core", "commerce")),
    ("Cual es el error de la aplicacion?", ("core", "diagnostics")),
    ("Ile zamowien przyszlo wczoraj?", ("core", "commerce")),
    ("Wyslij wiadomosc do Marka", ("core", "comms")),
    ("Gdzie jest plik umowy?", ("core", "content")),  # umowa (a contract), not umów (arrange)
    ("Umow spotkanie z Anna", ("core", "services")),
    ("Zeig die Bestellungen fur heute", ("core", "commerce")),
    ("Пошли уведомление менеджеру", ("core", "comms")),  # Cyrillic keeps its letters
    # homonyms
    ("Start the onboarding process for the new employee", ("core", "automation")),
    ("Starte den Onboarding-Prozess", ("core", "automation")),
    ("Starte den Verkaufsprozess", ("core", "automation")),  # a German compound ending in -prozess
    ("Update the lead status to processed", ("core",)),  # processed, processing: not a process
    ('Add an item to the smart process "Vendors"', ("core",)),  # a smart process is a CRM record type
    ("Which sales channel brings most leads?", ("core",)),  # a lead source, not a chat channel
    ("Post it in the support channel", ("core", "comms")),
    ("Qual página dos resultados é esta?", ("core",)),  # paging, not a site page
    # names sources and phones
    ("Crie um épico chamado Aplicativo", ("core", "collab", "boards")),  # chamado names it
    ("Crea una épica llamada Aplicación", ("core", "collab", "boards")),
    ("Programa una llamada con el cliente", ("core", "comms")),  # and una llamada is a call
    ("Altere o rodapé do site", ("core", "sites")),  # the site to change
    ("Mostre os leads que vieram do site", ("core",)),  # the site a lead came from
    ("Remove the banner from the website", ("core", "sites")),
    ("Поменяй телефон на главной странице сайта", ("core", "sites")),  # a phone number is not telephony
    ("Настрой телефонию для отдела продаж", ("core", "comms")),
    # separable verbs and invoices
    # German separable verbs put their prefix at the end of the clause
    ("Kündige die neue Richtlinie allen an", ("core", "collab")),  # ankündigen
    ("Ruf den Kunden Schmidt an", ("core", "comms")),  # anrufen
    (
        "Lade die Datei hoch und schick dem Kunden eine Nachricht",
        ("core", "comms", "content"),
    ),  # hochladen
    ("Stempel mich ein", ("core", "services")),  # einstempeln
    ("Zeig die Kunden an", ("core",)),  # anzeigen: no pack verb, nothing added
    # an invoice and its payment are CRM records, in every language
    ("Добавь триггер на оплату счёта", ("core", "automation")),
    ("Añade un disparador para el pago de la factura", ("core", "automation")),
    ("Show the payments of order 12", ("core", "commerce")),
    ("Put the meeting notes into the shared Drive", ("core", "content")),  # a document, not a meeting
    ("Co jest w backlogu produktu?", ("core", "collab", "boards")),
    # colloquial requests
    ("Am I free Thursday at 2?", ("core", "services")),  # free at a time: the calendar
    ("Bin ich Donnerstag um 14 Uhr frei?", ("core", "services")),
    ("Estou livre quinta às 14h?", ("core", "services")),
    ("Is this lead free of duplicates?", ("core",)),  # free without a time is not availability
    ("What can this webhook do?", ("core", "diagnostics")),
    ("Что умеет этот вебхук?", ("core", "diagnostics")),
    ("Co potrafi ten webhook?", ("core", "diagnostics")),
    ("Create a webhook for new deals", ("core",)),
    ("DM Sergey the link to the proposal", ("core", "comms")),
    ("Mándale a Sergio por privado el enlace", ("core", "comms")),
    ("Poste in der Gruppe Vertrieb, dass die Ziele aktualisiert sind", ("core", "collab")),
    ("Turn off the robot that sends reminders", ("core", "automation")),  # turn is not turno (a shift)
    # synonyms
    ("Add this bug to the current iteration", ("core", "collab", "boards")),  # an iteration is a sprint
    ("Adicione este bug à iteração atual", ("core", "collab", "boards")),
    ("Dig up the signed NDA in our files", ("core", "content")),  # a signed thing is a file
    ("Encuentra el NDA firmado en nuestros archivos", ("core", "content")),
    ("Send the contract for e-signature", ("core", "compliance")),
    ("Plane einen Anruf mit Anna am Dienstag", ("core", "comms", "services")),  # a call planned for a day
    ("Schedule a follow-up task for next Tuesday", ("core",)),  # a task, not a calendar entry
    ("Czy zakres crm jest aktywny dla mojego tokena?", ("core", "diagnostics")),  # a credential's scope
    ("Pokaż zakres dat dla transakcji", ("core",)),  # a range of dates is not a scope
    ("Verschick an die ganze Firma ein Rundschreiben", ("core", "collab")),
    ("Wie viel Umsatz hat der Onlineshop gemacht?", ("core", "commerce")),
    # new kinds of jobs
    (
        "Crea un chat grupal con los gerentes de ventas",
        ("core", "comms"),
    ),  # a group chat, not a workgroup
    ("Erstelle einen Gruppenchat mit dem Vertrieb", ("core", "comms")),
    ("Добавь статью в базу знаний про возвраты", ("core", "sites")),  # a knowledge base is a site
    ("Wer ist heute abwesend?", ("core", "services")),  # absences
    ("¿Quién aprobó la solicitud de vacaciones?", ("core", "automation")),  # a request, not an absence
    ("Дай Олегу доступ на редактирование папки", ("core", "content")),  # sharing a folder
    ("Почему нет доступа к методу crm.deal.add?", ("core", "diagnostics")),
    ("O que significa o erro insufficient_scope?", ("core", "diagnostics")),  # significa is not signing
    # fields pages and failures
    ("Create a company card for Initech with their website initech.com", ("core",)),  # a record's field
    ("Publish the website acme.com", ("core", "sites")),
    ("Which REST methods are available to this webhook?", ("core", "diagnostics")),
    ("Add a FAQ block to the pricing page", ("core", "sites")),
    ("Füge der Preisseite einen FAQ-Block hinzu", ("core", "sites")),
    ("Reschedule my 4 pm to tomorrow", ("core", "services")),
    (
        "Reinicie o fluxo de trabalho que falhou no lead 19",
        ("core", "automation"),
    ),  # failed: not an error
    ("Сделай копию шаблона документа", ("core", "content")),  # сделай (make) is not сделка (a deal)
    # subjects of what is made
    # what a page, a post, a group or an epic is made for is its subject
    ("Create a landing page for the new product", ("core", "sites")),
    ("Erstelle eine Landingpage für das neue Produkt", ("core", "sites")),
    ("Create a new epic for payments", ("core", "collab", "boards")),
    ("Register a new AI engine for our chatbot", ("core", "comms", "platform")),  # not a container
    ("Genehmigung für die Bestellung anfordern", ("core", "automation", "commerce")),
    ("Post a welcome message for Olga in the live feed", ("core", "collab")),  # a feed post
    ("Warum liefert das Portal QUERY_LIMIT_EXCEEDED?", ("core", "diagnostics")),  # liefert: returns
    ("Połącz nasze narzędzie BI z Bitrix24", ("core", "platform")),  # połącz: connect
    ("Dodaj czynność, żeby jutro oddzwonić do klienta", ("core", "comms")),
    # catalog methods
    ("Register a slash command /stock for our bot", ("core", "comms")),  # a command's name
    ("List the mail services configured for the portal", ("core", "comms")),
    ('Show the elements of the list "Vacation requests"', ("core", "automation")),  # lists.element.get
    ("Store a record in the app's entity storage", ("core", "platform")),
    ("Show the info about the installed application", ("core", "diagnostics")),  # app.info
    ("Welche Events kann meine App binden?", ("core", "diagnostics")),
    ("Jakie magazyny są na dysku?", ("core", "content")),  # storages of the Drive
    ("Ile towaru jest w magazynie?", ("core", "commerce")),  # a warehouse
    # what a post or story is about
    ("Add to the backlog a story about login errors", ("core", "collab", "boards")),
    ("Füge dem Backlog eine Story zu Login-Fehlern hinzu", ("core", "collab", "boards")),
    ("Publique uma notícia no feed sobre o novo produto", ("core", "collab")),
    (
        "Отправь смс клиенту о доставке заказа",
        ("core", "comms", "commerce"),
    ),  # a message is not a container
    ("Przypisz zadanie 301 Dmitrijowi z terminem na piątek", ("core",)),  # a deadline
    # a request from the website is a source
    ("Create a deal from the request on our website", ("core",)),  # the record's source
    ("Создай сделку из заявки на сайте", ("core",)),
    ("Erstelle einen Deal aus der Anfrage auf unserer Webseite", ("core",)),
    ("Publish the request form on the website", ("core", "sites")),  # no record: the site itself
    # slang
    ("Ping me when the Globex deal closes", ("core", "comms")),
    ("Avísame cuando se cierre el negocio de Globex", ("core", "comms")),
    ("Sag mir Bescheid, wenn der Deal durch ist", ("core", "comms")),
    ("Why's the webhook choking on crm.lead.add?", ("core", "diagnostics")),  # a method that fails
    ("Czemu webhook się wywala na crm.lead.add?", ("core", "diagnostics")),
    ("Call crm.deal.list with a filter on the stage", ("core",)),  # a method, nothing failing
    ("Pencil in a call with Globex for Thursday", ("core", "comms", "services")),
    ("Позвони клиенту завтра", ("core", "comms")),  # a call, not a calendar entry
    ("Shout out Maria's win to the whole team", ("core", "collab")),
    # operations
    ("How many hours did I log this week?", ("core", "services")),  # work-time records
    ("Сколько часов я отработал на этой неделе?", ("core", "services")),
    ("Show the workflow logs from the last hours", ("core", "automation")),  # not hours worked
    ("Which operators are on duty in the support queue?", ("core", "comms")),
    ("Setz die Antwortzeit der offenen Linie auf 5 Minuten", ("core", "comms")),
]


@pytest.mark.parametrize(("text", "packs"), _RULE_CASES)
def test_general_rules_found_by_held_out_rounds(text: str, packs: tuple[str, ...]) -> None:
    assert route(text).packs == packs


def test_sharing_a_folder_is_not_an_approval() -> None:
    assert route("Hebe die Freigabe des Ordners Budget für externe Nutzer auf").packs == ("core", "content")
    assert route("Hol die Freigabe vom Chef für den Rabatt").packs == ("core", "automation")


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("Send a message to the 'Invoices and payments' chat", "commerce"),  # a chat's name, not a job
        ("Publish the page ‘Order form’", "commerce"),
        ("Write to Boris in chat: 'update the deal pipeline and the product catalog'", "commerce"),
        ("Создай задачу 'Обновить каталог товаров'", "commerce"),
    ],
)
def test_single_quoted_names_and_dictated_text_are_not_the_job(text: str, absent: str) -> None:
    assert absent not in route(text).packs


def test_an_apostrophe_is_not_a_quote() -> None:
    assert "platform" in route("what is in the app's storage? it's for the 'Reports' entity").packs
