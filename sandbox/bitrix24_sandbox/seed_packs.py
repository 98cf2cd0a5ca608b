"""Demo data for the packs beyond CRM and tasks: a drive, a scrum group, a catalog with orders, calendars and
booking resources, a site, consents, business processes, AI engines. Coherent with the CRM seed (companies by
name)."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from bitrix24_sandbox.data import COMPANIES, EPOCH, iso, sonet_group_record


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def seed_packs(state: dict[str, Any], users: int) -> None:
    """Add every other pack's seed to ``state`` (int-keyed tables, so the portal's id counters follow
    them)."""
    first_company = COMPANIES[0]
    when = iso(EPOCH)
    # Drive: a shared storage (root folder 1) and user 1's storage (root folder 10).
    state["disk_storage"] = {
        1: {
            "ID": "1",
            "NAME": "Shared drive",
            "CODE": None,
            "MODULE_ID": "disk",
            "ENTITY_TYPE": "common",
            "ENTITY_ID": "shared_files_s1",
            "ROOT_OBJECT_ID": "1",
        },
        2: {
            "ID": "2",
            "NAME": "My drive",
            "CODE": None,
            "MODULE_ID": "disk",
            "ENTITY_TYPE": "user",
            "ENTITY_ID": "1",
            "ROOT_OBJECT_ID": "10",
        },
    }

    def obj(
        oid: int, name: str, kind: str, parent: int | None, storage: int, content: str = ""
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ID": str(oid),
            "NAME": name,
            "CODE": None,
            "STORAGE_ID": str(storage),
            "TYPE": kind,
            "PARENT_ID": str(parent) if parent else None,
            "DELETED_TYPE": "0",
            "CREATE_TIME": when,
            "UPDATE_TIME": when,
            "DELETE_TIME": None,
            "CREATED_BY": "1",
            "UPDATED_BY": "1",
            "DELETED_BY": "0",
        }
        if kind == "file":
            record.update(
                {
                    "FILE_ID": str(1000 + oid),
                    "SIZE": str(len(content.encode())),
                    "GLOBAL_CONTENT_VERSION": "1",
                    "CONTENT": _b64(content),
                }
            )
        return record

    state["disk_object"] = {
        1: obj(1, "Shared drive", "folder", None, 1),
        2: obj(2, "Contracts", "folder", 1, 1),
        3: obj(3, f"{first_company} contract.pdf", "file", 2, 1, f"Service contract with {first_company}"),
        4: obj(4, "Price list 2026.xlsx", "file", 1, 1, "Annual license;1200\nSupport plan;300"),
        5: obj(5, "Marketing", "folder", 1, 1),
        10: obj(10, "My drive", "folder", None, 2),
        11: obj(11, "Notes.txt", "file", 10, 2, "Call Northwind Foods on Monday"),
    }
    # Workgroups: a scrum project with a sprint, a backlog and an epic; a plain workgroup.
    owner = "1"
    state["sonet_group"] = {
        1: sonet_group_record(
            1,
            when,
            owner,
            NAME="Mobile app",
            DESCRIPTION="Scrum team of the mobile app",
            NUMBER_OF_MEMBERS="2",
            PROJECT="Y",
            SCRUM_MASTER_ID=owner,
        ),
        2: sonet_group_record(
            2, when, owner, NAME="Sales team", DESCRIPTION="Sales department workgroup", OPENED="Y"
        ),
    }
    second = "2" if users >= 2 else "1"
    state["sonet_member"] = {
        1: {"GROUP_ID": "1", "MEMBERS": [{"USER_ID": owner, "ROLE": "A"}, {"USER_ID": second, "ROLE": "E"}]},
        2: {"GROUP_ID": "2", "MEMBERS": [{"USER_ID": owner, "ROLE": "A"}]},
    }
    start = EPOCH + timedelta(days=300)
    state["scrum_sprint"] = {
        1: {
            "id": 1,
            "groupId": 1,
            "entityType": "sprint",
            "name": "Sprint 1",
            "goal": "Login and sign-up",
            "sort": 1,
            "createdBy": 1,
            "modifiedBy": 1,
            "dateStart": iso(start),
            "dateEnd": iso(start + timedelta(days=14)),
            "status": "active",
        },
        2: {
            "id": 2,
            "groupId": 1,
            "entityType": "sprint",
            "name": "Sprint 2",
            "goal": "",
            "sort": 2,
            "createdBy": 1,
            "modifiedBy": 1,
            "dateStart": iso(start + timedelta(days=14)),
            "dateEnd": iso(start + timedelta(days=28)),
            "status": "planned",
        },
    }
    state["scrum_stage"] = {}
    for sprint in (1, 2):
        for offset, (name, kind, color) in enumerate(
            (("New", "NEW", "00C4FB"), ("In Progress", "WORK", "47D1E2"), ("Done", "FINISH", "75D900"))
        ):
            sid = sprint * 10 + offset
            state["scrum_stage"][sid] = {
                "id": str(sid),
                "name": name,
                "sort": str((offset + 1) * 100),
                "type": kind,
                "sprintId": str(sprint),
                "color": color,
            }
    state["scrum_backlog"] = {3: {"id": 3, "groupId": 1, "createdBy": 1, "modifiedBy": 0}}
    state["scrum_epic"] = {
        1: {
            "id": 1,
            "groupId": 1,
            "name": "Onboarding",
            "description": "First-run experience",
            "createdBy": 1,
            "modifiedBy": 0,
            "color": "#69dafc",
        }
    }
    state["scrum_item"] = {}  # task id → {"sprintId", "stageId"} for tasks on a sprint's board
    for tid in (1, 2):
        if tid in state.get("task", {}):
            state["task"][tid]["groupId"] = "1"
            state["scrum_item"][tid] = {"taskId": tid, "sprintId": 1, "stageId": 10 + tid - 1}
    # Live feed
    state["blogpost"] = {
        1: {
            "ID": "1",
            "TITLE": "Welcome",
            "DETAIL_TEXT": "Welcome to the sandbox portal!",
            "AUTHOR_ID": "1",
            "DEST": ["UA"],
            "DATE_PUBLISH": when,
        }
    }
    state["blogcomment"] = {}
    # Commerce: a catalog (iblock 23) with prices (base price type 1) and orders with payments.
    products = [
        ("Annual license", 1200.0),
        ("Support plan", 300.0),
        ("Training day", 800.0),
        ("Cloud migration package", 4500.0),
        ("Warehouse audit", 2000.0),
    ]
    state["catalog_product"] = {}
    state["catalog_price"] = {}
    for pid, (name, price) in enumerate(products, start=1):
        state["catalog_product"][pid] = {
            "id": pid,
            "iblockId": 23,
            "name": name,
            "active": "Y",
            "available": "Y",
            "code": name.lower().replace(" ", "_"),
            "xmlId": str(pid),
            "createdBy": 1,
            "dateCreate": when,
            "sort": 100 * pid,
            "quantity": 100,
            "vatIncluded": "Y",
            "previewText": None,
            "detailText": None,
            "iblockSectionId": None,
        }
        state["catalog_price"][pid] = {
            "id": pid,
            "productId": pid,
            "catalogGroupId": 1,
            "currency": "USD",
            "price": price,
            "extraId": None,
            "quantityFrom": None,
            "quantityTo": None,
            "timestampX": when,
        }
    state["sale_order"] = {}
    state["sale_payment"] = {}
    for oid, (pid, qty, paid) in enumerate(((1, 2, "Y"), (2, 1, "N"), (4, 1, "N")), start=1):
        total = products[pid - 1][1] * qty
        state["sale_order"][oid] = {
            "id": oid,
            "accountNumber": str(oid),
            "lid": "s1",
            "personTypeId": 1,
            "currency": "USD",
            "price": total,
            "payed": paid,
            "canceled": "N",
            "statusId": "P" if paid == "Y" else "N",
            "userId": 1,
            "companyId": None,
            "responsibleId": 1,
            "comments": f"Order from {COMPANIES[oid % len(COMPANIES)]}",
            "dateInsert": when,
            "dateUpdate": when,
            "discountValue": 0,
            "marked": "N",
            "basketItems": [
                {
                    "productId": pid,
                    "name": products[pid - 1][0],
                    "quantity": qty,
                    "price": products[pid - 1][1],
                    "currency": "USD",
                }
            ],
        }
        state["sale_payment"][oid] = {
            "id": oid,
            "orderId": oid,
            "accountNumber": f"{oid}/1",
            "paid": paid,
            "sum": total,
            "currency": "USD",
            "paySystemId": 1,
            "paySystemName": "Bank transfer",
            "datePaid": when if paid == "Y" else None,
            "dateBill": when,
            "isReturn": "N",
            "comments": "",
        }
    # Calendars: one section per user; two events of user 1.
    state["calendar_section"] = {
        uid: {
            "ID": str(uid),
            "NAME": "My calendar",
            "DESCRIPTION": "",
            "COLOR": "#9cbeee",
            "TEXT_COLOR": "#283000",
            "CAL_TYPE": "user",
            "OWNER_ID": str(uid),
            "CREATED_BY": str(uid),
            "DATE_CREATE": when,
            "TIMESTAMP_X": when,
            "EXTERNAL_TYPE": "local",
        }
        for uid in range(1, users + 1)
    }
    day = (EPOCH + timedelta(days=301)).replace(hour=10, minute=0)
    state["calendar_event"] = {
        1: {
            "ID": "1",
            "NAME": f"Call with {first_company}",
            "DATE_FROM": iso(day),
            "DATE_TO": iso(day + timedelta(hours=1)),
            "OWNER_ID": "1",
            "CAL_TYPE": "user",
            "SECTION_ID": "1",
            "DESCRIPTION": "",
            "ACCESSIBILITY": "busy",
            "IMPORTANCE": "normal",
        },
        2: {
            "ID": "2",
            "NAME": "Team meeting",
            "DATE_FROM": iso(day + timedelta(hours=4)),
            "DATE_TO": iso(day + timedelta(hours=5)),
            "OWNER_ID": "1",
            "CAL_TYPE": "user",
            "SECTION_ID": "1",
            "DESCRIPTION": "Weekly sync",
            "ACCESSIBILITY": "busy",
            "IMPORTANCE": "normal",
        },
    }
    # Booking: two resources and one booking.
    state["booking_resource"] = {
        1: {
            "id": 1,
            "name": "Meeting room A",
            "description": "6 seats, projector",
            "typeId": 1,
            "isMain": "Y",
        },
        2: {"id": 2, "name": "Sedan 1", "description": "Company car", "typeId": 2, "isMain": "Y"},
    }
    slot = int((EPOCH + timedelta(days=301)).replace(hour=14, minute=0).timestamp())
    state["booking"] = {
        1: {
            "id": 1,
            "name": "Demo for Globex",
            "description": None,
            "resourceIds": [1],
            "datePeriod": {
                "from": {"timestamp": slot, "timezone": "Europe/Moscow"},
                "to": {"timestamp": slot + 3600, "timezone": "Europe/Moscow"},
            },
        }
    }
    state["timeman"] = {}
    # Business processes: templates, one running workflow with a pending approval task; a list with elements.
    state["bizproc_template"] = {
        1: {
            "ID": "1",
            "NAME": "Deal approval",
            "DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal", "DEAL"],
            "APP": None,
        },
        2: {
            "ID": "2",
            "NAME": "Lead qualification",
            "DOCUMENT_TYPE": ["crm", "CCrmDocumentLead", "LEAD"],
            "APP": None,
        },
    }
    state["workflow"] = {
        "00000001.sbx": {
            "ID": "00000001.sbx",
            "MODULE_ID": "crm",
            "ENTITY": "CCrmDocumentDeal",
            "DOCUMENT_ID": "DEAL_3",
            "STARTED": when,
            "STARTED_BY": "1",
            "TEMPLATE_ID": "1",
            "OWNED_UNTIL": None,
        }
    }
    state["bizproc_task"] = {
        1: {
            "ID": "1",
            "WORKFLOW_ID": "00000001.sbx",
            "DOCUMENT_NAME": "Deal #3",
            "NAME": "Approve the discount",
            "DESCRIPTION": "",
            "MODIFIED": when,
            "WORKFLOW_STARTED": when,
            "WORKFLOW_STARTED_BY": "1",
            "WORKFLOW_TEMPLATE_ID": "1",
            "WORKFLOW_TEMPLATE_NAME": "Deal approval",
            "STATUS": "0",
            "USER_ID": "1",
            "USER_STATUS": "0",
            "MODULE_ID": "crm",
            "ENTITY": "CCrmDocumentDeal",
            "DOCUMENT_ID": "DEAL_3",
            "ACTIVITY": "ApproveActivity",
        }
    }
    state["bizproc_robot"] = {}
    state["lists_element"] = {
        1: {
            "ID": "1",
            "IBLOCK_ID": "1",
            "NAME": "Laptop for the new sales manager",
            "CODE": "laptop",
            "CREATED_BY": "1",
            "IBLOCK_SECTION_ID": None,
        },
        2: {
            "ID": "2",
            "IBLOCK_ID": "1",
            "NAME": "Office chairs",
            "CODE": "chairs",
            "CREATED_BY": "1",
            "IBLOCK_SECTION_ID": None,
        },
    }
    # Comms: group chats (a sonet group's chat, a plain group chat, an open line's), members by user id
    everyone = list(range(1, users + 1))
    state["chat"] = {
        1: {
            "id": 1,
            "name": "Sales team",
            "type": "chat",
            "owner": 1,
            "USERS": [u for u in everyone if u in (1, 2, 5)],
        },
        2: {
            "id": 2,
            "name": "Project: Website relaunch",
            "type": "sonetGroup",
            "owner": 1,
            "USERS": everyone[:4],
            "entity_type": "SONET_GROUP",
            "entity_id": "1",
        },
        3: {"id": 3, "name": "All employees", "type": "open", "owner": 1, "USERS": everyone},
    }
    state["imbot"] = {}
    state["imbot_command"] = {}
    state["telephony_call"] = {}
    state["openline"] = {
        1: {"ID": "1", "LINE_NAME": "Support line", "ACTIVE": "Y", "QUEUE": [1]},
        2: {"ID": "2", "LINE_NAME": "Sales line", "ACTIVE": "Y", "QUEUE": [1]},
    }
    # Platform
    state["ai_engine"] = {
        1: {
            "id": 1,
            "app_code": "sandbox_ai",
            "name": "Sandbox GPT",
            "code": "sandbox_gpt",
            "category": "text",
            "completions_url": "https://ai.example.test/completions",
            "settings": {
                "code_alias": "ChatGPT",
                "model_context_type": "token",
                "model_context_limit": 16000,
            },
            "date_create": 1767600000,
        }
    }
    state["ai_prompt"] = {}
    state["entity"] = {}
    state["entity_item"] = {}
    state["bi_connector"] = {
        1: {
            "id": 1,
            "title": "MySQL",
            "type": "mysql",
            "settings": [
                {"code": "host", "name": "Host", "type": "STRING"},
                {"code": "database", "name": "Database", "type": "STRING"},
            ],
        },
        2: {
            "id": 2,
            "title": "Custom REST connector",
            "type": "rest",
            "settings": [{"code": "url", "name": "URL", "type": "STRING"}],
        },
    }
    state["bi_source"] = {}
    # Sites
    state["landing_site"] = {
        1: {
            "ID": "1",
            "TITLE": "Northwind Foods promo",
            "CODE": "northwind",
            "TYPE": "PAGE",
            "ACTIVE": "N",
            "DATE_CREATE": when,
            "DATE_MODIFY": when,
        }
    }
    state["landing_page"] = {
        1: {
            "ID": "1",
            "TITLE": "Home",
            "CODE": "home",
            "SITE_ID": "1",
            "ACTIVE": "N",
            "PUBLIC": "N",
            "DATE_MODIFY": when,
            "DATE_PUBLIC": None,
        },
        2: {
            "ID": "2",
            "TITLE": "Contacts",
            "CODE": "contacts",
            "SITE_ID": "1",
            "ACTIVE": "N",
            "PUBLIC": "N",
            "DATE_MODIFY": when,
            "DATE_PUBLIC": None,
        },
    }
    state["landing_block"] = {
        1: {
            "id": 1,
            "lid": 1,
            "code": "04.7.one_col_fix_with_title_and_text_2",
            "name": "Title and text",
            "active": True,
            "cards": {".landing-block-card": 3},
        },
        2: {
            "id": 2,
            "lid": 2,
            "code": "15.social",
            "name": "Contacts",
            "active": True,
            "cards": {".landing-block-node-list-item": 2},
        },
    }
    # Compliance
    state["consent_agreement"] = {
        1: {
            "ID": "1",
            "NAME": "Consent to personal data processing",
            "ACTIVE": "Y",
            "LANGUAGE_ID": "en",
            "LABEL": "I agree to the processing of my personal data",
            "TEXT": "Consent to the processing of personal data...",
        },
        2: {
            "ID": "2",
            "NAME": "Newsletter consent",
            "ACTIVE": "Y",
            "LANGUAGE_ID": "en",
            "LABEL": "I agree to receive newsletters",
            "TEXT": "Consent to receive newsletters.",
        },
    }
    state["consent"] = {}
    state["sign_document"] = {
        1: {
            "id": 1,
            "title": "Employment contract",
            "create_date": when,
            "signed_date": when,
            "creator_id": 1,
            "member_id": 1,
            "role": "signer",
        }
    }
