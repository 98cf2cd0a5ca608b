"""Chat bots, telephony, SMS providers, open lines, connectors and mail services (the comms pack beyond
im.*)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.im import add_message
from bitrix24_sandbox.registry import app_only, method, now_iso, obj, positive, table, upper
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


def _app_of(caller: Caller, query: dict[str, Any]) -> str:
    """The application a bot belongs to: the OAuth app, or a webhook's CLIENT_ID (imbot-register.md)."""
    if caller.kind == "oauth" and caller.app_id:
        return caller.app_id
    client = str(query.get("CLIENT_ID") or "").strip()
    if not client:
        raise ApiError("ACCESS_DENIED", "Access denied! Client ID not specified", 403)
    return client


def _handler(query: dict[str, Any], key: str, event_code: str, label: str | None) -> str:
    url = str(query.get(key) or query.get("EVENT_HANDLER") or "").strip()
    if not url:
        if label is None:
            return ""
        raise ApiError(f"{event_code}_ERROR", f'Handler for "{label}" event isn\'t specified', 400)
    if not url.startswith(("http://", "https://")):
        raise ApiError(f"{event_code}_ERROR", "Wrong handler URL", 400)
    return url


@method("imbot.register", "imbot")
def imbot_register(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """chat-bots/outdated/bots/imbot-register.md: the result is the bot's user ID."""
    query = upper(params)
    app = _app_of(caller, query)
    code = str(query.get("CODE") or "").strip()
    if not code:
        raise ApiError("CODE_ERROR", "Bot code isn't specified", 400)
    handlers = {
        "add": _handler(query, "EVENT_MESSAGE_ADD", "EVENT_MESSAGE_ADD", "Message add"),
        "update": _handler(query, "EVENT_MESSAGE_UPDATE", "EVENT_MESSAGE_UPDATE", None),
        "delete": _handler(query, "EVENT_MESSAGE_DELETE", "EVENT_MESSAGE_DELETE", None),
        "welcome": _handler(query, "EVENT_WELCOME_MESSAGE", "EVENT_WELCOME_MESSAGE", "Welcome message"),
        "bot_delete": _handler(query, "EVENT_BOT_DELETE", "EVENT_BOT_DELETE", "Bot delete"),
    }
    props = upper(obj(query.get("PROPERTIES")))
    if not str(props.get("NAME") or "").strip() and not str(props.get("LAST_NAME") or "").strip():
        raise ApiError("NAME_ERROR", "Bot name isn't specified", 400)
    bots = table(store, "imbot")
    for bot in bots.values():  # UNVERIFIED: registering the same CODE again answers the existing bot's ID
        if bot["CODE"] == code and bot["APP"] == app:
            return int(bot["ID"])
    bot_id = 1000 + store.next_id("imbot")
    bots[bot_id] = {
        "ID": str(bot_id),
        "CODE": code,
        "APP": app,
        "TYPE": str(query.get("TYPE") or "B"),
        "NAME": str(props.get("NAME") or ""),
        "LAST_NAME": str(props.get("LAST_NAME") or ""),
        "HANDLERS": handlers,
    }
    return bot_id


def _bot(store: Store, caller: Caller, query: dict[str, Any]) -> dict[str, Any]:
    bot_id = positive(query.get("BOT_ID"))
    bot = table(store, "imbot").get(bot_id) if bot_id else None
    if bot is None:
        raise ApiError("BOT_ID_ERROR", "Bot not found", 400)
    if bot["APP"] != _app_of(caller, query):
        raise ApiError("APP_ID_ERROR", "Bot was installed by another REST application", 400)
    return bot


@method("imbot.command.register", "imbot")
def imbot_command_register(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """chat-bots/outdated/commands/imbot-command-register.md."""
    query = upper(params)
    bot = _bot(store, caller, query)
    command = str(query.get("COMMAND") or "").strip()
    if not command:
        raise ApiError("COMMAND_ERROR", "Command isn't specified", 400)
    handler = _handler(query, "EVENT_COMMAND_ADD", "EVENT_COMMAND_ADD", "Command add")
    lang = query.get("LANG")
    if not isinstance(lang, list) or not lang:
        raise ApiError("LANG_ERROR", "Lang set can't be empty", 400)
    command_id = store.next_id("imbot_command")
    table(store, "imbot_command")[command_id] = {
        "ID": str(command_id),
        "BOT_ID": bot["ID"],
        "COMMAND": command,
        "APP": bot["APP"],
        "HANDLER": handler,
        "LANG": lang,
    }
    return command_id


@method("imbot.command.answer", "imbot")
def imbot_command_answer(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """chat-bots/outdated/commands/imbot-command-answer.md: the answer is a message in the command's
    dialog."""
    query = upper(params)
    command_id = positive(query.get("COMMAND_ID"))
    command = table(store, "imbot_command").get(command_id) if command_id else None
    if command is None:
        raise ApiError("COMMAND_ID_ERROR", "Command not found", 400)
    if command["APP"] != _app_of(caller, query):
        raise ApiError("APP_ID_ERROR", "Command was installed by another rest application", 400)
    source = store.tables["message"].get(positive(query.get("MESSAGE_ID")) or 0)
    if source is None:
        raise ApiError("MESSAGE_ID_EMPTY", "Message ID can't be empty", 400)
    text = str(query.get("MESSAGE") or "").strip()
    if not text and not query.get("ATTACH"):
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    return add_message(store, source["dialogId"], text, int(command["BOT_ID"]))


@method("imbot.message.add", "imbot")
def imbot_message_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """chat-bots/outdated/messages/imbot-message-add.md: the message shows in the dialog's history."""
    query = upper(params)
    bot = _bot(store, caller, query)
    dialog = str(query.get("DIALOG_ID") or "").strip()
    if not dialog:
        raise ApiError("DIALOG_ID_EMPTY", "Dialog ID can't be empty", 400)
    text = str(query.get("MESSAGE") or "").strip()
    if not text and not query.get("ATTACH"):
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if dialog.startswith("chat"):
        if not dialog[4:].isdigit() or int(dialog[4:]) not in store.tables.get("chat", {}):
            raise ApiError("WRONG_REQUEST", "Message isn't added", 400)
    elif positive(dialog) not in store.tables["user"]:
        raise ApiError("WRONG_REQUEST", "Message isn't added", 400)
    keyboard = keyboard_of(query.get("KEYBOARD"))
    message_id = add_message(store, dialog, text, int(bot["ID"]))
    if keyboard:
        store.tables["message"][message_id]["keyboard"] = keyboard
    return message_id


def keyboard_of(value: Any) -> list[dict[str, Any]]:
    """``KEYBOARD`` as the docs take it (chat-bots-v2/imbot.v2/messages/message-keyboards.md): a JSON string,
    an object with ``BUTTONS``, or the bare list of buttons; every button but ``TYPE=NEWLINE`` needs ``TEXT``
    and one action (``LINK``, ``COMMAND``, ``ACTION`` + ``ACTION_VALUE``, ``APP_ID``). Errors as
    imbot-message-add.md lists them: KEYBOARD_ERROR, KEYBOARD_OVERSIZE (over 30 KB)."""
    import json

    if value in (None, "", [], {}):
        return []
    raw = value
    if isinstance(raw, str):
        if len(raw.encode()) > 30 * 1024:
            raise ApiError(
                "KEYBOARD_OVERSIZE", "You have exceeded the maximum allowable size of keyboard", 400
            )
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError("KEYBOARD_ERROR", "Incorrect keyboard params", 400) from None
    if isinstance(raw, dict):
        raw = raw.get("BUTTONS", list(raw.values()) if all(str(k).isdigit() for k in raw) else None)
    if isinstance(raw, dict) and all(str(k).isdigit() for k in raw):  # a form-encoded list
        raw = [raw[k] for k in sorted(raw, key=int)]
    if not isinstance(raw, list) or not raw:
        raise ApiError("KEYBOARD_ERROR", "Incorrect keyboard params", 400)
    if len(json.dumps(raw, ensure_ascii=False).encode()) > 30 * 1024:
        raise ApiError("KEYBOARD_OVERSIZE", "You have exceeded the maximum allowable size of keyboard", 400)
    buttons = []
    for button in raw:
        if not isinstance(button, dict):
            raise ApiError("KEYBOARD_ERROR", "Incorrect keyboard params", 400)
        button = {str(k).upper(): v for k, v in button.items()}
        if str(button.get("TYPE") or "").upper() == "NEWLINE":
            buttons.append({"TYPE": "NEWLINE"})
            continue
        acts = bool(button.get("LINK") or button.get("COMMAND") or button.get("APP_ID"))
        acts = acts or bool(button.get("ACTION") and button.get("ACTION_VALUE") is not None)
        if not str(button.get("TEXT") or "").strip() or not acts:
            raise ApiError("KEYBOARD_ERROR", "Incorrect keyboard params", 400)
        buttons.append(button)
    return buttons


@method("im.message.command", "im")
def im_message_command(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """chats/messages/im-message-command.md: a chat participant runs a bot command in the context of a
    message — what pressing a keyboard button with ``COMMAND`` does. The bot's application receives
    ONIMCOMMANDADD at the command's handler (chat-bots/outdated/commands/events/on-im-command-add.md) with
    ``COMMAND_CONTEXT`` KEYBOARD and the message's ID. UNVERIFIED: which error a non-participant or an
    unregistered command gets; PARAMS_ERROR (the page's "Incorrect params") is answered for both."""
    query = upper(params)
    message_id = positive(query.get("MESSAGE_ID"))
    message = store.tables["message"].get(message_id or 0)
    if message is None:
        raise ApiError("MESSAGE_ID_ERROR", "Message ID can't be empty", 400)
    bot_id = positive(query.get("BOT_ID"))
    bot = table(store, "imbot").get(bot_id) if bot_id else None
    if bot is None:
        raise ApiError("BOT_ID_ERROR", "Bot ID can't be empty", 400)
    text = str(query.get("COMMAND") or "").strip()
    if not text:
        raise ApiError("COMMAND_ERROR", "Command can't be empty", 400)
    dialog = str(message["dialogId"])
    if dialog != str(caller.user_id):  # the bot's personal chat with this user (a chat: its members)
        chat = (
            store.tables.get("chat", {}).get(positive(dialog[4:]) or 0) if dialog.startswith("chat") else None
        )
        members = {str(m) for m in (chat or {}).get("USERS", [])} if chat else set()
        if str(caller.user_id) not in members:
            raise ApiError("PARAMS_ERROR", "Incorrect params", 400)
    command = next(
        (
            c
            for c in table(store, "imbot_command").values()
            if c["BOT_ID"] == bot["ID"] and c["COMMAND"] == text
        ),
        None,
    )
    if command is None:
        raise ApiError("PARAMS_ERROR", "Incorrect params", 400)
    send_command(store, bot, command, str(query.get("COMMAND_PARAMS") or ""), message_id or 0, dialog,
                 caller.user_id, "KEYBOARD")  # fmt: skip
    return True


def send_command(
    store: Store,
    bot: dict[str, Any],
    command: dict[str, Any],
    command_params: str,
    message_id: int,
    dialog: str,
    user_id: int,
    context: str,
) -> None:
    """ONIMCOMMANDADD to the command's handler, shaped as on-im-command-add.md shows it (personal or group
    chat): the command under ``data[COMMAND][<command id>]``, the message under ``data[PARAMS]``, the person
    under ``data[USER]``."""
    user = store.tables["user"].get(user_id, {})
    name = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
    group = dialog.startswith("chat")
    data = {
        "COMMAND": {
            command["ID"]: {
                "BOT_ID": bot["ID"],
                "BOT_CODE": bot["CODE"],
                "COMMAND": command["COMMAND"],
                "COMMAND_ID": command["ID"],
                "COMMAND_PARAMS": command_params,
                "COMMAND_CONTEXT": context,
                "MESSAGE_ID": str(message_id),
            }
        },
        "PARAMS": {
            "MESSAGE": f"/{command['COMMAND']} {command_params}".strip(),
            "MESSAGE_TYPE": "C" if group else "P",
            "FROM_USER_ID": str(user_id),
            "DIALOG_ID": dialog if group else str(user_id),
            "AUTHOR_ID": str(user_id),
            "TO_USER_ID": bot["ID"],
            "MESSAGE_ID": str(message_id),
            "CHAT_TYPE": "C" if group else "P",
            "LANGUAGE": "en",
        },
        "USER": {
            "ID": str(user_id),
            "NAME": name,
            "FIRST_NAME": str(user.get("NAME") or ""),
            "LAST_NAME": str(user.get("LAST_NAME") or ""),
        },
    }
    if store.events is not None:
        store.events.deliver_to(command["HANDLER"], "ONIMCOMMANDADD", data, command["APP"], user_id)


def to_bot(store: Store, bot: dict[str, Any], text: str, message_id: int, user_id: int) -> None:
    """A person's message in a bot's personal chat: a registered ``/command`` reaches the command's handler
    as ONIMCOMMANDADD (context TEXTAREA, on-im-command-add.md); any other text the bot's EVENT_MESSAGE_ADD
    handler as ONIMBOTMESSAGEADD (messages/events/on-imbot-message-add.md)."""
    if text.startswith("/"):
        word, _, rest = text[1:].partition(" ")
        for command in table(store, "imbot_command").values():
            if command["BOT_ID"] == bot["ID"] and command["COMMAND"] == word:
                send_command(store, bot, command, rest.strip(), message_id, str(user_id), user_id, "TEXTAREA")
                return
    handler = bot["HANDLERS"].get("add")
    if handler and store.events is not None:
        data = {
            "BOT": {bot["ID"]: {"BOT_ID": bot["ID"], "BOT_CODE": bot["CODE"]}},
            "PARAMS": {
                "MESSAGE": text,
                "MESSAGE_TYPE": "P",
                "FROM_USER_ID": str(user_id),
                "DIALOG_ID": str(user_id),
                "AUTHOR_ID": str(user_id),
                "TO_USER_ID": bot["ID"],
                "COMMAND_CONTEXT": "TEXTAREA",
                "MESSAGE_ID": str(message_id),
                "CHAT_TYPE": "P",
                "LANGUAGE": "en",
            },
            "USER": {"ID": str(user_id)},
        }
        store.events.deliver_to(handler, "ONIMBOTMESSAGEADD", data, bot["APP"], user_id)


_CALL_TYPES = {1: "outgoing", 2: "incoming", 3: "incoming redirected", 4: "callback"}


def _call_user(store: Store, query: dict[str, Any]) -> int:
    user_id = positive(query.get("USER_ID"))
    if user_id is None and not query.get("USER_PHONE_INNER"):
        raise ApiError("ERROR_CORE", "USER_ID or USER_PHONE_INNER should be set.", 400)
    user = store.tables["user"].get(user_id or 1)
    if user is None or str(user.get("ACTIVE", True)).lower() in ("false", "n"):
        raise ApiError("ERROR_CORE", "User is not found or is not active.", 400)
    return user_id or 1


@method("telephony.externalCall.register", "telephony")
def external_call_register(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """telephony/telephony-external-call-register.md: the call is found in CRM by its number; "works only in
    the context of an application" (WRONG_AUTH_TYPE otherwise)."""
    app_only(caller, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method.")
    query = upper(params)
    user_id = _call_user(store, query)
    phone = str(query.get("PHONE_NUMBER") or "").strip()
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 3:
        raise ApiError("ERROR_CORE", "Unsupported phone number format.", 400)
    if positive(query.get("TYPE")) not in _CALL_TYPES:
        raise ApiError("ERROR_CORE", "Unknown TYPE.", 400)
    entity_type, entity_id = None, None
    for kind in ("contact", "company", "lead"):
        for record in store.tables.get(kind, {}).values():
            if any(
                "".join(c for c in str(p.get("VALUE", "")) if c.isdigit()) == digits
                for p in record.get("PHONE") or []
            ):
                entity_type, entity_id = kind.upper(), int(record["ID"])
                break
        if entity_type:
            break
    serial = str(store.next_id("telephony_call"))
    call_id = f"externalCall.{hashlib.md5(serial.encode()).hexdigest()}.sbx"
    table(store, "telephony_call")[call_id] = {
        "CALL_ID": call_id,
        "PHONE_NUMBER": digits,
        "PORTAL_USER_ID": user_id,
        "INCOMING": str(query.get("TYPE")),
        "CRM_ENTITY_TYPE": entity_type,
        "CRM_ENTITY_ID": entity_id,
        "CALL_START_DATE": now_iso(store),
        "FINISHED": False,
    }
    return {
        "CALL_ID": call_id,
        "CRM_CREATED_LEAD": None,
        "CRM_CREATED_ENTITIES": [],
        "CRM_ENTITY_TYPE": entity_type,
        "CRM_ENTITY_ID": entity_id,
    }


@method("telephony.externalCall.finish", "telephony")
def external_call_finish(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """telephony/telephony-external-call-finish.md: only in the context of an application."""
    app_only(caller, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
    query = upper(params)
    call_id = query.get("CALL_ID")
    if not isinstance(call_id, str) or not call_id:
        raise ApiError("INVALID_ARGUMENT", "CALL_ID must be a string", 400)
    user_id = _call_user(store, query)
    call = table(store, "telephony_call").get(call_id)
    if call is None or call["FINISHED"]:
        raise ApiError("ERROR_CORE", "Call is not found (call should be registered prior to finishing)", 400)
    duration = positive(query.get("DURATION")) or 0
    call.update({"FINISHED": True, "CALL_DURATION": duration, "PORTAL_USER_ID": user_id})
    return {
        "CALL_ID": call_id,
        "EXTERNAL_CALL_ID": None,
        "PORTAL_USER_ID": user_id,
        "PHONE_NUMBER": call["PHONE_NUMBER"],
        "PORTAL_NUMBER": "",
        "INCOMING": call["INCOMING"],
        "CALL_DURATION": duration,
        "CALL_START_DATE": call["CALL_START_DATE"],
        "CALL_STATUS": 1,
        "CALL_VOTE": positive(query.get("VOTE")),
        "COST": float(query.get("COST") or 0),
        "COST_CURRENCY": str(query.get("COST_CURRENCY") or ""),
        "CALL_FAILED_CODE": str(query.get("STATUS_CODE") or "200"),
        "CALL_FAILED_REASON": str(query.get("FAILED_REASON") or ""),
        "REST_APP_ID": caller.app_id,
        "CRM_ACTIVITY_ID": None,
        "COMMENT": None,
        "CRM_ENTITY_TYPE": call["CRM_ENTITY_TYPE"],
        "CRM_ENTITY_ID": call["CRM_ENTITY_ID"],
        "ID": len(table(store, "telephony_call")),
    }


@method("messageservice.sender.list", "messageservice")
def sender_list(store: Store, params: dict[str, Any], caller: Caller) -> list[str]:
    """messageservice/messageservice-sender-list.md: the application's SMS providers, for an administrator."""
    app_only(caller, message="Application context required")
    if not caller.is_admin:
        raise ApiError("ACCESS_DENIED", "Access denied!", 403)
    return sorted(
        str(s["CODE"]) for s in table(store, "sms_sender").values() if s.get("APP") == caller.app_id
    )


@method("imopenlines.config.list.get", "imopenlines")
def openlines_config_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """imopenlines/openlines/imopenlines-config-list-get.md: PARAMS{select, order, filter, limit, offset}."""
    query = upper(params)
    options = query.get("PARAMS") or {}
    if not isinstance(options, dict):
        raise ApiError("INVALID_FORMAT", "A wrong format for the PARAMS field is passed", 400)
    unknown = set(options) - {"select", "order", "filter", "limit", "offset"}
    if unknown:
        raise ApiError(
            "INVALID_FORMAT", f"Unsupported PARAMS fields are passed: {', '.join(sorted(unknown))}", 400
        )
    flt = options.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("INVALID_FORMAT", "A wrong format for the PARAMS field 'filter' is passed", 400)
    rows = []
    for line in table(store, "openline").values():
        if all(str(line.get(str(k).upper())) == str(v) for k, v in flt.items()):
            users = {
                str(u): {
                    "USER_NAME": " ".join(
                        filter(
                            None,
                            (
                                store.tables["user"].get(u, {}).get("NAME"),
                                store.tables["user"].get(u, {}).get("LAST_NAME"),
                            ),
                        )
                    ),
                    "USER_WORK_POSITION": store.tables["user"].get(u, {}).get("WORK_POSITION"),
                }
                for u in line["QUEUE"]
            }
            rows.append({**line, "QUEUE_USERS_FIELDS": users})
    return rows


@method("imconnector.list", "imopenlines")
def connector_list(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, str]:
    """imopenlines/imconnector/imconnector-list.md: application context only."""
    app_only(
        caller,
        "WRONG_AUTH_TYPE",
        "Current authorization type is denied for this method. Application context required",
    )
    return {
        "livechat": "Live Chat",
        "telegrambot": "Telegram",
        "network": "Bitrix24.Network",
        "whatsappbyedna": "WhatsApp",
    }


_MAIL_SERVICES = [
    ("gmail", "imap.gmail.com", "smtp.gmail.com"),
    ("outlook.com", "outlook.office365.com", "smtp.office365.com"),
]


@method("mailservice.list", "mailservice")
def mailservice_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """mailservice/mailservice-list.md."""
    return [
        {
            "ID": str(i),
            "SITE_ID": "s1",
            "ACTIVE": "Y",
            "SORT": str(100 * i),
            "NAME": name,
            "SERVER": imap,
            "PORT": "993",
            "ENCRYPTION": "Y",
            "LINK": "",
            "ICON": "",
            "SMTP_SERVER": smtp,
            "SMTP_PORT": "465",
            "SMTP_LOGIN_AS_IMAP": "Y",
            "SMTP_PASSWORD_AS_IMAP": "Y",
            "SMTP_ENCRYPTION": "Y",
            "UPLOAD_OUTGOING": "N",
        }
        for i, (name, imap, smtp) in enumerate(_MAIL_SERVICES, start=1)
    ]
