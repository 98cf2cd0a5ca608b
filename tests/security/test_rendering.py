"""What the person is shown can be trusted: rendered from the method's contract, never from the model's
framing (each case was a finding of the adversarial round; each fails on the guard that guessed from
names)."""

from __future__ import annotations

import base64
from typing import Any

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy, summarize
from bitrix24_agent_tools.masking import register_secret
from bitrix24_agent_tools.risk import classify
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def _ask(
    client: Bitrix24, method: str, params: dict[str, Any], packs: tuple[str, ...] = ("core",)
) -> ConfirmationRequest:
    shown: list[ConfirmationRequest] = []

    def reviewer(request: ConfirmationRequest) -> Decision:
        shown.append(request)
        return Decision.reject("only looking")

    pack = packs[-1]
    Toolbox(client, packs=packs, guard=Guard(Policy.admin(), reviewer)).run(
        f"b24_{pack}_call", {"method": method, "params": params}
    )
    assert shown, "the person was not asked"
    return shown[0]


def test_escape_sequences_cannot_erase_a_line_of_the_confirmation(client: Bitrix24) -> None:
    request = _ask(
        client,
        "crm.deal.update",
        {"id": 4, "fields": {"TITLE": "ok\x1b[1A\x1b[2K\rfine", "STAGE_ID": "LOSE"}},
    )
    assert "\x1b" not in request.summary and "\r" not in request.summary
    assert "\\x1b[1A\\x1b[2K\\x0dfine" in request.summary
    assert "STAGE_ID" in request.summary and "control characters" in request.summary
    assert request.params["fields"]["TITLE"] == "ok\x1b[1A\x1b[2K\rfine"  # what is sent is unchanged


def test_a_secret_shaped_word_is_shown_and_flagged_while_a_registered_secret_is_masked(
    client: Bitrix24,
) -> None:
    import uuid

    secret = "registered-" + uuid.uuid4().hex
    register_secret(secret)
    written = (
        f"auth={uuid.uuid4().hex[:12]} Bearer {uuid.uuid4().hex[:12]}"  # the model's words, no secret of ours
    )
    request = _ask(
        client, "crm.deal.update", {"id": 4, "fields": {"COMMENTS": written, "TITLE": f"x {secret}"}}
    )
    assert written in request.summary and "looks like a credential" in request.summary
    assert secret not in request.summary and "secret of this installation" in request.summary


def test_a_chat_recipient_is_named_not_a_bare_number(client: Bitrix24, portal: Portal) -> None:
    user = portal.state["user"][2]
    request = _ask(client, "im.message.add", {"DIALOG_ID": "2", "MESSAGE": "hi"}, ("core", "comms"))
    assert f"user '{user['NAME']} {user['LAST_NAME']}'" in request.summary.splitlines()[0]


def test_ids_are_named_beside_their_values(client: Bitrix24, portal: Portal) -> None:
    user = portal.state["user"][3]
    company = portal.entity("company", 2)
    assert company is not None
    request = _ask(client, "crm.deal.update", {"id": 4, "fields": {"ASSIGNED_BY_ID": 3, "COMPANY_ID": 2}})
    assert f"(user '{user['NAME']} {user['LAST_NAME']}')" in request.summary
    assert f"(company '{company['TITLE']}')" in request.summary
    missing = _ask(client, "crm.deal.update", {"id": 4, "fields": {"ASSIGNED_BY_ID": 999}})
    assert "user #999 was not found" in missing.summary


def test_a_phone_update_shows_that_the_portal_appends(client: Bitrix24, portal: Portal) -> None:
    contact = portal.entity("contact", 1)
    assert contact is not None and contact.get("PHONE")
    old = contact["PHONE"][0]
    request = _ask(
        client,
        "crm.contact.update",
        {"id": 1, "fields": {"PHONE": [{"VALUE": "+1 555 0100"}, {"VALUE": old["VALUE"]}]}},
    )
    assert "entries without ID are added" in request.summary
    assert "+ adds '+1 555 0100'" in request.summary
    assert f"'{old['VALUE']}' is already on the record" in request.summary  # sending old + new duplicates it
    replace = _ask(
        client, "crm.contact.update", {"id": 1, "fields": {"PHONE": [{"ID": old["ID"], "VALUE": "+7"}]}}
    )
    assert f"~ replaces #{old['ID']} '{old['VALUE']}' with '+7'" in replace.summary
    remove = _ask(
        client, "crm.contact.update", {"id": 1, "fields": {"PHONE": [{"ID": old["ID"], "DELETE": "Y"}]}}
    )
    assert f"- removes #{old['ID']} '{old['VALUE']}'" in remove.summary


