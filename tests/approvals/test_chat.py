"""Approval in Bitrix24 chat, on loopback-free in-process delivery: the bot's message with buttons reaches the
approver, the press comes back as ONIMCOMMANDADD (chat-bots/outdated/commands/events/on-im-command-add.md) and
the write runs once; anything unbound to the request and its approver changes nothing."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bitrix24_agent_tools.approvals import ApprovalService
from bitrix24_agent_tools.approvals.chat import BitrixChatChannel
from bitrix24_agent_tools.client import BadRequest, Bitrix24
from bitrix24_agent_tools.events.online import EventRejected, parse_event
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.sandbox.events import form_encode
from bitrix24_agent_tools.toolbox import Toolbox

HANDLER = "https://approvals.example/b24/bot"


class Chat:
    """A sandbox portal, an agent acting as user 1, the approval bot of an installed app, approver user 5."""

    def __init__(self, approvers: tuple[str, ...] = ("5",), ttl: float = 30.0) -> None:
        self.portal = portal = Portal(seed=1)
        app = portal.register_app()
        tokens = portal.install_app(app, user_id=1)
        self.app = app
        app_client = Bitrix24(portal.app_auth(app, tokens), transport=portal.transport())
        agent = Bitrix24(portal.webhook_url, transport=portal.transport())
        self.channel = BitrixChatChannel(
            app_client,
            handler_url=HANDLER,
            application_token=app.application_token,
            member_id=portal.member_id,
            tenant=agent.portal,
        )
        self.service = ApprovalService(approvers=approvers, channels=[self.channel], ttl=ttl, poll=0.02)
        self.box = Toolbox(agent, packs=("core",), guard=Guard(Policy.writer(), self.service.confirmer()))
        self.outcomes: list[str] = []
        self.bodies: list[bytes] = []
        self._threads: list[threading.Thread] = []
        portal.events.deliver = self._deliver  # type: ignore[union-attr]

    def _deliver(self, url: str, body: bytes) -> None:
        """The portal POSTs the event to the handler (here: the channel's own verify-and-apply)."""
        assert url == HANDLER
        self.bodies.append(body)
        thread = threading.Thread(target=lambda: self.outcomes.append(self.post(body)))
        self._threads.append(thread)
        thread.start()

    def post(self, body: bytes) -> str:
        try:
            return self.channel.handle(parse_event(body), self.service)
        except EventRejected as exc:
            return f"rejected: {exc}"

    def settle(self) -> None:
        for thread in list(self._threads):
            thread.join(10)

    def user(self, user_id: int) -> Bitrix24:
        return Bitrix24(self.portal.add_webhook(user_id=user_id), transport=self.portal.transport())

    def write(self, title: str) -> tuple[threading.Thread, list[Any]]:
        out: list[Any] = []
        args = {"entity": "deal", "id": 1, "fields": {"TITLE": title}}
        thread = threading.Thread(target=lambda: out.append(self.box.run("b24_crm_update", args)))
        thread.start()
        return thread, out

    def message_to(self, user: int, after: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.portal.state["message"].values()):
                if message["dialogId"] == str(user) and message.get("keyboard") and message["id"] > after:
                    return dict(message)
            time.sleep(0.01)
        raise AssertionError(f"no message with buttons reached user {user}")

    def press(self, user: int, message: dict[str, Any], command: str, params: str | None = None) -> None:
        button = next(b for b in message["keyboard"] if b.get("COMMAND") == command)
        self.user(user).call(
            "im.message.command",
            {
                "MESSAGE_ID": message["id"],
                "BOT_ID": self.channel.bot_id,
                "COMMAND": command,
                "COMMAND_PARAMS": button["COMMAND_PARAMS"] if params is None else params,
            },
        )
        self.settle()

    def writes(self) -> int:
        return sum(1 for r in self.portal.requests if r.method == "crm.deal.update")

    def title(self) -> str:
        return str(self.portal.state["deal"][1]["TITLE"])


def test_the_approver_presses_approve_in_chat_and_the_write_runs_once() -> None:
    chat = Chat()
    thread, out = chat.write("Approved in chat")
    message = chat.message_to(5)
    assert chat.writes() == 0  # waiting: nothing written before the press
    approval = next(iter(chat.service.store._rows.values()))  # type: ignore[attr-defined]
    assert approval.summary.splitlines()[0].replace("[", "［").replace("]", "］") in message["text"]
    assert {b.get("TEXT") for b in message["keyboard"]} >= {"Approve", "Reject", "Edit"}
    chat.press(5, message, "approve")
    thread.join(10)
    assert not out[0].is_error and chat.title() == "Approved in chat" and chat.writes() == 1
    assert chat.outcomes == ["approved"]
    assert chat.box.guard.audit.rows()[-1].approved_by == "user 5 via bitrix24-chat"
    # the bot tells the approver what became of it
    assert any("approved by user 5" in m["text"] for m in chat.portal.state["message"].values())
    chat.outcomes.append(chat.post(chat.bodies[0]))  # the same event replayed
    chat.press(5, message, "approve")  # and pressed again
    assert chat.outcomes[-2:] == ["ignored: ANSWERED", "ignored: ANSWERED"] and chat.writes() == 1


def test_reject_in_chat_and_silence_until_expiry_write_nothing() -> None:
    chat = Chat()
    before = chat.title()
    thread, out = chat.write("Rejected in chat")
    chat.press(5, chat.message_to(5), "reject")
    thread.join(10)
    assert out[0].is_error and "rejected in Bitrix24 chat" in out[0].content
    late = Chat(ttl=0.3)
    thread, out2 = late.write("Nobody answered")
    message = late.message_to(5)
    thread.join(10)
    assert out2[0].is_error and "in time" in out2[0].content
    late.press(5, message, "approve")  # after expiry
    assert late.outcomes == ["ignored: EXPIRED"]
    assert chat.title() == before and chat.writes() == 0 and late.writes() == 0


def test_a_stranger_another_requests_button_or_a_forged_event_change_nothing() -> None:
    chat = Chat(approvers=("5",), ttl=2.0)
    thread, out = chat.write("First request")
    first = chat.message_to(5)
    # user 3 cannot press a button on user 5's message (not a participant), nor forge one with the id
    with pytest.raises(BadRequest):
        chat.press(3, first, "approve")
    # a message of user 3's own, pressed with the request's id: not the message sent for it
    chat.portal.state["message"][999] = {**first, "id": 999, "dialogId": "3"}
    chat.press(3, {**first, "id": 999}, "approve")
    # the approver presses a button naming another request on the right message
    chat.press(5, first, "approve", params="f" * 40)
    # an event with the right shape but without the app's token
    forged = chat.bodies[-1].replace(chat.app.application_token.encode(), b"0" * 32)
    assert chat.post(forged).startswith("rejected")
    thread.join(10)
    assert out[0].is_error and chat.writes() == 0
    assert chat.outcomes == [
        "ignored: not pressed on the message sent to this person for that request",
        "ignored: no such request",
    ]


def test_edit_in_chat_is_applied_and_asked_again() -> None:
    """The Edit button puts ``/edit <request> {...}`` in the input field (keyboards.md: ACTION=PUT); the
    person's message with it arrives as ONIMCOMMANDADD, context TEXTAREA."""
    chat = Chat()
    thread, out = chat.write("Model title")
    first = chat.message_to(5)
    edit = next(b for b in first["keyboard"] if b.get("TEXT") == "Edit")
    assert edit["ACTION"] == "PUT" and "Model title" in edit["ACTION_VALUE"]
    typed = edit["ACTION_VALUE"].replace("Model title", "Person title")
    chat.user(5).call("im.message.add", {"DIALOG_ID": chat.channel.bot_id, "MESSAGE": typed})
    chat.settle()
    second = chat.message_to(5, after=first["id"])
    assert "Person title" in second["text"] and chat.writes() == 0
    chat.press(5, second, "approve")
    thread.join(10)
    assert not out[0].is_error and chat.title() == "Person title" and chat.writes() == 1


def test_the_handler_app_refuses_unverified_posts() -> None:
    import httpx

    chat = Chat()
    app = chat.channel.asgi_app(chat.service)
    body = urlencode(form_encode({"event": "ONIMCOMMANDADD", "data": {}, "auth": {"application_token": "x"}}))

    async def post() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as http:
            answer = await http.post(
                "/", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            return answer.status_code

    import anyio

    assert anyio.run(post) == 403


def test_over_loopback_http_the_press_reaches_the_handler_and_the_write_runs_once() -> None:
    """The portal POSTs the event to the channel's ASGI handler served on a loopback port (uvicorn)."""
    import socket

    import httpx
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    chat = Chat()
    url = f"http://127.0.0.1:{port}/b24/bot"
    chat.channel.handler_url = url
    server = uvicorn.Server(
        uvicorn.Config(chat.channel.asgi_app(chat.service), host="127.0.0.1", port=port, log_level="warning")
    )
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)

    def over_http(target: str, body: bytes) -> None:
        def post() -> None:
            answer = httpx.post(
                target, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            chat.outcomes.append(f"{answer.status_code} {answer.text}")

        thread = threading.Thread(target=post)
        chat._threads.append(thread)
        thread.start()

    chat.portal.events.deliver = over_http  # type: ignore[union-attr]
    try:
        thread, out = chat.write("Approved over HTTP")
        chat.press(5, chat.message_to(5), "approve")
        thread.join(10)
        assert not out[0].is_error and chat.title() == "Approved over HTTP" and chat.writes() == 1
        assert chat.outcomes == ["200 approved"]
    finally:
        server.should_exit = True
        runner.join(10)


def test_the_sandbox_reads_keyboards_as_the_docs_give_them() -> None:
    """chat-bots-v2/imbot.v2/messages/message-keyboards.md: KEYBOARD as an object with BUTTONS, the bare list
    or a JSON string; every button but TYPE=NEWLINE needs TEXT and one action; imbot-message-add.md:
    KEYBOARD_ERROR otherwise."""
    import json

    chat = Chat()
    chat.channel.install()
    send = {"BOT_ID": chat.channel.bot_id, "DIALOG_ID": "5", "MESSAGE": "pick"}
    bot = chat.channel.client
    for keyboard in (
        {"BUTTONS": [{"TEXT": "Site", "LINK": "https://example.com/"}]},
        [{"TEXT": "Site", "LINK": "https://example.com/"}, {"TYPE": "NEWLINE"}],
        json.dumps([{"TEXT": "Put", "ACTION": "PUT", "ACTION_VALUE": "/help"}]),
    ):
        message_id = bot.call("imbot.message.add", {**send, "KEYBOARD": keyboard}).result
        assert chat.portal.state["message"][message_id]["keyboard"][0]["TEXT"] in ("Site", "Put")
    for bad in ([{"TEXT": "No action"}], [{"LINK": "https://example.com/"}], "not json", [5]):
        with pytest.raises(BadRequest) as refused:
            bot.call("imbot.message.add", {**send, "KEYBOARD": bad})
        assert refused.value.code == "KEYBOARD_ERROR"


def test_an_answer_on_another_channel_leaves_the_chat_buttons_without_effect() -> None:
    """One request, two channels: answered on the web page first, the chat press changes nothing."""
    chat = Chat()
    chat.service.web_url = "https://approve.example"
    thread, out = chat.write("Answered on the web")
    message = chat.message_to(5)
    approval = next(iter(chat.service.store._rows.values()))  # type: ignore[attr-defined]
    assert any(
        b.get("LINK") == f"https://approve.example/approvals/{approval.id}" for b in message["keyboard"]
    )
    chat.service.answer(approval.id, "reject", user=5, channel="web", reason="no")
    thread.join(10)
    chat.press(5, message, "approve")
    assert out[0].is_error and chat.writes() == 0 and chat.outcomes == ["ignored: ANSWERED"]


def test_the_handler_app_refuses_an_oversized_body_without_reading_a_truncated_one() -> None:
    """Above the events' body limit the handler answers 413 (it used to stop reading and parse the first
    megabyte as if it were the event)."""
    import anyio
    import httpx

    chat = Chat()
    app = chat.channel.asgi_app(chat.service)

    async def post() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as http:
            big = b"event=ONIMCOMMANDADD&x=" + b"a" * (2 << 20)
            answer = await http.post(
                "/", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            return answer.status_code

    assert anyio.run(post) == 413
