"""The method contracts: one for every catalog method, each naming the docs page it was read from, and the
tool that reads the docs' parameter tables."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bitrix24_agent_tools.contracts import ContractError, all_contracts, conform, contract_for
from bitrix24_agent_tools.guard.render import entities
from bitrix24_agent_tools.risk import CATALOG

ROOT = Path(__file__).resolve().parent.parent


def test_every_catalog_method_has_a_contract_that_cites_its_page() -> None:
    contracts = all_contracts()
    for pack, methods in CATALOG.items():
        for method, risk in methods.items():
            contract = contracts.get(method.lower())
            assert contract is not None, method
            assert contract.pack == pack and contract.risk == risk, method
            if contract.verified:
                assert (contract.doc.startswith("api-reference/") and contract.doc.endswith(".md")) or (
                    contract.doc.startswith("modules/rest/")
                ), (method, contract.doc)
            else:
                assert contract.doc.startswith("UNVERIFIED"), method
            if contract.record is not None:
                assert contract.param(contract.record[0]) is not None, method
    assert len(contracts) == sum(len(m) for m in CATALOG.values())


def test_every_name_lookup_is_a_catalog_read_that_its_contract_accepts() -> None:
    for entity, how in entities().items():
        contract = contract_for(how["get"])
        assert contract is not None and contract.risk == "read", entity
        conform(how["get"], {how["param"]: 1, **{k: 2 for k in how.get("with", [])}})


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("crm.deal.update", {"ID": 1, "FIELDS": {"title": "x"}}, {"id": 1, "fields": {"TITLE": "x"}}),
        (
            "crm.item.update",
            {"entityTypeId": 2, "id": 1, "fields": {"STAGE_ID": "NEW"}},
            {"entityTypeId": 2, "id": 1, "fields": {"stageId": "NEW"}},
        ),
        ("crm.deal.update", {"id": 1, "fields": {"UF_CRM_77": 1}}, {"id": 1, "fields": {"UF_CRM_77": 1}}),
        ("user.get", {"ID": 3, "filter": {"ACTIVE": True}}, {"ID": 3, "FILTER": {"ACTIVE": True}}),
    ],
)
def test_keys_are_sent_as_the_portal_reads_them(
    method: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert conform(method, params) == expected


@pytest.mark.parametrize(
    ("method", "params", "fragment"),
    [
        ("tasks.task.delete", {"taskId": 1, "id": 2}, "it reads: taskId"),
        ("crm.deal.update", {"id": 1, "OPPORTUNITY": 5}, "it reads: id, fields, params"),
        ("crm.deal.update", {"id": 1, "fields": {"NO_SUCH": 1}}, "fields takes: TITLE"),
        ("im.message.add", {"DIALOG_ID": "1", "fields": {"MESSAGE": "x"}}, "does not read 'fields'"),
        ("server.time", {"x": 1}, "it reads: no parameters"),
    ],
)
def test_what_a_method_does_not_read_is_refused_naming_what_it_reads(
    method: str, params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ContractError) as error:
        conform(method, params)
    assert fragment in str(error.value)


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "contracts_from_docs", ROOT / "tools" / "contracts_from_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["contracts_from_docs"] = module
    spec.loader.exec_module(module)
    return module


# A page in the docs' own markup (YFM tables), written for this test: a required parameter, an object whose
# keys are in an anchored table, a row holding a table of its values, and a table of more top-level ones.
PAGE = """# Do a thing some.thing.update

## Method Parameters

#|
|| **Name**
`type` | **Description** ||
|| **id***
[`integer`](../data-types.md) | Which thing ||
|| **fields**
[`object`](../data-types.md) | Its fields, [below](#fields) ||
|#

### Additional Parameters

#|
|| **Name**
`type` | **Description** ||
|| **mode**
[`string`](../data-types.md) | Possible values:
- `fast` — quick
- `slow` — careful ||
|#

### Parameter fields {#fields}

#|
|| **Name**
`type` | **Description** ||
|| **KIND**
[`crm_status`](../data-types.md) | One of:

#|
||KIND|Name||
||A|First||
|#
||
|| **OWNER_ID**
[`user`](../data-types.md) | Who ||
|#

## Code Examples

|| **not_a_parameter**
"""


def test_the_docs_reader_takes_names_types_requirement_values_and_nested_tables(tmp_path: Path) -> None:
    tool = _tool()
    page = tmp_path / "api-reference" / "some" / "some-thing-update.md"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE, encoding="utf-8")
    params = tool.read_page(tmp_path, "api-reference/some/some-thing-update.md")
    assert list(params) == ["id", "fields", "mode"]
    assert params["id"] == {"type": "integer", "required": True}
    assert params["mode"]["enum"] == ["fast", "slow"]
    assert list(params["fields"]["fields"]) == ["KIND", "OWNER_ID"]  # the inner value table ends nothing
    assert params["fields"]["fields"]["OWNER_ID"]["type"] == "user"
    old = {"type": "integer", "required": True, "ref": "thing"}
    assert tool.merge(old, params["id"])["ref"] == "thing"  # hand-read semantics survive a refresh


def test_the_contract_files_are_data_that_the_reader_keeps_in_shape() -> None:
    for file in (ROOT / "bitrix24_agent_tools" / "contracts").glob("*.json"):
        data = json.loads(file.read_text(encoding="utf-8"))
        if "methods" not in data:
            continue
        assert data["pack"] == file.stem
        for method, raw in data["methods"].items():
            assert set(raw) <= {"doc", "risk", "scope", "params", "record", "verified", "open", "result"}, (
                method
            )


def test_a_refused_generic_call_names_the_methods_the_tool_takes(client: Any) -> None:
    from bitrix24_agent_tools.toolbox import Toolbox

    out = Toolbox(client, packs=("core", "comms")).run(
        "b24_comms_call", {"method": "im.chat.add", "params": {}}
    )
    assert out.is_error and "b24_comms_call takes: im.message.add" in out.content


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tasks.task.delete", {"taskId": [1, 2]}),  # intval(array) is 1: another task than shown
        ("crm.deal.delete", {"id": "5abc"}),  # intval("5abc") is 5
        ("crm.item.update", {"entityTypeId": 2, "id": {"a": 1}}),
        ("tasks.task.update", {"taskId": 1, "fields": {"RESPONSIBLE_ID": 2, "responsibleId": 3}}),
    ],
)
def test_values_the_portal_would_read_as_another_record_are_refused(
    method: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ContractError):
        conform(method, params)