def test_an_upload_is_shown_as_name_size_type_and_text() -> None:
    text = "Quarterly brief: ship on Friday"
    encoded = base64.b64encode(text.encode()).decode()
    summary = summarize(
        "disk.folder.uploadfile",
        {"id": 5, "data": {"NAME": "brief.txt"}, "fileContent": ["brief.txt", encoded]},
        None,
    )
    assert f"file 'brief.txt', {len(text)} bytes, text/plain, text '{text}'" in summary
    assert encoded not in summary
    binary = base64.b64encode(bytes(range(256))).decode()
    summary = summarize(
        "disk.folder.uploadfile", {"id": 5, "data": {"NAME": "x.png"}, "fileContent": ["x.png", binary]}, None
    )
    assert "file 'x.png', 256 bytes, image/png, sha256 " in summary


def test_a_booking_time_is_an_iso_datetime_in_its_zone() -> None:
    period = {
        "from": {"timestamp": 1723446900, "timezone": "Europe/Berlin"},
        "to": {"timestamp": 1723447800, "timezone": "Europe/Berlin"},
    }
    summary = summarize(
        "booking.v1.booking.add", {"fields": {"resourceIds": [1], "datePeriod": period}}, None
    )
    assert "2024-08-12T09:15:00+02:00 (Unix 1723446900)" in summary


def test_a_public_link_is_not_a_read() -> None:
    assert classify("disk.file.getExternalLink", {"id": 1}) == "write"
    assert classify("disk.folder.getExternalLink", {"id": 1}) == "write"


def test_the_record_is_the_one_the_portal_reads_not_one_the_model_adds(
    client: Bitrix24, portal: Portal
) -> None:
    """tasks.task.delete reads taskId: an ``id`` beside it is refused, and the model is told what it reads."""
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.admin(), lambda r: Decision.approve()))
    out = box.run("b24_core_call", {"method": "tasks.task.delete", "params": {"taskId": 1, "id": 2}})
    assert out.is_error and "does not read 'id'" in out.content and "it reads: taskId" in out.content
    assert portal.entity("task", 1) and portal.entity("task", 2)


def test_a_long_value_and_a_look_alike_key_are_called_out() -> None:
    body = "Hello team. " + "x" * 5000 + " Also: wire 50,000 EUR to account 123."
    summary = summarize("im.message.add", {"DIALOG_ID": "chat1", "MESSAGE": body}, None)
    assert "MESSAGE is 5,050 characters; the first 4,000 are shown here, all are sent" in summary
    summary = summarize("tasks.task.update", {"taskId": 1, "fields": {"TІTLE": "x"}}, None)  # Cyrillic І
    assert "has non-ASCII letters" in summary


def test_a_feed_post_says_who_will_read_it(client: Bitrix24, portal: Portal) -> None:
    """The portal's default audience is everyone (log-blogpost-add.md, DEST): the tool says so, the person
    sees it, and a post for named people goes to them only."""
    shown: list[ConfirmationRequest] = []
    box = Toolbox(
        client,
        packs=("core", "collab"),
        guard=Guard(Policy.writer(), lambda r: shown.append(r) or Decision.approve()),
    )
    out = box.run("b24_feed_post", {"message": "Office closed on Friday"})
    assert "for everyone" in out.content and "EVERYONE (all authorised users)" in shown[-1].summary
    user = portal.state["user"][3]
    out = box.run("b24_feed_post", {"message": "Your review", "to": {"users": [3]}})
    assert (
        f"user #3 (user '{user['NAME']} {user['LAST_NAME']}')" in shown[-1].summary
        or "user #3" in shown[-1].summary
    )
    assert "EVERYONE" not in shown[-1].summary and "for user #3" in out.content
