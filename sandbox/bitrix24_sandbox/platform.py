"""AI engines and prompts (ai.*), an application's own storage (entity.*) and BI connections
(biconnector.*)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import (
    Listing,
    app_only,
    method,
    now_iso,
    obj,
    paged,
    positive,
    table,
    upper,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_CODE = re.compile(r"^[A-Za-z0-9_-]+$")
_AI_CATEGORIES = ("text", "image", "audio", "call")


def _admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise ApiError(
            "ACCESS_DENIED", "Access denied! Administrator rights required", 403
        )  # UNVERIFIED text


@method("ai.engine.list", "ai_admin")
def ai_engine_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """ai/ai-engine-list.md: the registered engines, filtered by field."""
    flt = obj(params.get("filter"))
    rows = [
        dict(e)
        for e in table(store, "ai_engine").values()
        if all(str(e.get(str(k).lower())) == str(v) for k, v in flt.items())
    ]
    limit = positive(params.get("limit"))
    return rows[:limit] if limit else rows


@method("ai.engine.register", "ai_admin")
def ai_engine_register(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """ai/ai-engine-register.md: administrators; ``code`` unique and ``A-Za-z0-9-_``."""
    _admin(caller)
    name, code = params.get("name"), params.get("code")
    if not isinstance(name, str) or not name.strip():
        raise ApiError("ENGINE_REGISTER_ERROR_NAME", "The `name` key with a string value is required.", 400)
    if not isinstance(code, str) or not code:
        raise ApiError("ENGINE_REGISTER_ERROR_CODE", "The `code` key with a string value is required.", 400)
    if not _CODE.match(code):
        raise ApiError(
            "ENGINE_REGISTER_ERROR_CODE_FORMAT",
            "The `code` key must contain only characters `A-Za-z0-9-_`.",
            400,
        )
    if not params.get("category"):
        raise ApiError("ENGINE_REGISTER_ERROR_CATEGORY", "The `category` key is required.", 400)
    if params["category"] not in _AI_CATEGORIES:
        raise ApiError(
            "ENGINE_REGISTER_ERROR_CATEGORY_FORMAT",
            f"The `category` key can contain one of the values: `{', '.join(_AI_CATEGORIES)}`.",
            400,
        )
    url = params.get("completions_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(
            "ENGINE_REGISTER_ERROR_COMPLETIONS_URL",
            "The `completions_url` key with a string value is required.",
            400,
        )
    engines = table(store, "ai_engine")
    if any(e["code"] == code for e in engines.values()):
        raise ApiError("ENGINE_REGISTER_ERROR_CODE_UNIQUE", "A record with this `code` already exists.", 400)
    engine_id = store.next_id("ai_engine")
    engines[engine_id] = {
        "id": engine_id,
        "app_code": caller.app_id or "webhook",
        "name": name,
        "code": code,
        "category": params["category"],
        "completions_url": url,
        "settings": params.get("settings") if isinstance(params.get("settings"), dict) else {},
        "date_create": int(store.wall()),
    }
    return engine_id


@method("ai.engine.unregister", "ai_admin")
def ai_engine_unregister(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """ai/ai-engine-unregister.md: by ``code``."""
    _admin(caller)
    code = str(params.get("code") or "")
    engines = table(store, "ai_engine")
    match = [k for k, e in engines.items() if e["code"] == code]
    if not match:
        raise ApiError("ENGINE_NOT_FOUND", "Engine not found.", 400)  # UNVERIFIED: the docs list no error
    del engines[match[0]]
    return True


@method("ai.prompt.register", "ai_admin")
def ai_prompt_register(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """UNVERIFIED: ai.prompt.register has no page in the docs mirror; modelled on ai.engine.register
    (administrators, unique ``code``, required ``prompt`` text)."""
    _admin(caller)
    code = str(params.get("code") or "")
    if not _CODE.match(code):
        raise ApiError("PROMPT_REGISTER_ERROR_CODE", "The `code` key with a string value is required.", 400)
    if not str(params.get("prompt") or "").strip():
        raise ApiError(
            "PROMPT_REGISTER_ERROR_PROMPT", "The `prompt` key with a string value is required.", 400
        )
    prompts = table(store, "ai_prompt")
    if any(p["code"] == code for p in prompts.values()):
        raise ApiError("PROMPT_REGISTER_ERROR_CODE_UNIQUE", "A record with this `code` already exists.", 400)
    prompt_id = store.next_id("ai_prompt")
    prompts[prompt_id] = {
        "id": prompt_id,
        "code": code,
        "prompt": str(params["prompt"]),
        "translate": params.get("translate") or {},
    }
    return prompt_id


# --- entity.*: an application's storage (Application context required) --------------------------------------


def _entity_code(params: dict[str, Any]) -> str:
    code = str(upper(params).get("ENTITY") or "")
    if not code:
        raise ApiError("ERROR_ARGUMENT", "Argument 'ENTITY' is null or empty", 400)
    if len(code) > 13:
        raise ApiError("ERROR_ARGUMENT", "Entity code is too long. Max length is 13 characters.", 400)
    return code


def _entity(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    app_only(caller)
    code = _entity_code(params)
    entity = next(
        (e for e in table(store, "entity").values() if e["ENTITY"] == code and e["APP"] == caller.app_id),
        None,
    )
    if entity is None:
        raise ApiError("ERROR_ENTITY_NOT_FOUND", "Entity not found", 400)
    return entity


@method("entity.add", "entity")
def entity_add(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """entity/entities/entity-add.md: ENTITY (≤ 13 chars) and NAME."""
    app_only(caller)
    code = _entity_code(params)
    query = upper(params)
    if not str(query.get("NAME") or "").strip():
        raise ApiError("ERROR_ARGUMENT", "Argument 'NAME' is null or empty", 400)
    entities = table(store, "entity")
    if any(e["ENTITY"] == code and e["APP"] == caller.app_id for e in entities.values()):
        raise ApiError("ERROR_ENTITY_ALREADY_EXISTS", "Entity already exists", 400)
    entity_id = store.next_id("entity")
    entities[entity_id] = {
        "ID": str(entity_id),
        "IBLOCK_TYPE_ID": "rest_entity",
        "ENTITY": code,
        "NAME": str(query["NAME"]),
        "APP": caller.app_id,
    }
    return True


@method("entity.get", "entity")
def entity_get(store: Store, params: dict[str, Any], caller: Caller) -> Any:
    """entity/entities/entity-get.md: one entity by ENTITY, or all of the application's."""
    app_only(caller)
    if not upper(params).get("ENTITY"):
        return [
            {k: v for k, v in e.items() if k != "APP"}
            for e in table(store, "entity").values()
            if e["APP"] == caller.app_id
        ]
    return {k: v for k, v in _entity(store, params, caller).items() if k != "APP"}


