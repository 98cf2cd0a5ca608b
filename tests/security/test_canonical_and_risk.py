"""Security: one canonical form of a call and one fail-closed risk model (issue: no write without a person's
yes).

Facts from the Bitrix core's rest module (public mirror avshatalov48/bitrix-core-business):
``classes/general/rest_provider.php`` ``CRestProvider::methodsBatch`` upper-cases the batch's keys, parses
each command with ``parse_url`` and tries the method lower-cased; ``lib/api/event.php`` ``eventOfflineGet``
lower-cases keys and reads ``clear`` with intval (absent = 1).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.risk import CATALOG, AmbiguousCall, canonical_call, canonical_method, classify
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


class Recorder:
    """A person who says no to everything, and remembers what they were asked."""

    def __init__(self) -> None:
        self.asked: list[ConfirmationRequest] = []

    def __call__(self, request: ConfirmationRequest) -> Decision:
        self.asked.append(request)
        return Decision.reject("no")


def _box(
    client: Bitrix24, confirm: Any = None, policy: Policy | None = None, allow: tuple[str, ...] = ()
) -> Toolbox:
    return Toolbox(client, packs=("core",), guard=Guard(policy or Policy.writer(), confirm, allow=allow))


def test_a_second_case_variant_of_cmd_cannot_smuggle_deletes_past_a_read_only_policy(
    client: Bitrix24, portal: Portal
) -> None:
    before = copy.deepcopy(portal.state["deal"])
    out = _box(client, AutoConfirmer(), Policy.read_only()).run(
        "b24_core_call", {"method": "batch", "params": {"cmd": {}, "CMD": {"a": "crm.deal.delete?id=1"}}}
    )
    assert out.is_error and "ambiguous" in out.content
    assert portal.state["deal"] == before


def test_the_sandbox_runs_an_upper_case_cmd_as_the_portal_does(client: Bitrix24, portal: Portal) -> None:
    """rest_provider.php methodsBatch: array_change_key_case(CASE_UPPER) — so the guard must judge CMD too."""
    response = client.call("batch", {"CMD": {"a": "crm.deal.get?id=1"}, "Halt": 0})
    assert response.result["result"]["a"]["ID"] == "1"


@pytest.mark.parametrize(
    "params",
    [
        {"cmd": {"a": "crm.deal.list"}, "extra": 1},  # unknown top-level key
        {"cmd": {}},  # empty batch
        {"cmd": []},
        {"cmd": {"a": "crm.deal.update?id=1&fields[TITLE]=x&FIELDS[TITLE]=y"}},  # case twins inside a command
        {"cmd": {"a": "crm.deal.update?id=1&id=2"}},  # a value set twice
        {"cmd": {"a": "event.offline.get?clear=0&clear[]=1"}},  # scalar and list: PHP keeps the list
        {"cmd": {"a": "crm.deal.list#?x=1"}},  # parse_url drops the fragment
        {"cmd": {"a": "crm.deal.update?fields.TITLE=x"}},  # PHP renames '.' in a key
        {"cmd": {"a": "crm.deal.list?filter[ID=1"}},  # unbalanced bracket
    ],
)
def test_ambiguous_batches_are_refused_not_guessed(client: Bitrix24, params: dict[str, Any]) -> None:
    out = _box(client, AutoConfirmer(), Policy.admin()).run(
        "b24_core_call", {"method": "batch", "params": params}
    )
    assert out.is_error and out.artifact == {"refused": "AMBIGUOUS"}


def test_case_twins_at_the_top_level_are_refused(client: Bitrix24, portal: Portal) -> None:
    out = _box(client, AutoConfirmer(), Policy.admin()).run(
        "b24_core_call",
        {
            "method": "crm.deal.update",
            "params": {"id": 1, "fields": {"TITLE": "a"}, "FIELDS": {"TITLE": "b"}},
        },
    )
    assert out.is_error and "differ only by case" in out.content


@pytest.mark.parametrize(
    "name", ["crm.deal.delete.json", " CRM.Deal.Delete ", "crm.deal.delete.xml", "Crm.Deal.DELETE.JSON"]
)
def test_suffixes_case_and_whitespace_do_not_change_the_risk(name: str) -> None:
    assert Guard(Policy.admin(), None, allow=("crm.deal.*",)).risk_of(name, {"id": 1}) == "destructive"
    assert classify(name, {"id": 1}) == "destructive"


def test_a_json_suffixed_delete_allowed_by_a_pattern_still_asks_a_person(
    portal: Portal, client: Bitrix24
) -> None:
    confirm = Recorder()
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.admin(), confirm, allow=("crm.deal.*",)))
    out = box.run("b24_core_call", {"method": "crm.deal.delete.json", "params": {"id": 2}})
    assert out.is_error and "rejected" in out.content
    assert [(r.method, r.risk) for r in confirm.asked] == [("crm.deal.delete", "destructive")]
    assert portal.entity("deal", 2) is not None


@pytest.mark.parametrize(
    "method",
    [
        "tasks.task.delegate",
        "tasks.task.approve",
        "tasks.task.defer",
        "im.chat.leave",
        "disk.file.markdeleted",
        "landing.landing.unpublic",
        "imconnector.send.messages",
        "log.blogpost.share",
        "timeman.pause",
        "crm.deal.recyclebin.restore",
        "user.update",
        "crm.lead.convert",
        "sonet_group.user.invite",
    ],
)
def test_unknown_verbs_are_at_least_writes(method: str) -> None:
    assert classify(method) in ("write", "destructive")


@pytest.mark.parametrize(
    ("params", "risk"),
    [
        ({"clear": 0}, "write"),
        ({"CLEAR": "0"}, "write"),
        ({"clear": "no"}, "write"),  # intval("no") == 0
        ({}, "destructive"),
        ({"clear": None}, "destructive"),
        ({"clear": [0]}, "destructive"),
        ({"clear": "1"}, "destructive"),
        ({"clear": " 1"}, "destructive"),
        ({"clear": True}, "destructive"),
    ],
)
def test_event_offline_get_is_destructive_unless_clear_reads_as_zero(
    params: dict[str, Any], risk: str
) -> None:
    assert classify("event.offline.get", params) == risk


def test_two_case_variants_of_clear_are_refused(client: Bitrix24) -> None:
    with pytest.raises(AmbiguousCall):
        canonical_call("event.offline.get", {"clear": 0, "CLEAR": 1})


_WRITES = sorted(m for c in CATALOG.values() for m, r in c.items() if r != "read" and m != "batch")
_LOOKALIKES = str.maketrans({"e": "е", "a": "а", "o": "о", "c": "с"})  # Cyrillic


@st.composite
def _method_variants(draw: Any) -> str:
    name = draw(st.sampled_from(_WRITES))
    name = "".join(ch.upper() if draw(st.booleans()) else ch for ch in name)
    if draw(st.booleans()):
        name += draw(st.sampled_from([".json", ".JSON", ".xml"]))
    if draw(st.integers(0, 4)) == 0:
        name = name.translate(_LOOKALIKES)
    return draw(st.sampled_from(["", " ", "\t", "\n"])) + name + draw(st.sampled_from(["", " ", "\n"]))


@given(method=_method_variants(), as_batch=st.booleans(), upper_cmd=st.booleans())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_write_reaches_the_portal_without_a_yes(method: str, as_batch: bool, upper_cmd: bool) -> None:
    """Property: whatever the spelling, a method the portal would run as a write gets a person's decision
    first, and the risk the client retries on is the guard's."""
    portal = Portal(seed=3, deals=5)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    confirm = Recorder()
    packs = tuple(CATALOG)
    box = Toolbox(client, packs=packs, guard=Guard(Policy.admin(), confirm, allow=("*",)))
    before = copy.deepcopy(portal.state)
    if as_batch:
        params = {("CMD" if upper_cmd else "cmd"): {"x": f"{method}?id=1"}}
        out = box.run("b24_core_call", {"method": "batch", "params": params})
    else:
        out = box.run(
            "b24_core_call",
            {"method": method.strip() if method.strip().isascii() else method, "params": {"id": 1}},
        )
    assert out.is_error
    assert portal.state == before  # nothing changed on the portal
    try:
        canonical = canonical_method(method)
    except AmbiguousCall:
        return  # refused outright
    if not as_batch:
        assert classify(canonical, {"id": 1}) != "read"
        assert box.guard.risk_of(method, {"id": 1}) == classify(method, {"id": 1})
