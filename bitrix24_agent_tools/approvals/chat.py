"""Approval in Bitrix24 itself: the application's chat bot sends each approver the full confirmation with
Approve / Reject / Edit buttons, and the press comes back as a verified ONIMCOMMANDADD event.

What the docs describe and this follows: the bot and its commands (chat-bots/outdated/bots/imbot-register.md,
commands/imbot-command-register.md), the message with a keyboard (messages/imbot-message-add.md,
chats/messages/keyboards.md: a button with ``COMMAND`` + ``COMMAND_PARAMS`` runs the bot's command,
``BLOCK=Y`` blocks it after the press), the press as ONIMCOMMANDADD (commands/events/on-im-command-add.md:
the command, its params, the message it was pressed on, ``PARAMS.FROM_USER_ID``, ``auth.application_token``),
a typed command as ONIMCOMMANDADD with ``COMMAND_CONTEXT`` TEXTAREA (the Edit button puts ``/edit …`` in
the input field: ``ACTION=PUT``).

An answer counts only when the event carries this application's token (and portal), names a request of this
portal by its unguessable id, was pressed on the very message sent to that person for that request, and comes
from one of its approvers — then the approval service takes it once. A replay, another person's click or a
button of another request changes nothing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bitrix24_agent_tools.approvals.service import ApprovalError, ApprovalService
from bitrix24_agent_tools.events.online import MAX_BODY, Event, EventRejected, parse_event, read_body
from bitrix24_agent_tools.masking import get_logger, register_secret
from bitrix24_agent_tools.stores import Approval

log = get_logger(__name__)
COMMANDS = {"approve": "Approve", "reject": "Reject", "edit": "Edit"}


def chat_text(text: str) -> str:
    """Text the model wrote, shown literally in a chat message: square brackets become their full-width
    look-alikes so that nothing in a request is read as BB code (a link, a [SEND] command, bold). UNVERIFIED:
    the docs (chats/messages/formatting.md) describe no escape for BB codes; this is the fail-safe choice."""
    return str(text).replace("[", "［").replace("]", "］")


class BitrixChatChannel:
    """The approval service's Bitrix24 chat channel, through the application's own client (an installed
    app's OAuth client; a webhook client needs ``client_id``, as imbot-register.md says).

    ``handler_url`` is where the portal posts the bot's events (serve :meth:`asgi_app` there);
    ``application_token`` is the one the portal gave the app at install (events carrying another are refused).
    """

    name = "bitrix24-chat"

    def __init__(
        self,
        client: Any,
        *,
        handler_url: str,
        application_token: str,
        member_id: str | None = None,
        tenant: str | None = None,
        client_id: str | None = None,
        bot_code: str = "b24_agent_approvals",
        bot_name: str = "Approvals",
    ) -> None:
        self.client = client
        self.handler_url = handler_url
        self.application_token = application_token
        register_secret(application_token)
        self.member_id = member_id
        self.tenant = tenant or client.portal
        self.client_id = client_id
        self.bot_code = bot_code
        self.bot_name = bot_name
        self.bot_id: int | None = None

    def _app(self) -> dict[str, Any]:
        return {"CLIENT_ID": self.client_id} if self.client_id else {}

    # -- setup ----------------------------------------------------------------------------------------------
    def install(self) -> int:
        """Register the bot and its three commands (again is harmless: the portal answers the same bot)."""
        bot = self.client.call(
            "imbot.register",
            {
                "CODE": self.bot_code,
                "TYPE": "B",
                "EVENT_MESSAGE_ADD": self.handler_url,
                "EVENT_WELCOME_MESSAGE": self.handler_url,
                "EVENT_BOT_DELETE": self.handler_url,
                "PROPERTIES": {"NAME": self.bot_name, "WORK_POSITION": "Approves the agent's writes"},
                **self._app(),
            },
        ).result
        self.bot_id = int(bot)
        for command, title in COMMANDS.items():
            self.client.call(
                "imbot.command.register",
                {
                    "BOT_ID": self.bot_id,
                    "COMMAND": command,
                    "HIDDEN": "Y",
                    "EVENT_COMMAND_ADD": self.handler_url,
                    "LANG": [{"LANGUAGE_ID": "en", "TITLE": f"{title} a pending write", "PARAMS": "request"}],
                    **self._app(),
                },
            )
        return self.bot_id

    def _send(self, dialog: str, text: str, keyboard: list[dict[str, Any]] | None = None) -> int:
        if self.bot_id is None:
            self.install()
        params: dict[str, Any] = {"BOT_ID": self.bot_id, "DIALOG_ID": dialog, "MESSAGE": text, **self._app()}
        if keyboard:
            params["KEYBOARD"] = {"BUTTONS": keyboard}
        return int(self.client.call("imbot.message.add", params).result)

    # -- the channel ----------------------------------------------------------------------------------------
    def notify(self, approval: Approval, service: ApprovalService) -> None:
        """Send every approver the full confirmation with its buttons; the message IDs are kept on the
        approval, so a press counts only on the message sent for it."""
        if approval.tenant != self.tenant:
            return
        link = service.link(approval)
        text = render_message(approval, link)
        keyboard: list[dict[str, Any]] = [
            {"TEXT": "Approve", "COMMAND": "approve", "COMMAND_PARAMS": approval.id, "BLOCK": "Y",
             "BG_COLOR_TOKEN": "primary", "DISPLAY": "LINE"},
            {"TEXT": "Reject", "COMMAND": "reject", "COMMAND_PARAMS": approval.id, "BLOCK": "Y",
             "BG_COLOR_TOKEN": "alert", "DISPLAY": "LINE"},
            {"TEXT": "Edit", "ACTION": "PUT", "ACTION_VALUE": edit_command(approval), "DISPLAY": "LINE"},
        ]  # fmt: skip
        if link:
            keyboard += [{"TYPE": "NEWLINE"}, {"TEXT": "Open the full request", "LINK": link}]
        sent: dict[str, int] = {}
        for user in approval.approvers:
            sent[user] = self._send(user, text, keyboard)
        service.note(approval.id, "chat", sent)

    def answered(self, approval: Approval, service: ApprovalService) -> None:
        sent = approval.notes.get("chat") or {}
        if approval.tenant != self.tenant or not sent:
            return
        outcome = {"approved": "approved", "rejected": "rejected", "edited": "edited"}.get(
            str(approval.answer), str(approval.answer)
        )
        line = f"The write {approval.method} ({approval.id[:8]}) was {outcome} by user {approval.answered_by}"
        if approval.reason:
            line += f": {chat_text(approval.reason)}"
        for user in sent:
            self._send(user, line + ".")

    # -- events ---------------------------------------------------------------------------------------------
    def verify(self, event: Event) -> Event:
        given = str(event.auth.get("application_token") or "")
        if not given or not hmac.compare_digest(given.encode(), self.application_token.encode()):
            raise EventRejected("wrong application_token")
        if self.member_id and str(event.member_id or "") != self.member_id:
            raise EventRejected("event from another portal")
        return event

    def handle(self, event: Event, service: ApprovalService) -> str:
        """Apply one verified bot event; returns what happened (for logs and tests). Anything that does not
        bind to a pending request of an approver is ignored."""
        self.verify(event)
        if event.name == "ONIMCOMMANDADD":
            return self._command(event, service)
        return "ignored: not a command"

    def _command(self, event: Event, service: ApprovalService) -> str:
        given = event.data.get("PARAMS")
        params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        user = str(params.get("FROM_USER_ID") or "")
        commands = event.data.get("COMMAND")
        if not isinstance(commands, Mapping) or not user:
            return "ignored: no command"
        outcomes = []
        for entry in commands.values():
            if not isinstance(entry, Mapping) or (
                self.bot_id and str(entry.get("BOT_ID")) != str(self.bot_id)
            ):
                continue
            outcomes.append(self._press(entry, user, str(params.get("DIALOG_ID") or user), service))
        return "; ".join(outcomes) or "ignored: not our bot"

    def _press(self, entry: Mapping[str, Any], user: str, dialog: str, service: ApprovalService) -> str:
        command = str(entry.get("COMMAND") or "").lower()
        raw = str(entry.get("COMMAND_PARAMS") or "").strip()
        approval_id, _, rest = raw.partition(" ")
        if command not in COMMANDS:
            return "ignored: unknown command"
        approval = service.get(approval_id, tenant=self.tenant)
        if approval is None:
            return "ignored: no such request"
        if command == "edit":
            return self._edit(approval, user, dialog, rest, service)
        # Approve and Reject count only as presses on the very message sent to this person for this request.
        sent = approval.notes.get("chat") or {}
        if str(entry.get("COMMAND_CONTEXT") or "").upper() != "KEYBOARD" or str(sent.get(user)) != str(
            entry.get("MESSAGE_ID") or ""
        ):
            return "ignored: not pressed on the message sent to this person for that request"
        try:
            done = service.answer(
                approval.id,
                "approve" if command == "approve" else "reject",
                user=user,
                channel=self.name,
                tenant=self.tenant,
                reason="" if command == "approve" else "rejected in Bitrix24 chat",
            )
        except ApprovalError as exc:
            log.info("chat answer ignored: %s", exc.code)
            return f"ignored: {exc.code}"
        return str(done.answer)

    def _edit(self, approval: Approval, user: str, dialog: str, text: str, service: ApprovalService) -> str:
        """``/edit <request> {json}``, sent by an approver (the Edit button puts it in their input field with
        the current values): the changed fields, applied by the guard, which asks again."""
        try:
            fields = json.loads(text) if text else None
        except ValueError:
            fields = None
        if not isinstance(fields, dict) or not fields:
            if user in approval.approvers:
                self._send(dialog, "Send the changed fields as a JSON object after /edit and the request; "
                           "nothing changed.")  # fmt: skip
            return "ignored: no JSON object"
        try:
            done = service.answer(
                approval.id, "edit", user=user, channel=self.name, tenant=self.tenant, edit=fields
            )
        except ApprovalError as exc:
            return f"ignored: {exc.code}"
        return str(done.answer)

    # -- serving --------------------------------------------------------------------------------------------
    def asgi_app(self, service: ApprovalService) -> Callable[..., Awaitable[None]]:
        """A minimal ASGI app for ``handler_url``: POST a bot event → verify → apply → 200; 403 otherwise."""
        import anyio

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body, too_big = await read_body(receive, MAX_BODY)
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []
            }
            if too_big:
                status, text = 413, "event body too large"
            else:
                try:
                    event = parse_event(
                        body, headers.get("content-type", "application/x-www-form-urlencoded")
                    )
                    outcome = await anyio.to_thread.run_sync(self.handle, event, service)
                    status, text = 200, outcome
                except EventRejected as exc:
                    status, text = 403, str(exc)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})  # fmt: skip
            await send({"type": "http.response.body", "body": text.encode()})

        return app


def edit_command(approval: Approval) -> str:
    """What the Edit button puts in the person's input field: ``/edit <request> {the editable fields as
    the model wrote them}``."""
    given = approval.params.get("fields")
    fields: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    shown = {k: v for k, v in fields.items() if not isinstance(v, (dict, list))} or {
        k: approval.params[k] for k in approval.fields[:3] if k in approval.params
    }
    return f"/edit {approval.id} {json.dumps(shown, ensure_ascii=False)}"


def render_message(approval: Approval, link: str | None) -> str:
    """The chat message: the same rendering the terminal shows (``summary``), literal, with who asked."""
    head = (
        f"[B]Approve this {approval.risk} call?[/B] {approval.method} · portal {chat_text(approval.tenant)}"
    )
    lines = [head, chat_text(approval.summary)]
    if approval.doc:
        lines.append(f"docs: {approval.doc}")
    lines.append(f"request {approval.id[:8]} · tool {approval.tool}")
    if link:
        lines.append(f"Also on the web: {link}")
    lines.append("(square brackets in the request are shown as ［ ］)" if "[" in approval.summary else "")
    return "\n".join(line for line in lines if line)
