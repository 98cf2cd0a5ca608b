"""The sandbox's seed is data (issue #30): seed/crm.json and seed/packs.json, expanded by a small engine."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import httpx
from bitrix24_sandbox import Portal
from bitrix24_sandbox import data as seed_data


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_every_table_of_the_packs_file_is_seeded_with_its_values_expanded() -> None:
    tables = json.loads(resources.files("bitrix24_sandbox").joinpath("seed/packs.json").read_text("utf-8"))
    portal = Portal(seed=1, users=3)
    for kind in tables["tables"]:
        assert kind in portal.state, kind
    leftovers = [s for s in _strings(portal.state) if s.startswith("$")]
    assert leftovers == []
    assert len(portal.state["calendar_section"]) == 3  # one per seeded user
    assert portal.state["chat"][3]["USERS"] == [1, 2, 3]  # "$everyone"
    assert portal.state["chat"][1]["USERS"] == [1, 2]  # members the portal does not have are dropped
    assert (
        portal.state["scrum_sprint"][1]["dateStart"] == "2026-11-01T09:00:00+03:00"
    )  # 300 days after the epoch


def test_the_crm_vocabulary_comes_from_its_file() -> None:
    vocabulary = json.loads(resources.files("bitrix24_sandbox").joinpath("seed/crm.json").read_text("utf-8"))
    assert vocabulary["companies"] == seed_data.COMPANIES
    portal = Portal(seed=1)
    titles = {c["TITLE"] for c in portal.state["company"].values()}
    assert titles <= set(vocabulary["companies"]) | {
        f"{c} #{i}" for c in vocabulary["companies"] for i in range(99)
    }
    with httpx.Client(transport=portal.transport()) as http:
        listed = http.post(
            portal.webhook_url + "crm.status.list", json={"filter": {"ENTITY_ID": "DEAL_STAGE"}}
        )
    assert [s["STATUS_ID"] for s in listed.json()["result"]] == [
        s["id"] for s in vocabulary["deal_stages"]["0"]
    ]
