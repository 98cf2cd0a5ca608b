"""The public testing kit: a user's own agent test, written the way the README shows it."""

from __future__ import annotations

from typing import Any

from bitrix24_agent_tools.testing import ScriptedChatModel


def test_a_users_agent_runs_offline_on_the_scripted_model_and_the_sandbox(
    b24_portal: Any, b24_client: Any
) -> None:
    from langchain.agents import create_agent

    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit

    approve = AutoConfirmer()
    toolkit = Bitrix24Toolkit.create(b24_client, confirm=approve)
    model = ScriptedChatModel(
        [
            [("b24_crm_list", {"entity": "deal", "filter": {"%TITLE": "Globex"}, "limit": 1})],
            lambda results: [("b24_deal_move", {"id": int(results[-1]["rows"][0][0]), "stage_id": "WON"})],
            "The Globex deal is won.",
        ]
    )
    state = create_agent(model, toolkit.get_tools()).invoke({"messages": [("user", "Globex signed")]})
    assert state["messages"][-1].content == "The Globex deal is won."
    moved = [r for r in approve.seen if r.method == "crm.deal.update"]
    assert len(moved) == 1 and "STAGE_ID" in moved[0].summary
    deal = b24_portal.entity("deal", int(moved[0].params["id"]))
    assert deal["STAGE_ID"] == "WON" and "Globex" in deal["TITLE"]


def test_the_toolbox_fixture_offers_every_pack(b24_toolbox: Any) -> None:
    assert {"b24_crm_list", "b24_chat_send", "b24_sites_call"} <= {s.name for s in b24_toolbox.specs}


async def test_a_users_llama_index_agent_runs_on_the_scripted_twin(b24_portal: Any, b24_client: Any) -> None:
    from llama_index.core.agent.workflow import FunctionAgent

    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec
    from bitrix24_agent_tools.testing import ScriptedFunctionCallingLLM

    spec = Bitrix24ToolSpec.create(b24_client, confirm=AutoConfirmer())
    llm = ScriptedFunctionCallingLLM([[("b24_task_create", {"title": "From the twin"})], "Task created."])
    result = await FunctionAgent(tools=spec.to_tool_list(), llm=llm).run(user_msg="make a task")
    assert "Task created." in str(result)
    assert [t["title"] for t in b24_portal.entities("task")].count("From the twin") == 1