@method("entity.update", "entity")
def entity_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    entity = _entity(store, params, caller)
    query = upper(params)
    if query.get("ENTITY_NEW"):
        new_code = str(query["ENTITY_NEW"])
        if len(new_code) > 13:
            raise ApiError("ERROR_ARGUMENT", "Entity code is too long. Max length is 13 characters.", 400)
        if any(
            e["ENTITY"] == new_code and e["APP"] == caller.app_id for e in table(store, "entity").values()
        ):
            raise ApiError("ERROR_ENTITY_ALREADY_EXISTS", "Entity already exists", 400)
        entity["ENTITY"] = new_code
    if query.get("NAME"):
        entity["NAME"] = str(query["NAME"])
    return True


def _item_fields(query: dict[str, Any]) -> dict[str, Any]:
    allowed = {
        "NAME",
        "PROPERTY_VALUES",
        "SECTION",
        "DATE_ACTIVE_FROM",
        "DATE_ACTIVE_TO",
        "ACTIVE",
        "SORT",
        "CODE",
        "PREVIEW_TEXT",
        "DETAIL_TEXT",
    }
    fields = {k: v for k, v in query.items() if k in allowed}
    if "PROPERTY_VALUES" in fields and not isinstance(fields["PROPERTY_VALUES"], dict):
        raise ApiError("ERROR_ARGUMENT", "Field validation errors for the item", 400)
    return fields


@method("entity.item.add", "entity")
def entity_item_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """entity/items/entity-item-add.md: the result is the item's ID."""
    entity = _entity(store, params, caller)
    query = upper(params)
    fields = _item_fields(query)
    item_id = store.next_id("entity_item")
    when = now_iso(store)
    table(store, "entity_item")[item_id] = {
        "ID": str(item_id),
        "ENTITY": entity["ENTITY"],
        "APP": caller.app_id,
        "TIMESTAMP_X": when,
        "MODIFIED_BY": str(caller.user_id),
        "DATE_CREATE": when,
        "CREATED_BY": str(caller.user_id),
        "ACTIVE": "Y",
        "DATE_ACTIVE_FROM": "",
        "DATE_ACTIVE_TO": "",
        "SORT": "500",
        "NAME": str(fields.get("NAME") or ""),
        "PREVIEW_PICTURE": None,
        "PREVIEW_TEXT": None,
        "DETAIL_PICTURE": None,
        "DETAIL_TEXT": None,
        "CODE": None,
        "SECTION": None,
        "PROPERTY_VALUES": fields.get("PROPERTY_VALUES") or {},
    }
    return item_id


@method("entity.item.get", "entity")
def entity_item_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """entity/items/entity-item-get.md: FILTER by field or ``PROPERTY_<CODE>``; pages of 50."""
    entity = _entity(store, params, caller)
    query = upper(params)
    flt = obj(query.get("FILTER"))
    rows = []
    for item in table(store, "entity_item").values():
        if item["ENTITY"] != entity["ENTITY"] or item["APP"] != caller.app_id:
            continue
        ok = True
        for key, wanted in flt.items():
            name = str(key).upper().lstrip("=")
            have = item["PROPERTY_VALUES"].get(name[9:]) if name.startswith("PROPERTY_") else item.get(name)
            ok = ok and str(have) == str(wanted)
        if ok:
            rows.append(
                {k: v for k, v in item.items() if k not in ("APP", "ENTITY", "PROPERTY_VALUES")}
                | {"PROPERTY_VALUES": dict(item["PROPERTY_VALUES"])}
            )
    return paged(rows, query.get("START"))


