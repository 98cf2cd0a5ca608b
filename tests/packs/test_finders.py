"""Every pack's everyday jobs end to end with typed tools, finders included (issue #29): each tool driven
through the Toolbox (guard, confirmation) against the sandbox, and the sandbox's state checked after it."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24, Bitrix24Error
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.packs import PACKS
from bitrix24_agent_tools.packs.render import rows_of
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


@pytest.fixture
def asked() -> list[Any]:
    return []


@pytest.fixture
def box(client: Bitrix24, asked: list[Any], tmp_path: Path) -> Toolbox:
    def person(request: Any) -> bool:
        asked.append(request)
        return True

    return Toolbox(client, packs=tuple(PACKS), guard=Guard(Policy.admin(), person), files_dir=str(tmp_path))


def _rows(box: Toolbox, tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    out = box.run(tool, args)
    assert not out.is_error, out.content
    return rows_of(json.loads(out.content))


def _ok(box: Toolbox, tool: str, args: dict[str, Any]) -> str:
    out = box.run(tool, args)
    assert not out.is_error, out.content
    return out.content


def _err(box: Toolbox, tool: str, args: dict[str, Any]) -> str:
    out = box.run(tool, args)
    assert out.is_error, out.content
    return out.content


# --- comms -----------------------------------------------------------------------------------------------


def test_a_group_chat_is_found_by_name_and_gets_the_message(box: Toolbox, portal: Portal) -> None:
    found = _rows(box, "b24_chat_find", {"name": "sales"})
    assert [r["name"] for r in found] == ["Sales team"]
    dialog = found[0]["dialog_id"]
    _ok(box, "b24_chat_send", {"dialog_id": dialog, "message": "Pipeline review at 3"})
    assert [m["text"] for m in portal.state["message"].values() if m["dialogId"] == dialog] == [
        "Pipeline review at 3"
    ]
    members = _rows(box, "b24_chat_members", {"dialog_id": dialog})
    users = portal.state["user"]
    assert [m["name"] for m in members] == [f"{users[i]['NAME']} {users[i]['LAST_NAME']}" for i in (1, 2, 5)]
    recent = _rows(box, "b24_chat_find", {})
    assert recent[0]["dialog_id"] == dialog and recent[0]["last"] == "Pipeline review at 3"


def test_a_chat_is_found_by_a_members_name_and_an_empty_search_says_what_it_searched(
    box: Toolbox, portal: Portal
) -> None:
    last_name = portal.state["user"][5]["LAST_NAME"]  # a member of "Sales team", not of the project chat
    assert {r["name"] for r in _rows(box, "b24_chat_find", {"name": last_name})} >= {
        "Sales team",
        "All employees",
    }
    out = json.loads(_ok(box, "b24_chat_find", {"name": "Nonexistent"}))
    assert out["count"] == 0 and "Nonexistent" in out["searched"]


def test_open_lines_are_listed(box: Toolbox) -> None:
    assert [r["name"] for r in _rows(box, "b24_openline_list", {})] == ["Support line", "Sales line"]


# --- content -----------------------------------------------------------------------------------------------


def test_drive_round_trip_without_bytes_through_the_model(
    box: Toolbox, portal: Portal, tmp_path: Path, asked: list[Any]
) -> None:
    drives = _rows(box, "b24_folder_list", {})
    assert {d["NAME"] for d in drives} == {"Shared drive", "My drive"}
    (tmp_path / "q4.csv").write_bytes(b"region;total\nEMEA;42\n")
    _ok(box, "b24_file_upload", {"folder_id": 1, "path": "q4.csv"})
    assert asked[-1].method == "disk.folder.uploadfile"
    stored = [o for o in portal.state["disk_object"].values() if o["NAME"] == "q4.csv"]
    assert len(stored) == 1
    found = _rows(box, "b24_drive_find", {"name": "Q4"})
    assert [f["NAME"] for f in found] == ["q4.csv"]
    text = _ok(box, "b24_file_download", {"file_id": int(found[0]["ID"]), "path": "copy/q4.csv"})
    assert (tmp_path / "copy" / "q4.csv").read_bytes() == b"region;total\nEMEA;42\n"
    assert "copy/q4.csv" in text
    # a second download never overwrites the first
    assert "already exists" in _err(
        box, "b24_file_download", {"file_id": int(found[0]["ID"]), "path": "copy/q4.csv"}
    )


def test_local_paths_stay_inside_the_files_folder(box: Toolbox, tmp_path: Path, client: Bitrix24) -> None:
    outside = tmp_path.parent / "secret.txt"
    outside.write_text("s3cret")
    assert "outside the files folder" in _err(
        box, "b24_file_upload", {"folder_id": 1, "path": "../secret.txt"}
    )
    assert "outside the files folder" in _err(box, "b24_file_upload", {"folder_id": 1, "path": str(outside)})
    assert "outside the files folder" in _err(box, "b24_file_download", {"file_id": 4, "path": "../x.xlsx"})
    plain = Toolbox(client, packs=("content",), guard=Guard(Policy.admin(), AutoConfirmer()))
    assert "local files are not enabled" in _err(plain, "b24_file_upload", {"folder_id": 1, "path": "a.txt"})


@pytest.fixture
def web() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                return
            body = b"%PDF-1.4 brochure"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_upload_from_a_url_refuses_private_addresses_unless_allowed(
    box: Toolbox, client: Bitrix24, portal: Portal, web: str
) -> None:
    refused = _err(box, "b24_file_upload", {"folder_id": 1, "url": f"{web}/files/brochure.pdf"})
    assert "non-public address" in refused
    assert not [o for o in portal.state["disk_object"].values() if o["NAME"] == "brochure.pdf"]
    local = Toolbox(
        client, packs=("content",), guard=Guard(Policy.admin(), AutoConfirmer()), allow_private_urls=True
    )
    _ok(local, "b24_file_upload", {"folder_id": 1, "url": f"{web}/files/brochure.pdf"})
    assert [o for o in portal.state["disk_object"].values() if o["NAME"] == "brochure.pdf"]
    assert "HTTP 302" in _err(local, "b24_file_upload", {"folder_id": 1, "url": f"{web}/moved", "name": "m"})


def test_the_client_downloads_only_from_the_portal(client: Bitrix24) -> None:
    with pytest.raises(ValueError, match="not a download URL"):
        client.download("https://elsewhere.example/rest/download.json?token=disk%7C4")
    record = client.call("disk.file.get", {"id": 4}).result
    assert client.download(record["DOWNLOAD_URL"]).startswith(b"Annual license")
    forged = record["DOWNLOAD_URL"].rsplit("%7C", 1)[0] + "%7C" + "0" * 24
    with pytest.raises(Bitrix24Error) as refused:
        client.download(forged)
    assert refused.value.status == 404


# --- automation --------------------------------------------------------------------------------------------


def test_workflow_template_start_and_a_pending_approval_answered(box: Toolbox, portal: Portal) -> None:
    templates = _rows(box, "b24_workflow_templates", {"entity": "deal"})
    assert [t["name"] for t in templates] == ["Deal approval"]
    _ok(box, "b24_workflow_start", {"template_id": int(templates[0]["id"]), "entity": "deal", "id": 2})
    assert any(w["DOCUMENT_ID"] == "DEAL_2" for w in portal.state["workflow"].values())
    pending = _rows(box, "b24_workflow_tasks", {})
    assert [t["name"] for t in pending] == ["Approve the discount"]
    _ok(
        box,
        "b24_workflow_task_answer",
        {"task_id": int(pending[0]["id"]), "answer": "reject", "comment": "no"},
    )
    assert portal.state["bizproc_task"][1]["STATUS"] != "0"
    assert json.loads(_ok(box, "b24_workflow_tasks", {}))["count"] == 0


# --- boards ------------------------------------------------------------------------------------------------


def test_sprints_listed_closed_and_started_in_order_and_story_points(box: Toolbox, portal: Portal) -> None:
    sprints = _rows(box, "b24_sprint_list", {"group_id": 1})
    assert [(s["name"], s["status"]) for s in sprints] == [("Sprint 1", "active"), ("Sprint 2", "planned")]
    # one active sprint per group: said before anyone is asked, and nothing changes
    assert "still active" in _err(box, "b24_sprint_change", {"sprint_id": 2, "action": "start"})
    assert portal.state["scrum_sprint"][2]["status"] == "planned"
    _ok(box, "b24_sprint_change", {"sprint_id": 1, "action": "complete"})
    _ok(box, "b24_sprint_change", {"sprint_id": 2, "action": "start"})
    assert [portal.state["scrum_sprint"][i]["status"] for i in (1, 2)] == ["completed", "active"]
    assert "only a planned sprint" in _err(box, "b24_sprint_change", {"sprint_id": 1, "action": "start"})
    _ok(box, "b24_story_points", {"task_id": 1, "points": "8"})
    assert portal.state["scrum_item"][1]["storyPoints"] == "8"


# --- services ----------------------------------------------------------------------------------------------


def test_another_persons_calendar_bookings_and_work_day(box: Toolbox) -> None:
    events = _rows(box, "b24_calendar_events", {"start": "2026-11-01", "end": "2026-11-30", "user_id": 1})
    assert "Team meeting" in {e["NAME"] for e in events}
    none = json.loads(
        _ok(box, "b24_calendar_events", {"start": "2026-11-01", "end": "2026-11-30", "user_id": 3})
    )
    assert none["count"] == 0 and "user 3" in none["searched"]
    booked = _rows(box, "b24_booking_list", {"start": "2026-11-01T00:00:00Z", "end": "2026-12-31T00:00:00Z"})
    assert booked[0]["resources"] == ["Meeting room A"] and booked[0]["from"].startswith("2026-11-02T")
    assert "STATUS=CLOSED" in _ok(box, "b24_workday", {"user_id": 2})


# --- commerce, collab, sites -------------------------------------------------------------------------------


def test_products_with_prices_and_paid_orders(box: Toolbox) -> None:
    products = _rows(box, "b24_product_find", {"name": "licen"})
    assert [(p["name"], p["price"]) for p in products] == [("Annual license", "1200.0 USD")]
    orders = _rows(box, "b24_order_list", {"paid": False})
    assert orders and all(o["payed"] == "N" for o in orders)


def test_a_project_is_found_with_its_members(box: Toolbox) -> None:
    groups = _rows(box, "b24_group_find", {"name": "mobile", "members": True})
    assert [g["name"] for g in groups] == ["Mobile app"]
    assert {m["user_id"] for m in groups[0]["members"]} == {"1", "2"}


def test_a_page_is_found_by_title_and_published(box: Toolbox, portal: Portal) -> None:
    sites = _rows(box, "b24_site_list", {"name": "contacts"})
    pages = sites[0]["pages"]
    assert [p["title"] for p in pages] == ["Contacts"] and pages[0]["published"] is False
    _ok(box, "b24_page_publish", {"page_id": int(pages[0]["page_id"])})
    assert portal.state["landing_page"][int(pages[0]["page_id"])]["PUBLIC"] == "Y"


# --- CRM multi-fields --------------------------------------------------------------------------------------


def test_a_second_phone_is_added_not_duplicated_and_the_change_is_shown(
    box: Toolbox, client: Bitrix24, asked: list[Any]
) -> None:
    def phones() -> list[str]:
        return [p["VALUE"] for p in client.call("crm.contact.get", {"id": 3}).result.get("PHONE", [])]

    before = phones()
    # old + new as a bare list would duplicate the old value on the portal: refused with the fix
    assert '"add"' in _err(
        box, "b24_crm_update", {"entity": "contact", "id": 3, "fields": {"PHONE": [*before, "+1 555 0100"]}}
    )
    assert phones() == before
    _ok(box, "b24_crm_update", {"entity": "contact", "id": 3, "fields": {"PHONE": {"add": ["+1 555 0100"]}}})
    assert phones() == [*before, "+1 555 0100"]
    assert "+ adds '+1 555 0100'" in asked[-1].summary
    _ok(box, "b24_crm_update", {"entity": "contact", "id": 3, "fields": {"PHONE": {"remove": [before[0]]}}})
    assert phones() == ["+1 555 0100"]
    assert "removes" in asked[-1].summary
    _ok(
        box,
        "b24_crm_update",
        {"entity": "contact", "id": 3, "fields": {"PHONE": {"replace": ["+1 555 0199"]}}},
    )
    assert phones() == ["+1 555 0199"]
    assert "is not a current value" in _err(
        box, "b24_crm_update", {"entity": "contact", "id": 3, "fields": {"PHONE": {"remove": ["+0 000"]}}}
    )


# --- people and departments in any language ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("отдел продаж", "sales"),
        ("Vertrieb", "sales"),
        ("vendas", "sales"),
        ("dział sprzedaży", "sales"),
        ("soporte", "support"),
        ("техподдержка", "support"),
        ("produkcja", "production"),
    ],
)
def test_a_department_is_found_in_any_of_the_routers_languages(
    box: Toolbox, portal: Portal, query: str, kind: str
) -> None:
    wanted = {"sales": "Sales", "support": "Support", "production": "Production"}[kind]
    rows = _rows(box, "b24_user_find", {"query": query})
    assert [r["DEPARTMENT"] for r in rows if "DEPARTMENT" in r] == [wanted]


def test_a_person_is_found_by_a_name_typed_in_another_script_or_spelling(
    box: Toolbox, portal: Portal
) -> None:
    portal.state["user"][2].update(NAME="Boris", LAST_NAME="Müller")
    portal.state["user"][5].update(NAME="Elena", LAST_NAME="Sokolova")
    assert [r["ID"] for r in _rows(box, "b24_user_find", {"query": "Борис Мюллер"})] == ["2"]
    assert [r["ID"] for r in _rows(box, "b24_user_find", {"query": "Sokolowa"})] == ["5"]
    assert [r["ID"] for r in _rows(box, "b24_user_find", {"query": "Елена Соколова"})] == ["5"]
    none = json.loads(_ok(box, "b24_user_find", {"query": "Nobody Atall"}))
    assert none["count"] == 0 and "Nobody Atall" in none["searched"]


def test_a_record_read_shows_names_beside_its_ids(box: Toolbox, portal: Portal) -> None:
    """Names beside IDs in every read (issue #29): b24_crm_get gave a contact's ID only."""
    deal = next(d for d in portal.state["deal"].values() if d.get("CONTACT_ID"))
    contact = portal.state["contact"][int(deal["CONTACT_ID"])]
    out = json.loads(_ok(box, "b24_crm_get", {"entity": "deal", "id": int(deal["ID"])}))
    assert out["CONTACT"] == f"{contact['NAME']} {contact['LAST_NAME']}"


def test_a_feed_posts_audience_is_shown_by_name(box: Toolbox, asked: list[Any]) -> None:
    """A post's audience as the person reads it: who, by name (DR2 is the Sales department)."""
    _ok(box, "b24_feed_post", {"message": "Q4 targets", "to": {"departments": [2], "users": [5]}})
    summary = asked[-1].summary
    department = box.client.call("department.get", {"ID": 2}).result[0]["NAME"]  # type: ignore[union-attr]
    assert f"department #2 (department '{department}') with sub-departments" in summary
    _ok(box, "b24_feed_post", {"message": "All hands"})
    assert "EVERYONE" in asked[-1].summary


def test_a_url_upload_connects_to_the_address_it_checked(
    client: Bitrix24, portal: Portal, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once and checked; the fetch goes to that address (a DNS answer that changes
    between the check and the connection — rebinding — cannot redirect it); Host still names the site."""
    import socket

    port = int(web.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        if host == "files.rebind.test":  # first answer 127.0.0.1; any later answer would be elsewhere
            return real("127.0.0.1" if len(asked) == 1 else "192.0.2.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    box = Toolbox(
        client, packs=("content",), guard=Guard(Policy.admin(), AutoConfirmer()), allow_private_urls=True
    )
    _ok(box, "b24_file_upload", {"folder_id": 1, "url": f"http://files.rebind.test:{port}/files/flyer.pdf"})
    assert asked.count("files.rebind.test") == 1
    assert [o for o in portal.state["disk_object"].values() if o["NAME"] == "flyer.pdf"]


def test_a_download_through_an_async_client_runs_on_asyncio_and_a_sync_call_says_so(
    portal: Portal, tmp_path: Path
) -> None:
    import asyncio

    from bitrix24_agent_tools.client import AsyncBitrix24

    aclient = AsyncBitrix24(portal.webhook_url, transport=portal.async_transport())
    box = Toolbox(
        aclient=aclient,
        packs=("content",),
        guard=Guard(Policy.admin(), AutoConfirmer()),
        files_dir=str(tmp_path),
    )
    refused = box.run("b24_file_download", {"file_id": 4})
    assert refused.is_error and "only an async client" in refused.content
    done = asyncio.run(box.arun("b24_file_download", {"file_id": 4, "path": "a.xlsx"}))
    assert not done.is_error, done.content
    assert (tmp_path / "a.xlsx").read_bytes().startswith(b"Annual license")
