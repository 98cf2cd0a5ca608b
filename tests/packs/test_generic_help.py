"""Generic calls a model can navigate from the method contracts (issue #29): each b24_<pack>_call names its
methods; a refused call lists the nearest allowed ones; a call the portal refuses for its parameters answers
with what the method needs and an example; method help gives parameters, an example and the result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.contracts import contract_for
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.packs import CATALOG, PACKS
from bitrix24_agent_tools.packs.diagnostics import example
from bitrix24_agent_tools.toolbox import Toolbox


@pytest.fixture
def box(client: Bitrix24) -> Toolbox:
    return Toolbox(client, packs=tuple(PACKS), guard=Guard(Policy.admin(), AutoConfirmer()))


@pytest.mark.parametrize("pack", [p for p in PACKS if p != "core"])
def test_every_generic_call_names_every_method_of_its_pack(pack: str) -> None:
    spec = next(s for s in PACKS[pack].specs if s.generic)
    for method in CATALOG[pack]:
        head, _, last = method.rpartition(".")
        assert f"{head}." in spec.description and last in spec.description, method


def test_a_refused_method_lists_the_nearest_allowed_ones_first(box: Toolbox) -> None:
    out = box.run("b24_sites_call", {"method": "landing.page.publish", "params": {}})
    assert out.is_error
    assert out.content.split("takes: ", 1)[1].startswith("landing.landing.publication")


def test_a_call_the_portal_refuses_answers_with_what_the_method_needs(box: Toolbox) -> None:
    out = box.run("b24_comms_call", {"method": "im.message.add", "params": {"DIALOG_ID": "chat1"}})
    assert out.is_error and out.content.startswith("MESSAGE_EMPTY")
    assert "needs DIALOG_ID, MESSAGE" in out.content and 'e.g. params={"DIALOG_ID"' in out.content
    # the example it gives is itself a call the contract accepts
    fixed = box.run(
        "b24_comms_call", {"method": "im.message.add", "params": {"DIALOG_ID": "chat1", "MESSAGE": "hi"}}
    )
    assert not fixed.is_error, fixed.content


def test_a_refusal_about_the_caller_gets_no_parameter_help(client: Bitrix24, portal: Any) -> None:
    portal.faults.fail_next(1, "ACCESS_DENIED", 403, method="im.message.add")  # the caller is refused
    box = Toolbox(client, packs=("comms",), guard=Guard(Policy.admin(), AutoConfirmer()))
    out = box.run(
        "b24_comms_call", {"method": "im.message.add", "params": {"DIALOG_ID": "1", "MESSAGE": "x"}}
    )
    assert out.is_error and "ACCESS_DENIED" in out.content and "needs" not in out.content


@pytest.mark.parametrize(
    "method", [m for pack in CATALOG.values() for m in pack if (c := contract_for(m)) and c.verified]
)
def test_every_examples_keys_are_what_the_method_reads(method: str) -> None:
    contract = contract_for(method)
    assert contract is not None
    made = example(contract)
    for name, value in made.items():
        spec = contract.param(name)
        assert spec is not None, name
        if spec.required:
            assert value not in (None, ""), name
        if isinstance(value, dict) and spec.fields:
            assert all(spec.key(k) is not None for k in value), (name, value)
    assert {n for n, p in contract.params.items() if p.required} <= set(made)


def test_method_help_gives_parameters_an_example_and_the_result(box: Toolbox) -> None:
    out = box.run("b24_check_method", {"method": "tasks.task.add"})
    assert "reads fields*" in out.content and "e.g. params=" in out.content and "returns task" in out.content
    shown = json.loads(out.content.split("e.g. params=", 1)[1].split("; docs", 1)[0])
    assert "fields" in shown
