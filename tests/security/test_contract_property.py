"""Property: the portal's state changes only as the approved summary said.

Calls are drawn from the method contracts — the record key in any case, aliases and case twins beside it,
fields nested or at the top level in any case, unknown keys, ``$result`` references in every position of a
batch, and edits — and sent through the generic call tool to the sandbox with a reviewer that approves
everything it is shown. Whatever was refused must leave the portal as it was; whatever ran must have changed
only the record the summary named, and only fields the summary shows with the values it shows.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.contracts import contract_for
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox

# (method, state table, entity's record parameter as the contract spells it, a writable field, its values)
TARGETS = [
    ("crm.deal.update", "deal", "TITLE", ["Renamed", "New name"]),
    ("crm.contact.update", "contact", "NAME", ["Olga", "Pedro"]),
    ("crm.lead.update", "lead", "TITLE", ["Hot lead", "Cold lead"]),
    ("tasks.task.update", "task", "TITLE", ["Call back", "Send offer"]),
    ("tasks.task.delete", "task", None, []),
    ("crm.deal.delete", "deal", None, []),
]


def _case(draw: Any, name: str) -> str:
    return str(draw(st.sampled_from([name, name.lower(), name.upper(), name[:1].upper() + name[1:]])))


@st.composite
def calls(draw: Any) -> tuple[str, dict[str, Any], str, list[Any]]:
    method, table, field, values = draw(st.sampled_from(TARGETS))
    contract = contract_for(method)
    assert contract is not None and contract.record is not None
    record_key = contract.record[0]
    target = draw(st.sampled_from([1, 2, 3]))
    params: dict[str, Any] = {_case(draw, record_key): target}
    if draw(st.booleans()):  # an alias or a second key that could name another record
        alias = draw(st.sampled_from(["id", "ID", "taskId", "TASKID", "entityId", "deal_id"]))
        if alias not in params:
            params[alias] = draw(st.sampled_from([4, 5]))
    if field is not None:
        value = draw(st.sampled_from(values))
        placement = draw(st.sampled_from(["fields", "FIELDS", "Fields", "top"]))
        key = _case(draw, field)
        if placement == "top":
            params[key] = value
        else:
            params[placement] = {key: value}
            if draw(st.booleans()):
                params[placement][draw(st.sampled_from(["NO_SUCH_FIELD", "stage", "Title2"]))] = "x"
    return method, params, table, values


def _changes(before: dict[str, Any], after: dict[str, Any], tables: set[str]) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for table in tables:
        for ident in set(before[table]) | set(after[table]):
            old, new = before[table].get(ident), after[table].get(ident)
            if old != new:
                out[(table, int(ident))] = (old, new)
    return out


def _assert_as_shown(shown: list[ConfirmationRequest], changes: dict[tuple[str, int], Any]) -> None:
    if not changes:
        return
    assert shown, f"the portal changed without any confirmation: {changes}"
    summary = shown[-1].summary
    named = {int(m) for m in re.findall(r"#(\d+)", summary.splitlines()[0])}
    for (table, ident), (old, new) in changes.items():
        assert ident in named, f"{table} #{ident} changed, but the person was shown {summary!r}"
        if new is None:
            assert summary.startswith("Delete"), summary
            continue
        for key, value in new.items():
            if (
                old is not None
                and old.get(key) != value
                and key.lower() not in ("changeddate", "date_modify")
            ):
                line = next((ln for ln in summary.splitlines() if re.search(rf"\b{key}\b", ln, re.I)), None)
                assert line is not None and str(value) in line, f"{key}={value!r} not as shown: {summary!r}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls(), st.booleans())
def test_state_changes_only_as_the_approved_summary_said(call: Any, edit: bool) -> None:
    method, params, _table, values = call
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    shown: list[ConfirmationRequest] = []

    def reviewer(request: ConfirmationRequest) -> Decision:
        shown.append(request)
        if edit and len(shown) == 1 and values:
            # the person changes the value they were shown, naming the key in another case
            key = next(
                (f for f in request.fields if f.lower().endswith("title") or f.lower().endswith("name")), None
            )
            if key is not None:
                return Decision.edit({key.rsplit(".", 1)[-1].lower(): values[-1] + " (edited)"})
        return Decision.approve()

    box = Toolbox(client, packs=("core",), guard=Guard(Policy.admin(), reviewer))
    before = copy.deepcopy(portal.state)
    out = box.run("b24_core_call", {"method": method, "params": params})
    after = portal.state
    changes = _changes(before, after, {"deal", "contact", "lead", "task"})
    if out.is_error:
        assert not changes, f"refused ({out.content}) but the portal changed: {changes}"
    _assert_as_shown(shown, changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [
            ("crm.deal.update", "id=$result[a]&fields[TITLE]=x"),  # the target decided by a reference
            ("crm.deal.update", "id=2&fields=$result[a]"),  # a whole record from a reference
            ("crm.deal.update", "id=2&fields[TITLE]=$result[a][TITLE]"),  # text from a reference
            ("event.offline.get", "clear=$result[a][ID]"),  # the destructive switch from a reference
            ("crm.deal.update", "id=2&fields[$result[a]]=x"),  # a key from a reference
            ("tasks.task.delete", "taskId=1&id=2"),  # two keys that could name the record
        ]
    )
)
def test_references_and_aliases_that_decide_a_write_are_refused(command: tuple[str, str]) -> None:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    asked: list[ConfirmationRequest] = []
    box = Toolbox(
        client, packs=("core",), guard=Guard(Policy.admin(), lambda r: asked.append(r) or Decision.approve())
    )
    before = copy.deepcopy(portal.state)
    batch = {"cmd": {"a": "crm.deal.get?id=1", "b": f"{command[0]}?{command[1]}"}}
    out = box.run("b24_core_call", {"method": "batch", "params": batch})
    assert out.is_error and not asked, out.content
    assert portal.state == before
