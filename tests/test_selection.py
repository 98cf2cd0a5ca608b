"""The first model call: the tools a request points to, below the pack level, within 400 tokens with the
loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitrix24_agent_tools.packs import PACKS, specs_for
from bitrix24_agent_tools.packs.loader import loader_spec
from bitrix24_agent_tools.selection import select_tools
from bitrix24_agent_tools.tokens import tools_cost

BY_NAME = {s.name: s for s in [*specs_for(PACKS), loader_spec()]}


def _phrases() -> list[str]:
    out = []
    for name in (
        "router_phrases.tsv",
        "router_heldout.tsv",
        "router_heldout_c.tsv",
        "router_heldout_e.tsv",
        "router_heldout_m.tsv",
        "router_heldout_t.tsv",
    ):
        for line in (Path(__file__).parent / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                out.append(line.split("\t")[0])
    return out


def test_every_first_call_fits_400_tokens_and_carries_the_loader() -> None:
    from bitrix24_agent_tools.demo import REQUEST

    for text in [REQUEST, "", "hello", "x" * 5000, *_phrases()]:
        chosen = select_tools(text)
        assert chosen.tools[-1] == "b24_load_pack" and len(chosen.tools) >= 2, text
        assert tools_cost([BY_NAME[n] for n in chosen.tools]) <= 400, (text, chosen.tools)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The Acme Logistics deal is signed: move it to WON and tell the manager in chat.",
            {"b24_crm_list", "b24_deal_move", "b24_chat_send"},
        ),
        ("Create a lead for Maria from Globex", {"b24_crm_create", "b24_user_find"}),
        ("Mark the task about the Acme offer as done", {"b24_task_complete"}),
        ("Convert lead 5 into a deal", {"b24_lead_convert"}),
        ("Передвинь сделку 12 на стадию WON", {"b24_deal_move"}),
        ("Создай задачу Ирине на завтра", {"b24_task_create", "b24_user_find"}),
        ("Mueve el trato 5 a la etapa ganada", {"b24_deal_move"}),
        ("Erstelle eine Aufgabe für Timur", {"b24_task_create"}),
        ("Pokaż wszystkie transakcje z tego tygodnia", {"b24_crm_list"}),
        ("Upload the brief to the Marketing folder on Drive", {"b24_file_upload"}),
        ("Забронируй переговорную на пятницу", {"b24_book"}),
        ("Why do I get ACCESS_DENIED on crm.deal.list?", {"b24_explain_error"}),
    ],
)
def test_the_request_points_to_its_tools(text: str, expected: set[str]) -> None:
    chosen = select_tools(text)
    assert expected <= set(chosen.tools), chosen


def test_a_request_that_points_nowhere_gets_the_everyday_reads_and_the_loader() -> None:
    chosen = select_tools("hello there")
    assert chosen.tools == ("b24_crm_list", "b24_user_find", "b24_task_list", "b24_crm_get", "b24_load_pack")
    assert not chosen.confident


def test_the_tools_a_request_points_to_come_first_and_everyday_reads_fill_the_rest_of_the_budget() -> None:
    chosen = select_tools("Move deal 3 to WON")
    assert chosen.tools[0] == "b24_deal_move" and chosen.tools[-1] == "b24_load_pack"
    assert "b24_crm_list" in chosen.tools and "b24_task_create" not in chosen.tools


def test_a_toolbox_for_a_request_offers_only_the_selection_and_loads_one_tool_on_demand(
    client: object,
) -> None:
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.guard import Guard, Policy
    from bitrix24_agent_tools.toolbox import Toolbox

    box = Toolbox(client, guard=Guard(Policy.writer(), AutoConfirmer())).for_request(  # type: ignore[arg-type]
        "Move deal 3 to WON", budget=400
    )
    names = [s.name for s in box.specs]
    assert names[0] == "b24_deal_move" and names[-1] == "b24_load_pack" and "b24_task_create" not in names
    refused = box.run("b24_task_create", {"title": "x"})
    assert refused.is_error and "not in the active packs" in refused.content
    assert box.run("b24_load_pack", {"pack": "b24_task_create"}).content.startswith("loaded b24_task_create")
    assert not box.run("b24_task_create", {"title": "Kick-off"}).is_error
    box.run("b24_load_pack", {"pack": "core"})
    assert {s.name for s in PACKS["core"].specs} <= {s.name for s in box.specs}


def test_the_shipped_cost_table_is_current() -> None:
    """selection reads tool costs from _static/tool_costs.json (no tokenizer at run time); regenerate it with
    ``python -c "from bitrix24_agent_tools.tokens import write_cost_table; write_cost_table()"``."""
    import json

    from bitrix24_agent_tools.tokens import COSTS, cost_table

    assert json.loads(COSTS.read_text()) == cost_table()


@pytest.mark.parametrize(
    ("text", "expected", "not_expected"),
    [
        ("Close the sprint", {"b24_sprint_change"}, {"b24_sprint_add_task"}),
        ("Cierra el sprint actual", {"b24_sprint_change"}, {"b24_sprint_add_task"}),
        ("Zamknij sprint", {"b24_sprint_change"}, {"b24_sprint_add_task"}),
        ("Add task 12 to the sprint", {"b24_sprint_add_task"}, {"b24_sprint_change"}),
        ("Which sprints does the Mobile app group have?", {"b24_sprint_list"}, {"b24_sprint_add_task"}),
        ("Send a message to the Sales team chat", {"b24_chat_find", "b24_chat_send"}, set()),
        ("Отправь в чат отдела продаж сообщение", {"b24_chat_find", "b24_chat_send"}, set()),
        ("Download the price list from Drive", {"b24_drive_find", "b24_file_download"}, {"b24_file_upload"}),
        ("Upload report.pdf to the Marketing folder", {"b24_file_upload"}, {"b24_file_download"}),
        ("Approve my pending workflow tasks", {"b24_workflow_task_answer"}, {"b24_workflow_start"}),
        ("Start the Deal approval workflow on deal 3", {"b24_workflow_start"}, {"b24_workflow_task_answer"}),
        ("What is on Boris's calendar tomorrow?", {"b24_calendar_events"}, {"b24_calendar_add"}),
        ("Show unpaid orders", {"b24_order_list"}, set()),
        ("Опубликуй страницу Контакты", {"b24_page_publish"}, set()),
        ("Which open lines do we have?", {"b24_openline_list"}, set()),
    ],
)
def test_pack_tools_are_picked_by_the_verb_and_the_thing_not_by_one_word(
    text: str, expected: set[str], not_expected: set[str]
) -> None:
    chosen = set(select_tools(text).tools)
    assert expected <= chosen and not (not_expected & chosen), (text, chosen)


@pytest.mark.parametrize(
    ("text", "tool", "not_tool"),
    [
        (
            "Send a message to the Sales team chat: the deal with Acme moved to the won stage",
            "b24_chat_send",
            "b24_deal_move",
        ),
        ("Напиши Борису сообщение: задача по сделке закрыта", "b24_chat_send", "b24_task_complete"),
        ("Post to the feed: please create a task for every new lead", "b24_feed_post", "b24_task_create"),
        (
            "Comment on deal 12 saying the customer wants a calendar invite",
            "b24_crm_comment",
            "b24_calendar_add",
        ),
    ],
)
def test_text_the_user_dictates_is_not_read_as_the_job(text: str, tool: str, not_tool: str) -> None:
    chosen = select_tools(text).tools
    assert tool in chosen and not_tool not in chosen, chosen


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("Download the price list to my computer", {"b24_drive_find", "b24_file_download"}),
        ("Is Boris at work today?", {"b24_workday"}),
        ("Who is in the Sales team chat?", {"b24_chat_find", "b24_chat_members"}),
        ("Zeig mir die Mitglieder des Chats Vertrieb", {"b24_chat_find", "b24_chat_members"}),
    ],
)
def test_a_finder_comes_with_the_job_that_needs_it(text: str, tools: set[str]) -> None:
    assert tools <= set(select_tools(text).tools)
