"""The generator tool contract: drive/adrive feed responses in, throw refusals in, and return the output."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bitrix24_agent_tools.packs.base import (
    Call,
    CallRefused,
    HandlerGen,
    ToolContext,
    ToolOutput,
    adrive,
    drive,
    riskiest,
)


class _Args(BaseModel):
    ids: list[int]


def _sum_titles(ctx: ToolContext, args: _Args) -> HandlerGen:
    titles = []
    for deal_id in args.ids:
        try:
            result = yield Call("crm.deal.get", {"id": deal_id})
        except CallRefused as refused:
            return ToolOutput(content=f"refused: {refused.reason}", is_error=True)
        titles.append(result["TITLE"])
    return ToolOutput(content=",".join(titles), artifact=titles)


def _execute(call: Call) -> Any:
    if call.params["id"] == 13:
        raise CallRefused("person said no")
    return {"TITLE": f"deal {call.params['id']}"}


def test_drive_sends_each_response_back_into_the_handler() -> None:
    out = drive(_sum_titles(ToolContext(), _Args(ids=[1, 2])), _execute)
    assert out == ToolOutput(content="deal 1,deal 2", artifact=["deal 1", "deal 2"])


def test_drive_throws_a_refusal_into_the_handler() -> None:
    out = drive(_sum_titles(ToolContext(), _Args(ids=[1, 13, 2])), _execute)
    assert out.is_error and out.content == "refused: person said no"


async def test_adrive_behaves_like_drive() -> None:
    async def execute(call: Call) -> Any:
        return _execute(call)

    out = await adrive(_sum_titles(ToolContext(), _Args(ids=[1, 13])), execute)
    assert out.content == "refused: person said no"
    assert (await adrive(_sum_titles(ToolContext(), _Args(ids=[5])), execute)).artifact == ["deal 5"]


def test_riskiest_takes_the_highest_risk() -> None:
    assert riskiest([]) == "read"
    assert riskiest(["read", "destructive", "write"]) == "destructive"
