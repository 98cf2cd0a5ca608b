"""A LangChain v1 agent on the sandbox with human-in-the-loop via LangGraph interrupts and pack routing.

python examples/langchain_agent.py            # offline: a scripted model plays the LLM
OPENAI_API_KEY=... python examples/langchain_agent.py --openai   # a real model (needs langchain-openai)
"""

from __future__ import annotations

import sys

from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from bitrix24_agent_tools import Bitrix24, Guard, Policy
from bitrix24_agent_tools.demo import REQUEST, _scripted_model
from bitrix24_agent_tools.integrations.langchain import (
    Bitrix24Toolkit,
    InterruptConfirmer,
    answers,
    pack_routing_middleware,
)
from bitrix24_agent_tools.sandbox import Portal


def main() -> int:
    portal = Portal(seed=7, deals=40)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    toolkit = Bitrix24Toolkit.create(
        client, packs=("core", "comms", "automation"), guard=Guard(Policy.writer(), InterruptConfirmer())
    )
    if "--openai" in sys.argv:
        from langchain.chat_models import init_chat_model

        model = init_chat_model("openai:gpt-4.1-mini")
    else:
        model = _scripted_model()
    agent = create_agent(
        model,
        toolkit.get_tools(),
        middleware=[pack_routing_middleware(toolkit)],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "example"}}
    state = agent.invoke({"messages": [{"role": "user", "content": REQUEST}]}, config)
    while state.get("__interrupt__"):

        def approve(request: dict) -> dict:
            print(f"approve? {request['summary']}  -> yes")
            return {"type": "approve"}

        # each answer is bound to the request it answers (LangGraph interrupt id + our request_id)
        state = agent.invoke(Command(resume=answers(state["__interrupt__"], approve)), config)
    print(state["messages"][-1].content)
    won = [d for d in portal.entities("deal") if d["STAGE_ID"] == "WON" and "Acme Logistics" in d["TITLE"]]
    tasks = [t for t in portal.entities("task") if t["title"].startswith("Kick-off")]
    return 0 if won and tasks and portal.state["timeline_comment"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
