"""Write the notebooks (one per face) and execute them, so they are committed with their outputs.

    python tools/build_notebooks.py      # then commit notebooks/*.ipynb

tests/test_examples.py executes them again and checks every cell ran without an error.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

HELPERS = '''import matplotlib.pyplot as plt
import pandas as pd

from bitrix24_agent_tools.frames import to_dataframe  # results as DataFrames (extra [notebook])


def bars(values, title):
    """A horizontal bar chart of a mapping (matplotlib, through pandas)."""
    ax = pd.Series(values).sort_values().plot.barh(title=title, figsize=(7, 0.4 * len(values) + 1.2))
    ax.set_xlabel('')
    plt.show()
'''

NOTEBOOKS = {
    "client_and_export.ipynb": [
        (
            "markdown",
            "# The client and a fast export\n\nA sandbox portal (offline), the `Bitrix24` client, an "
            "exactly-once "
            "export of 20,000 deals with a progress bar, a table and a chart of deals per stage. Swap the "
            "sandbox "
            "for `Bitrix24.from_env()` to use your portal.",
        ),
        ("code", HELPERS),
        (
            "code",
            "from tqdm.auto import tqdm  # a widget bar in notebooks, text elsewhere\n\nfrom "
            "bitrix24_agent_tools import Bitrix24\nfrom "
            "bitrix24_agent_tools.sandbox import Portal\n\n"
            "portal = Portal(seed=1, deals=20_000, rate_limit='standard')\n"
            "client = Bitrix24(portal.webhook_url, transport=portal.transport())\n"
            "client.call('crm.deal.list', {'select': ['ID', 'TITLE'], 'order': {'ID': 'ASC'}}).total",
        ),
        (
            "code",
            "with tqdm(total=20_000, unit='deal', desc='export') as bar:\n"
            "    rows = client.export('crm.deal.list', {'select': ['ID', 'TITLE', 'STAGE_ID', "
            "'OPPORTUNITY']},\n"
            "                         progress=lambda done, total: bar.update(done - bar.n))\n"
            'print(f\'{len(rows):,} deals, each once: {len({r["ID"] for r in rows}) == len(rows) == '
            "20_000}')",
        ),
        ("code", "to_dataframe(rows[:8], ['ID', 'TITLE', 'STAGE_ID', 'OPPORTUNITY'])"),
        (
            "code",
            "from collections import Counter\n\nstages = {s['STATUS_ID']: s['NAME'] for s in "
            "client.call('crm.status.list', "
            "{'filter': {'%ENTITY_ID': 'DEAL_STAGE'}}).result}\n"
            "per_stage = Counter(stages.get(r['STAGE_ID'], r['STAGE_ID']) for r in rows)\n"
            "bars(dict(per_stage.most_common()), 'Deals per stage')",
        ),
    ],
    "langchain_hitl.ipynb": [
        (
            "markdown",
            "# A LangChain agent with a person in the loop\n\nEach write pauses the LangGraph run with an "
            "interrupt; the person's answer is bound to the request it answers. The first model call carries "
            "only the tools the request points to (under 400 tokens) and `b24_load_pack`. The model here is "
            "scripted (offline); pass any LangChain chat model instead.",
        ),
        ("code", HELPERS),
        (
            "code",
            "from langchain.agents import create_agent\nfrom langgraph.checkpoint.memory import "
            "InMemorySaver\n"
            "from langgraph.types import Command\n\nfrom bitrix24_agent_tools import Bitrix24, Guard, "
            "Policy\n"
            "from bitrix24_agent_tools.demo import REQUEST, _scripted_model\n"
            "from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit, InterruptConfirmer, "
            "answers, "
            "pack_routing_middleware\nfrom bitrix24_agent_tools.packs import PACKS\nfrom "
            "bitrix24_agent_tools.sandbox import Portal\n\n"
            "portal = Portal(seed=7, deals=40)\nclient = Bitrix24(portal.webhook_url, "
            "transport=portal.transport())\n"
            "guard = Guard(Policy.writer(), InterruptConfirmer())\n"
            "toolkit = Bitrix24Toolkit.create(client, packs=tuple(PACKS), guard=guard, loader=True)\n"
            "agent = create_agent(_scripted_model(), toolkit.get_tools(), "
            "middleware=[pack_routing_middleware(toolkit)],\n"
            "                     checkpointer=InMemorySaver())\nREQUEST",
        ),
        (
            "code",
            "config = {'configurable': {'thread_id': 'notebook'}}\nasked = []\n\n"
            "def person(request):\n    asked.append(request)\n    return {'type': 'approve'}\n\n"
            "state = agent.invoke({'messages': [{'role': 'user', 'content': REQUEST}]}, config)\n"
            "while state.get('__interrupt__'):\n    state = "
            "agent.invoke(Command(resume=answers(state['__interrupt__'], person)), config)\n"
            "print(state['messages'][-1].content)",
        ),
        (
            "code",
            "to_dataframe([{'#': i + 1, 'asked': r['summary'].splitlines()[0], 'risk': r['risk']} for i, "
            "r in "
            "enumerate(asked)], "
            "['#', 'asked', 'risk'])",
        ),
        (
            "code",
            "to_dataframe([{'method': r.method, 'risk': r.risk, 'decision': r.decision, 'status': "
            "r.status} for r "
            "in guard.audit.rows()],\n"
            "      ['method', 'risk', 'decision', 'status'])",
        ),
        (
            "code",
            "from bitrix24_agent_tools.selection import select_tools\nfrom bitrix24_agent_tools.tokens "
            "import shipped_costs\n\n"
            "costs = shipped_costs()  # as shipped: no tokenizer needed\nfirst = sum(costs[t] for t in "
            "select_tools(REQUEST).tools)\n"
            "core = sum(costs[s.name] for s in PACKS['core'].specs)\n"
            "everything = sum(costs[s.name] for p in PACKS.values() for s in p.specs)\n"
            "bars({'first call (ours)': first, 'core pack': core, 'all 12 packs': everything, "
            "'mcp-bitrix24': 1393, "
            "'fast-bitrix24-mcp': 9369}, 'Tool-schema tokens per model call (o200k)')",
        ),
    ],
    "llamaindex_workflow.ipynb": [
        (
            "markdown",
            "# LlamaIndex: a workflow that asks a person before each write\n\n`WorkflowConfirmer` turns a "
            "write "
            "into an `InputRequiredEvent`; the answer comes back as a `HumanResponseEvent` — here answered "
            "in code, in an app by a person.",
        ),
        ("code", HELPERS),
        (
            "code",
            "from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent, "
            "StartEvent, "
            "StopEvent, Workflow, step\n\nfrom bitrix24_agent_tools import Bitrix24\n"
            "from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec, WorkflowConfirmer\n"
            "from bitrix24_agent_tools.sandbox import Portal\n\nportal = Portal(seed=1)\n"
            "spec = Bitrix24ToolSpec.create(Bitrix24(portal.webhook_url, transport=portal.transport()), "
            "packs=('core', 'comms'),\n"
            "                               confirm=WorkflowConfirmer())\ntools = {t.metadata.name: t for t "
            "in spec.to_tool_list()}\n"
            "sorted(tools)",
        ),
        (
            "code",
            "class FollowUp(Workflow):\n    @step\n    async def follow_up(self, ctx: Context, ev: "
            "StartEvent) -> StopEvent:\n"
            "        deals = await tools['b24_crm_list'].acall(ctx=ctx, entity='deal', filter={'STAGE_ID': "
            "'NEW'}, limit=3)\n"
            "        created = await tools['b24_task_create'].acall(ctx=ctx, title=ev.get('title'))\n"
            "        told = await tools['b24_chat_send'].acall(ctx=ctx, dialog_id='2', "
            "message=ev.get('title'))\n"
            "        return StopEvent(result=[str(created), str(told)])\n\n"
            "handler = FollowUp(timeout=30).run(title='Call the new leads today')\nprompts = []\n"
            "async for event in handler.stream_events():\n    if isinstance(event, InputRequiredEvent):\n"
            "        prompts.append(event.prefix)\n"
            "        answer = 'yes' if 'task' in event.prefix.lower() else {'reject': 'not now'}\n"
            "        handler.ctx.send_event(HumanResponseEvent(response=answer, waiter_id=event.waiter_id))\n"
            "result = await handler\nresult",
        ),
        (
            "code",
            "to_dataframe([{'asked': p.splitlines()[0], 'answer': 'yes' if 'task' in p.lower() else "
            "'no'} for p in "
            "prompts], "
            "['asked', 'answer'])",
        ),
        (
            "code",
            "to_dataframe([t for t in portal.entities('task') if t['title'] == 'Call the new leads today'], "
            "['id', 'title', 'responsibleId', 'status'])",
        ),
    ],
}


def main() -> int:
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [
            nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
            for kind, src in cells
        ]
        NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
        nbformat.write(nb, ROOT / "notebooks" / name)
        print("wrote", name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
