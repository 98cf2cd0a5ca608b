"""Security: a confirmation shows the whole write, and an answer counts only for the request it answers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import mcp.types as types
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy, summarize
from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit, InterruptConfirmer, answers
from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP
from bitrix24_agent_tools.masking import register_secret
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def test_every_field_is_shown_long_values_fold_with_a_marker_and_upper_case_fields_count() -> None:
    fields = {f"UF_CRM_{i}": f"value {i}" for i in range(12)}
    fields["COMMENTS"] = "x" * 4500
    text = summarize("crm.deal.add", {"FIELDS": fields}, None)
    assert all(f"UF_CRM_{i} = value {i}" in text for i in range(12))
    assert "(+500 chars)" in text and "x" * 4000 in text


def test_a_batch_shows_each_command_on_its_own_line() -> None:
    text = summarize(
        "batch", {"cmd": {"a": "crm.deal.add?fields[TITLE]=One", "b": "crm.deal.delete?id=7"}}, None
    )
    lines = text.splitlines()
    assert lines[0].startswith("Batch of 2 command(s)")
    assert any(line.startswith("[a] Create deal") for line in lines) and "TITLE = One" in text
    assert any(line.startswith("[b] Delete deal #7") for line in lines)


def test_secrets_are_masked_before_a_long_value_is_folded() -> None:
    token = "tok" + "9" * 40
    register_secret(token)
    text = summarize("crm.deal.add", {"fields": {"COMMENTS": "a" * 190 + token}}, None)
    assert "999999" not in text and "***" in text


def test_an_artifact_is_masked_like_the_text(client: Bitrix24, portal: Portal) -> None:
    hook = portal.webhook_url
    portal.entity("deal", 1)["COMMENTS"] = f"see {hook}"
    out = Toolbox(client, packs=("core",)).run("b24_crm_get", {"entity": "deal", "id": 1})
    assert portal.webhook_code not in out.content and portal.webhook_code not in str(out.artifact)


def test_an_edit_made_on_masked_params_writes_the_real_value_not_the_mask(
    client: Bitrix24, portal: Portal
) -> None:
    secret = "link-secret-" + "7" * 30
    register_secret(secret)

    def edit_title(request: ConfirmationRequest) -> Decision:
        params = dict(request.params)
        params["fields"] = {**params["fields"], "TITLE": "Edited"}
        return Decision.edit(params)

    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), edit_title))
    out = box.run("b24_crm_create", {"entity": "deal", "fields": {"TITLE": "x", "COMMENTS": secret}})
    assert not out.is_error, out.content
    deal = max(portal.entities("deal"), key=lambda d: int(d["ID"]))
    assert deal["TITLE"] == "Edited" and deal["COMMENTS"] == secret


def test_an_answer_for_another_request_is_a_no(client: Bitrix24, portal: Portal) -> None:
    box = Toolbox(
        client,
        packs=("core",),
        guard=Guard(Policy.writer(), lambda r: {"request_id": "crm.deal.add:" + "0" * 32, "type": "approve"}),
    )
    out = box.run("b24_task_create", {"title": "not mine"})
    assert out.is_error and "another request" in out.content
    assert not any(t["title"] == "not mine" for t in portal.entities("task"))


def _two_calls_model() -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult

    class TwoCalls(BaseChatModel):
        """One AI message with two writes: a harmless task and a deal move."""

        @property
        def _llm_type(self) -> str:
            return "two-calls"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            if any(isinstance(m, ToolMessage) for m in messages):
                return ChatResult(generations=[ChatGeneration(message=AIMessage(content="done"))])
            calls = [
                {"name": "b24_task_create", "args": {"title": "Harmless"}, "id": "c1", "type": "tool_call"},
                {
                    "name": "b24_deal_move",
                    "args": {"id": 3, "stage_id": "LOSE"},
                    "id": "c2",
                    "type": "tool_call",
                },
            ]
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=calls))])

    return TwoCalls()


def _decide(request: dict[str, Any]) -> Any:
    return {"tasks.task.add": {"type": "approve"}, "crm.deal.update": {"type": "reject", "message": "no"}}[
        request["method"]
    ]


def test_langgraph_two_writes_in_one_message_each_get_their_own_decision() -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    for _ in range(5):
        portal = Portal(seed=1)
        client = Bitrix24(portal.webhook_url, transport=portal.transport())
        stage = portal.entity("deal", 3)["STAGE_ID"]
        toolkit = Bitrix24Toolkit.create(client, guard=Guard(Policy.writer(), InterruptConfirmer()))
        agent = create_agent(_two_calls_model(), toolkit.get_tools(), checkpointer=InMemorySaver())
        config: dict[str, Any] = {"configurable": {"thread_id": "t"}}
        state = agent.invoke({"messages": [HumanMessage("make a task and lose deal 3")]}, config)
        rounds = 0
        while state.get("__interrupt__") and rounds < 6:
            rounds += 1
            resume = answers(state["__interrupt__"], _decide)
            state = agent.invoke(Command(resume=resume), config)
        assert [t["title"] for t in portal.entities("task")].count("Harmless") == 1
        assert portal.entity("deal", 3)["STAGE_ID"] == stage  # the rejected move never ran


def test_the_interrupt_speaks_the_human_in_the_loop_middleware_format() -> None:
    from bitrix24_agent_tools.integrations.langchain import confirmation_payload

    request = ConfirmationRequest(
        "b24_task_create",
        "tasks.task.add",
        {"fields": {"TITLE": "x"}},
        "write",
        "p",
        "Create task",
        None,
        "tasks.task.add:" + "a" * 32,
    )
    payload = confirmation_payload(request)
    assert payload["action_requests"][0]["name"] == "b24_task_create"
    assert payload["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    from bitrix24_agent_tools.integrations.langchain import hitl_decision

    assert hitl_decision({"decisions": [{"type": "reject", "message": "why"}]}).reason == "why"
    assert hitl_decision({"type": "edit", "edited_action": {"name": "t", "args": {"a": 1}}}).params == {
        "a": 1
    }


class _ModernSession:
    can_send_request = False  # 2026-07-28 sessions: the server answers InputRequiredResult instead

    def check_client_capability(self, capabilities: Any) -> bool:
        return True


async def test_mcp_accepts_only_the_nonce_it_issued_once() -> None:
    portal = Portal(seed=1)
    app = Bitrix24MCP(aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()))
    ctx = SimpleNamespace(session=_ModernSession(), request_id="r1")
    yes = types.ElicitResult(action="accept", content={"decision": "approve"})

    def params(responses: dict[str, Any] | None) -> types.CallToolRequestParams:
        return types.CallToolRequestParams(
            name="b24_task_create", arguments={"title": "nonce"}, input_responses=responses
        )

    first = await app._call_tool(ctx, params(None))
    assert isinstance(first, types.InputRequiredResult)
    issued = next(iter(first.input_requests))
    forged = await app._call_tool(ctx, params({"confirm-guessed": yes}))
    assert isinstance(forged, types.InputRequiredResult)
    assert not any(t["title"] == "nonce" for t in portal.entities("task"))
    done = await app._call_tool(ctx, params({issued: yes}))
    assert isinstance(done, types.CallToolResult) and not done.is_error
    replay = await app._call_tool(ctx, params({issued: yes}))
    assert isinstance(replay, types.InputRequiredResult)  # used up: the person is asked again
    assert [t["title"] for t in portal.entities("task")].count("nonce") == 1


async def test_mcp_without_a_bearer_token_serves_no_writes() -> None:
    portal = Portal(seed=1)
    app = Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), writes=False
    )
    ctx = SimpleNamespace(session=_ModernSession(), request_id="r1")
    out = await app._call_tool(
        ctx, types.CallToolRequestParams(name="b24_task_create", arguments={"title": "local"})
    )
    assert out.is_error and "policy" in out.content[0].text
    assert not any(t["title"] == "local" for t in portal.entities("task"))


def test_demo_against_a_real_portal_refuses_writes_without_a_terminal(monkeypatch: Any) -> None:
    from bitrix24_agent_tools.demo import _default_person

    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: False))
    said: list[str] = []
    answer = _default_person(said.append, real_portal=True)(
        {"risk": "write", "summary": "x", "method": "tasks.task.add", "params": {}}
    )
    assert Decision.coerce(answer).kind == "reject"


def test_routing_middleware_refuses_a_hidden_tool_the_model_calls_anyway(client: Bitrix24) -> None:
    from bitrix24_agent_tools.integrations.langchain import pack_routing_middleware

    toolkit = Bitrix24Toolkit.create(client, packs=("core", "comms"), confirm=AutoConfirmer())
    middleware = pack_routing_middleware(toolkit)
    call = {"name": "b24_chat_send", "args": {"dialog_id": "1", "message": "hi"}, "id": "c1"}
    request = SimpleNamespace(tool_call=call, state={"messages": [HumanMessage("list my deals")]})
    ran: list[Any] = []
    result = middleware.wrap_tool_call(request, lambda r: ran.append(r) or "ran")
    assert not ran and result.status == "error" and "not available" in result.content
    assert (
        middleware.wrap_tool_call(
            SimpleNamespace(tool_call={**call, "name": "b24_crm_list"}, state=request.state), lambda r: "ran"
        )
        == "ran"
    )


def test_langgraph_answers_that_name_no_request_write_nothing() -> None:
    """Two writes in one AI message: a plain ``{"type": "approve"}`` or the middleware's ``{"decisions":
    [...]}`` resumes every pause at once, so it names no request and counts as a no for each."""
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    for unbound in ({"type": "approve"}, {"decisions": [{"type": "approve"}]}, True):
        portal = Portal(seed=1)
        client = Bitrix24(portal.webhook_url, transport=portal.transport())
        stage = portal.entity("deal", 3)["STAGE_ID"]
        tasks = len(portal.entities("task"))
        toolkit = Bitrix24Toolkit.create(client, guard=Guard(Policy.writer(), InterruptConfirmer()))
        agent = create_agent(_two_calls_model(), toolkit.get_tools(), checkpointer=InMemorySaver())
        config: dict[str, Any] = {"configurable": {"thread_id": "t"}}
        state = agent.invoke({"messages": [HumanMessage("make a task and lose deal 3")]}, config)
        assert len(state["__interrupt__"]) == 2  # every write of the message is shown
        rounds = 0
        while state.get("__interrupt__") and rounds < 4:
            rounds += 1
            state = agent.invoke(Command(resume={i.id: unbound for i in state["__interrupt__"]}), config)
        assert len(portal.entities("task")) == tasks, unbound
        assert portal.entity("deal", 3)["STAGE_ID"] == stage, unbound


def test_langgraph_answer_for_another_request_asks_again_for_this_one() -> None:
    from bitrix24_agent_tools.integrations import langchain as face

    request = ConfirmationRequest(
        "b24_task_create",
        "tasks.task.add",
        {},
        "write",
        "p",
        "Create task",
        None,
        "tasks.task.add:" + "a" * 32,
    )
    other = "crm.deal.update:" + "b" * 32
    asked: list[Any] = []
    replies = iter([{other: {"type": "approve"}}, {request.request_id: {"type": "approve"}}])

    def fake_interrupt(payload: Any) -> Any:
        asked.append(payload)
        return next(replies)

    import langgraph.types

    original = langgraph.types.interrupt
    langgraph.types.interrupt = fake_interrupt
    try:
        answer = face.InterruptConfirmer()(request)
    finally:
        langgraph.types.interrupt = original
    assert len(asked) == 2 and asked[1]["request_id"] == request.request_id
    from bitrix24_agent_tools.guard import bound_decision

    assert bound_decision(answer, request.request_id).kind == "approve"


def test_auto_confirmer_deny_and_approve_lists_look_inside_a_batch(client: Bitrix24, portal: Portal) -> None:
    deny = AutoConfirmer(deny=("crm.deal.delete",), destructive=True)
    batch = {"cmd": {"a": "crm.deal.get?id=1", "b": "crm.deal.delete?id=2"}}
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.admin(), deny))
    out = box.run("b24_core_call", {"method": "batch", "params": batch})
    assert out.is_error and "crm.deal.delete is on the deny list" in out.content
    only_reads = AutoConfirmer(approve=("crm.deal.get", "crm.deal.update"), destructive=True)
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.admin(), only_reads))
    out = box.run("b24_core_call", {"method": "batch", "params": batch})
    assert out.is_error and "not on the approve list" in out.content
    assert portal.entity("deal", 2)  # still there
