"""Deterministic demo data for the sandbox portal: users, departments, CRM records, pipelines, tasks,
chats."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

_SEED = json.loads(resources.files(__package__).joinpath("seed/crm.json").read_text(encoding="utf-8"))
FIRST: list[str] = _SEED["first_names"]
LAST: list[str] = _SEED["last_names"]
COMPANIES: list[str] = _SEED["companies"]
PRODUCTS: list[str] = _SEED["products"]
SOURCES: list[str] = _SEED["sources"]
DEPARTMENTS: list[tuple[int, str, int | None]] = [
    (d["id"], d["name"], d["parent"]) for d in _SEED["departments"]
]
# Pipelines (crm.category) and their stages (crm.status ENTITY_ID=DEAL_STAGE / DEAL_STAGE_<cat>).
DEAL_STAGES: dict[int, list[tuple[str, str]]] = {
    int(cat): [(s["id"], s["name"]) for s in stages] for cat, stages in _SEED["deal_stages"].items()
}
CATEGORIES: dict[int, str] = {int(cat): name for cat, name in _SEED["categories"].items()}
LEAD_STATUSES: list[tuple[str, str]] = [(s["id"], s["name"]) for s in _SEED["lead_statuses"]]
SOURCE_ENUM: list[dict[str, str]] = _SEED["source_channel_items"]

EPOCH = datetime.fromisoformat(_SEED["epoch"])  # the seed's "now" (the portal's clock starts 300 days later)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def sonet_group_record(group_id: int, when: str, owner: str, **fields: Any) -> dict[str, Any]:
    """A workgroup as sonet_group.get returns it (sonet-group/sonet-group-get.md): a closed, visible,
    non-project group of one member unless ``fields`` say otherwise."""
    record: dict[str, Any] = {
        "ID": str(group_id),
        "SITE_ID": "s1",
        "DATE_CREATE": when,
        "DATE_UPDATE": when,
        "ACTIVE": "Y",
        "VISIBLE": "Y",
        "OPENED": "N",
        "CLOSED": "N",
        "SUBJECT_ID": "1",
        "OWNER_ID": owner,
        "KEYWORDS": None,
        "DESCRIPTION": None,
        "NUMBER_OF_MEMBERS": "1",
        "DATE_ACTIVITY": when,
        "SUBJECT_NAME": "Workgroups",
        "PROJECT": "N",
        "IS_EXTRANET": "N",
    }
    record.update(fields)
    return record


def seed_state(
    seed: int, *, users: int, deals: int, leads: int, contacts: int, companies: int, tasks: int
) -> dict[str, Any]:
    """Build the whole portal state; the same seed and sizes always give the same data."""
    rng = random.Random(seed)
    state: dict[str, Any] = {
        "user": {},
        "department": {},
        "lead": {},
        "deal": {},
        "contact": {},
        "company": {},
        "task": {},
        "activity": {},
        "timeline_comment": {},
        "task_comment": {},
        "message": {},
        "notification": {},
        "smart_item": {},
    }
    for dept_id, name, parent in DEPARTMENTS:
        state["department"][dept_id] = {
            "ID": str(dept_id),
            "NAME": name,
            "PARENT": str(parent) if parent else None,
            "UF_HEAD": "1" if dept_id == 1 else str(dept_id),
            "SORT": 500,  # departments/department-get.md: every example carries SORT (500 by default)
        }
    for uid in range(1, users + 1):
        first, last = FIRST[(uid - 1) % len(FIRST)], LAST[rng.randrange(len(LAST))]
        login = f"{first.lower()}.{last.lower()}"
        state["user"][uid] = {
            "ID": str(uid),
            "ACTIVE": True,
            "NAME": first,
            "LAST_NAME": last,
            "EMAIL": f"{login.encode('ascii', 'ignore').decode() or 'user' + str(uid)}@example.com",
            "WORK_POSITION": "Administrator"
            if uid == 1
            else rng.choice(["Sales manager", "Account manager", "Support"]),
            "UF_DEPARTMENT": [1 if uid == 1 else rng.choice([2, 2, 3, 4])],
            "IS_ADMIN": uid == 1,
            # user/user-get.md, example: IS_ONLINE Y|N, USER_TYPE employee|extranet|email, DATE_REGISTER
            "IS_ONLINE": "N",
            "USER_TYPE": "employee",
            "DATE_REGISTER": iso(EPOCH - timedelta(days=30)),
        }
    user_ids = list(range(1, users + 1))
    for cid in range(1, companies + 1):
        base = COMPANIES[(cid - 1) % len(COMPANIES)]
        title = base if cid <= len(COMPANIES) else f"{base} #{cid}"
        state["company"][cid] = _stamp(
            rng,
            {
                "ID": str(cid),
                "TITLE": title,
                "COMPANY_TYPE": rng.choice(["CUSTOMER", "PARTNER", "SUPPLIER"]),
                "INDUSTRY": rng.choice(["IT", "MANUFACTURING", "RETAIL", "DELIVERY"]),
                "PHONE": [{"VALUE": f"+1 555 01{cid:04d}", "VALUE_TYPE": "WORK"}],
                "ASSIGNED_BY_ID": str(rng.choice(user_ids)),
            },
            cid,
        )
    for cid in range(1, contacts + 1):
        first, last = FIRST[rng.randrange(len(FIRST))], LAST[rng.randrange(len(LAST))]
        state["contact"][cid] = _stamp(
            rng,
            {
                "ID": str(cid),
                "NAME": first,
                "LAST_NAME": last,
                "EMAIL": [{"VALUE": f"contact{cid}@example.org", "VALUE_TYPE": "WORK"}],
                "PHONE": [{"VALUE": f"+7 900 {cid:07d}", "VALUE_TYPE": "MOBILE"}],
                "COMPANY_ID": str(rng.randint(1, companies)) if companies else None,
                "ASSIGNED_BY_ID": str(rng.choice(user_ids)),
            },
            cid,
        )
    for lid in range(1, leads + 1):
        first = FIRST[rng.randrange(len(FIRST))]
        state["lead"][lid] = _stamp(
            rng,
            {
                "ID": str(lid),
                "TITLE": f"Inquiry: {rng.choice(PRODUCTS)}",
                "NAME": first,
                "STATUS_ID": rng.choice([s for s, _ in LEAD_STATUSES]),
                "SOURCE_ID": rng.choice(SOURCES),
                "OPPORTUNITY": f"{rng.randrange(5, 200) * 100}.00",
                "CURRENCY_ID": "USD",
                "ASSIGNED_BY_ID": str(rng.choice(user_ids)),
                "COMMENTS": "",
            },
            lid,
        )
    stage_pool = [(cat, stage) for cat, stages in DEAL_STAGES.items() for stage, _ in stages]
    for did in range(1, deals + 1):
        cat, stage = (
            stage_pool[rng.randrange(len(stage_pool))]
            if did % 5 == 0
            else (0, DEAL_STAGES[0][rng.randrange(7)][0])
        )
        product, named = rng.choice(PRODUCTS), COMPANIES[rng.randrange(len(COMPANIES))]
        amount = f"{rng.randrange(10, 500) * 100}.00"
        contact_id = str(rng.randint(1, contacts)) if contacts else None
        company_id = str(rng.randint(1, companies)) if companies else None
        # Coherent across entities: the company a deal's title names is the deal's company (an agent that
        # finds a deal by its title must find the right company, and the other way round).
        buyer = state["company"][int(company_id)]["TITLE"] if company_id else named
        state["deal"][did] = _stamp(
            rng,
            {
                "ID": str(did),
                "TITLE": f"{product} for {buyer}",
                "CATEGORY_ID": str(cat),
                "STAGE_ID": stage,
                "OPPORTUNITY": amount,
                "CURRENCY_ID": "USD",
                "CONTACT_ID": contact_id,
                "COMPANY_ID": company_id,
                "ASSIGNED_BY_ID": str(rng.choice(user_ids)),
                "SOURCE_ID": rng.choice(SOURCES),
                "CLOSED": "Y" if stage.endswith(("WON", "LOSE")) else "N",
                "COMMENTS": "",
                "ORIGIN_ID": None,
                "UF_CRM_SOURCE_CHANNEL": rng.choice(SOURCE_ENUM)["ID"],
            },
            did,
        )
    for tid in range(1, tasks + 1):
        created = EPOCH + timedelta(hours=tid * 7)
        state["task"][tid] = {
            "id": str(tid),
            "title": f"{rng.choice(['Call', 'Email', 'Prepare offer for', 'Follow up with'])} "
            f"{COMPANIES[rng.randrange(len(COMPANIES))]}",
            "description": "",
            "status": rng.choice(["2", "3", "5"]),
            "responsibleId": str(rng.choice(user_ids)),
            "createdBy": "1",
            "deadline": iso(created + timedelta(days=rng.randint(1, 14))),
            "createdDate": iso(created),
            "changedDate": iso(created),
            "priority": rng.choice(["1", "2"]),
            "groupId": "0",
        }
    from bitrix24_sandbox.seed_packs import seed_packs

    seed_packs(state, users)
    return state


def _stamp(rng: random.Random, record: dict[str, Any], n: int) -> dict[str, Any]:
    created = EPOCH + timedelta(minutes=n * 37)
    record["DATE_CREATE"] = iso(created)
    record["DATE_MODIFY"] = iso(created + timedelta(hours=rng.randint(0, 48)))
    record.setdefault("CREATED_BY_ID", "1")
    return record
