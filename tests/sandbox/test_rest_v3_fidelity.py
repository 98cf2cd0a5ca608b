"""REST 3.0 as api-reference/rest-v3.md and tasks/*-rest-v3.md (bitrix24/b24restdocs) describe it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.sandbox import Portal


def _post(portal: Portal, method: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    hook = portal.webhook_url.split("/rest/")[1]
    with httpx.Client(transport=portal.transport(), base_url=portal.base_url) as http:
        return http.post(f"/rest/api/{hook}{method}", json=body, headers=headers or {})


def test_select_picks_fields_and_related_objects(portal: Portal) -> None:
    """rest-v3.md, Connections: related fields by dot; an unknown own field is left out; an unknown related
    one is UNKNOWNDTOPROPERTYEXCEPTION."""
    item = _post(
        portal, "tasks.task.get", {"id": 1, "select": ["id", "title", "stageId", "responsible.name"]}
    ).json()
    assert (
        set(item["result"]["item"]) == {"id", "title", "responsible"}
        and "name" in item["result"]["item"]["responsible"]
    )
    bad = _post(portal, "tasks.task.get", {"id": 1, "select": ["responsible.stageId"]})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BITRIX_REST_V3_EXCEPTION_UNKNOWNDTOPROPERTYEXCEPTION"


def test_filter_triples_logic_or_and_pagination(portal: Portal) -> None:
    """rest-v3.md, Filtering; tasks-task-list-rest-v3.md: pagination {page, limit, offset}; only id is
    returned without select."""
    body = {
        "filter": [["id", ">", 1], {"logic": "or", "conditions": [["id", [2, 3]], ["id", "in", [5]]]}],
        "order": {"id": "DESC"},
        "pagination": {"page": 1, "limit": 2},
    }
    items = _post(portal, "tasks.task.list", body).json()["result"]["items"]
    assert items == [{"id": 5}, {"id": 3}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"filter": [["nope", "=", 1]]}, "UNKNOWNDTOPROPERTYEXCEPTION"),
        ({"filter": [["id", "like", 1]]}, "UNKNOWNFILTEROPERATOREXCEPTION"),
        ({"filter": [["id", "=", "abc"]]}, "VALIDATION_REQUESTVALIDATIONEXCEPTION"),
        ({"filter": [["title", "=", "x"]]}, "VALIDATION_REQUESTVALIDATIONEXCEPTION"),  # not Filterable
        ({"order": {"id": "UP"}}, "INVALIDORDEREXCEPTION"),
        ({"pagination": {"limit": "abc"}}, "INVALIDPAGINATIONEXCEPTION"),
    ],
)
def test_list_errors_carry_the_documented_codes(portal: Portal, body: dict[str, Any], code: str) -> None:
    response = _post(portal, "tasks.task.list", body)
    assert (
        response.status_code == 400 and response.json()["error"]["code"] == "BITRIX_REST_V3_EXCEPTION_" + code
    )


def test_a_missing_id_is_a_validation_error_naming_the_field(portal: Portal) -> None:
    """rest-v3.md, Structure of an unsuccessful response."""
    error = _post(portal, "tasks.task.get", {}).json()["error"]
    assert error["code"] == "BITRIX_REST_V3_EXCEPTION_VALIDATION_REQUESTVALIDATIONEXCEPTION"
    assert error["validation"] == [{"message": "Required field `id` is not specified", "field": "id"}]


def test_idempotency_key_is_echoed_and_a_replay_is_marked(portal: Portal) -> None:
    """rest-v3.md, Repeated calls without duplicates."""
    body = {"fields": {"title": "Once", "creatorId": 1, "responsibleId": 1}}
    first = _post(portal, "tasks.task.add", body, {"Idempotency-Key": "abc-1"})
    again = _post(portal, "tasks.task.add", body, {"Idempotency-Key": "abc-1"})
    assert first.headers["idempotency-key"] == "abc-1" and "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true" and again.json()["result"] == first.json()["result"]
    assert [t["title"] for t in portal.entities("task")].count("Once") == 1
    reused = _post(
        portal,
        "tasks.task.add",
        {"fields": {**body["fields"], "title": "Other"}},
        {"Idempotency-Key": "abc-1"},
    )
    assert reused.status_code == 422
    invalid = _post(portal, "tasks.task.add", body, {"Idempotency-Key": "k" * 300})  # over 255 characters
    assert invalid.status_code == 400


def test_batch_is_a_json_array_and_the_old_format_is_refused(portal: Portal) -> None:
    """rest-v3.md, Batch call."""
    ok = _post(
        portal,
        "batch",
        [
            {"method": "tasks.task.get", "query": {"id": 1, "select": ["id"]}},
            {"method": "tasks.task.get", "query": {"id": 2, "select": ["id"]}},
        ],
    ).json()
    assert ok["result"] == [{"item": {"id": 1}}, {"item": {"id": 2}}]
    old = _post(portal, "batch", {"cmd": {"a": "tasks.task.get?id=1"}})
    assert old.json()["error"]["code"] == "BITRIX_REST_V3_EXCEPTION_INVALIDSELECTEXCEPTION"


def test_openapi_document_has_paths_and_component_schemas(portal: Portal) -> None:
    """rest-v3.md, OpenAPI documentation: `paths` and `components.schemas`; `documentation` is a synonym."""
    doc = _post(portal, "rest.documentation.openapi", {}).json()["result"]
    assert (
        doc["openapi"].startswith("3.")
        and "/tasks.task.get" in doc["paths"]
        and "TaskDto" in doc["components"]["schemas"]
    )
    assert _post(portal, "documentation", {}).json()["result"] == doc


def test_task_fields_are_listed_and_described_as_rest_3_documents_them() -> None:
    """tasks/tasks-task-field-list.md and tasks-task-field-get.md (REST 3.0): `items` of field descriptions
    (name, type, title, description, filterable, sortable, multiple…), `select` narrows them and refuses an
    unknown key (UNKNOWNDTOPROPERTYEXCEPTION, entity DtoFieldDto); .get needs `name` (a validation error) and
    answers FIELDNOTFOUNDEXCEPTION for an unknown one."""
    portal = Portal(seed=1)
    base = portal.base_url + f"/rest/api/1/{portal.webhook_code}/"
    with httpx.Client(transport=portal.transport()) as http:
        listed = http.post(
            base + "tasks.task.field.list", json={"select": ["name", "type", "sortable"]}
        ).json()
        one = http.post(base + "tasks.task.field.get", json={"name": "id"}).json()
        bad_select = http.post(base + "tasks.task.field.list", json={"select": ["unknownField"]})
        nameless = http.post(base + "tasks.task.field.get", json={})
        unknown = http.post(base + "tasks.task.field.get", json={"name": "nope"})
    items = listed["result"]["items"]
    assert items[0] == {"name": "id", "type": "int", "sortable": True}
    assert {"title", "responsibleId", "creator", "responsible"} <= {i["name"] for i in items}
    assert set(one["result"]["item"]) == {
        "name",
        "type",
        "title",
        "description",
        "validationRules",
        "requiredGroups",
        "filterable",
        "sortable",
        "editable",
        "multiple",
        "elementType",
    }
    assert one["result"]["item"]["filterable"] is True and "operating" in one["time"]
    assert bad_select.status_code == 400
    assert bad_select.json()["error"] == {
        "code": "BITRIX_REST_V3_EXCEPTION_UNKNOWNDTOPROPERTYEXCEPTION",
        "message": "Unknown field `unknownField` for entity `DtoFieldDto`",
    }
    assert nameless.status_code == 400
    assert nameless.json()["error"]["validation"] == [
        {"field": "name", "message": "Required field `name` is missing"}
    ]
    assert unknown.json()["error"]["code"] == "BITRIX_REST_V3_REALISATION_EXCEPTION_FIELDNOTFOUNDEXCEPTION"


def test_rest_scope_list_maps_each_method_by_module_and_controller(portal: Portal) -> None:
    """rest-v3.md: rest.scope.list returns the method-to-scope mapping for all modules (REST 3.0 only). The
    docs show no reply; the shape follows the official PHP SDK's reading (module → controller → method →
    {scope, title, description, fields}, filterModule/filterController/filterMethod) — UNVERIFIED."""
    everything = _post(portal, "rest.scope.list", {}).json()["result"]
    assert everything["tasks"]["task"]["add"]["scope"] == "tasks.task.add"
    assert everything["tasks"]["task.field"]["list"]["scope"] == "tasks.task.field.list"
    assert everything["rest"]["scope"]["list"]["scope"] == "rest.scope.list"
    only = _post(portal, "rest.scope.list", {"filterModule": "tasks", "filterMethod": "get"}).json()["result"]
    assert only == {
        "tasks": {
            "task": {"get": everything["tasks"]["task"]["get"]},
            "task.field": {"get": everything["tasks"]["task.field"]["get"]},
        }
    }