def _item(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    entity = _entity(store, params, caller)
    query = upper(params)
    if not query.get("ID"):
        raise ApiError("ERROR_ARGUMENT", "Argument 'ID' is null or empty", 400)
    item = table(store, "entity_item").get(positive(query["ID"]) or 0)
    if item is None or item["ENTITY"] != entity["ENTITY"] or item["APP"] != caller.app_id:
        raise ApiError("ERROR_ITEM_NOT_FOUND", "Item not found", 400)
    return item


@method("entity.item.update", "entity")
def entity_item_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    item = _item(store, params, caller)
    fields = _item_fields(upper(params))
    if "PROPERTY_VALUES" in fields:
        item["PROPERTY_VALUES"] = {**item["PROPERTY_VALUES"], **fields.pop("PROPERTY_VALUES")}
    item.update({k: str(v) for k, v in fields.items()})
    item.update({"TIMESTAMP_X": now_iso(store), "MODIFIED_BY": str(caller.user_id)})
    return True


@method("entity.item.delete", "entity")
def entity_item_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    item = _item(store, params, caller)
    del table(store, "entity_item")[int(item["ID"])]
    return True


# --- BI Builder ---------------------------------------------------------------------------------------------


def _bi_list(
    store: Store, params: dict[str, Any], kind: str, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    for key, label in (("select", "select"), ("filter", "filter"), ("order", "order")):
        if key in params and not isinstance(params[key], (list, dict)):
            raise ApiError(f"VALIDATION_{key.upper()}_TYPE", f'Parameter "{label}" must be array.', 400)
    select = params.get("select") or list(fields)
    for name in select:
        if name not in fields:
            raise ApiError(
                "VALIDATION_FIELD_NOT_ALLOWED_IN_SELECT",
                f'Field "{name}" is not allowed in the "select".',
                400,
            )
    from bitrix24_sandbox.query import matches

    # biconnector-source-list.md: the operation before the field (>=, >, <=, <, @, !@, %, =%, %=, =, !=, !)
    flt = params.get("filter") or {}
    for name in flt:
        if re.sub(r"^(!@|@|>=|<=|=%|%=|!=|[<>%=!])", "", str(name)) not in fields:
            raise ApiError(
                "VALIDATION_FIELD_NOT_ALLOWED_IN_FILTER",
                f'Field "{name}" is not allowed in the "filter".',
                400,
            )
    rows = [r for r in table(store, kind).values() if matches(r, dict(flt))]
    return [{k: r.get(k) for k in select} for r in rows]


@method("biconnector.connector.list", "biconnector")
def bi_connector_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """biconnector/connector/biconnector-connector-list.md."""
    return _bi_list(
        store, params, "bi_connector", ("id", "title", "type", "settings", "urlCheck", "dateCreate")
    )


@method("biconnector.source.list", "biconnector")
def bi_source_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """biconnector/source/biconnector-source-list.md."""
    return _bi_list(
        store,
        params,
        "bi_source",
        ("id", "title", "type", "code", "description", "active", "connectorId", "dateCreate"),
    )


@method("biconnector.source.add", "biconnector")
def bi_source_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, int]:
    """biconnector/source/biconnector-source-add.md: title, connectorId and settings are required;
    ``{id}``."""
    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ApiError("VALIDATION_FIELDS_NOT_PROVIDED", "Fields not provided.", 400)
    unknown = sorted(set(fields) - {"title", "description", "active", "connectorId", "settings"})
    if unknown:
        raise ApiError("VALIDATION_UNKNOWN_PARAMETERS", f"Unknown parameters: {', '.join(unknown)}", 400)
    for name in ("title", "connectorId", "settings"):
        if fields.get(name) in (None, "", {}):
            raise ApiError("VALIDATION_REQUIRED_FIELD_MISSING", f'Field "{name}" is required.', 400)
    connector = table(store, "bi_connector").get(positive(fields["connectorId"]) or 0)
    if connector is None:
        raise ApiError("CONNECTOR_NOT_FOUND", "Connector was not found.", 400)
    if not isinstance(fields["settings"], dict):
        raise ApiError("VALIDATION_INVALID_FIELD_TYPE", 'Field "settings" must be of type object.', 400)
    source_id = store.next_id("bi_source")
    table(store, "bi_source")[source_id] = {
        "id": source_id,
        "title": str(fields["title"]),
        "type": connector["type"],
        "code": f"source_{source_id}",
        "description": fields.get("description"),
        "active": bool(fields.get("active", True)),
        "connectorId": connector["id"],
        "dateCreate": now_iso(store),
    }
    return {"id": source_id}
