"""Drive (disk.*) and document generation (the content pack)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import Listing, method, now_iso, obj, paged, positive, table
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_CRM_TYPES = {1: "lead", 2: "deal", 3: "contact", 4: "company"}


def _arg(params: dict[str, Any], key: str, position: int) -> int:
    """disk.* answer ERROR_ARGUMENT naming the parameter's position for a missing or non-numeric value."""
    value = positive(params.get(key))
    if value is None:
        raise ApiError("ERROR_ARGUMENT", f"Invalid value of parameter {{Parameter #{position}}}", 400)
    return value


def _object(store: Store, object_id: int, kind: str | None = None) -> dict[str, Any]:
    record = table(store, "disk_object").get(object_id)
    if record is None or (kind is not None and record["TYPE"] != kind):
        raise ApiError("ERROR_NOT_FOUND", f"Could not find entity with id `{object_id}`", 404)
    return record


def download_token(store: Store, record: dict[str, Any]) -> str:
    """A file's download token (disk/file/disk-file-get.md: ``DOWNLOAD_URL`` is ``/rest/download.json`` with
    ``token=disk|…``): here the file's ID and a signature, so the URL alone fetches the file, as on a portal.
    UNVERIFIED: a portal's URL also carries the caller's ``auth``; the sandbox does not need it."""
    sig = hmac.new(store.download_secret, f"disk|{record['ID']}".encode(), hashlib.sha256).hexdigest()[:24]
    return f"disk%7C{record['ID']}%7C{sig}"


def download(store: Store, token: str) -> bytes | None:
    """The bytes a download token names, or None for a token the portal did not issue."""
    parts = token.split("|")
    if len(parts) != 3 or parts[0] != "disk" or not parts[1].isdigit():
        return None
    record = table(store, "disk_object").get(int(parts[1]))
    if record is None or record["TYPE"] != "file":
        return None
    expected = download_token(store, record).replace("%7C", "|")
    if not hmac.compare_digest(expected, token):
        return None
    return base64.b64decode(record.get("CONTENT") or "")


def _public(store: Store, record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k != "CONTENT"}
    if record["TYPE"] == "file":
        out["DOWNLOAD_URL"] = f"{store.base_url}/rest/download.json?token={download_token(store, record)}"
    else:  # disk/file/disk-file-search.md: REAL_OBJECT_ID comes only for folders (its own ID unless shared)
        out["REAL_OBJECT_ID"] = record.get("REAL_OBJECT_ID") or record["ID"]
    out["DETAIL_URL"] = f"{store.base_url}/docs/path/{record['NAME']}"
    return out


def _children(store: Store, folder_id: int, params: dict[str, Any]) -> Listing:
    """disk/folder/disk-folder-get-children.md: ``filter`` by the object's fields with the operation before
    the name (>=, >, <=, <, @, !@, %, =%, %=, =, !=, !), a plain key an exact match (the database's collation
    ignores case); ``order`` {field: ASC|DESC}; 50 a page."""
    from bitrix24_sandbox.query import matches, order_rows

    rows = [
        _public(store, o) for o in table(store, "disk_object").values() if o["PARENT_ID"] == str(folder_id)
    ]
    flt = obj(params.get("filter"))
    plain = {k: v for k, v in flt.items() if str(k)[:1].isalnum() or str(k)[:1] == "_"}
    for key, wanted in plain.items():
        rows = [r for r in rows if str(r.get(str(key).upper())).casefold() == str(wanted).casefold()]
    operated = {
        re.sub(r"^([^A-Za-z_]*)(.*)$", lambda m: m.group(1) + m.group(2).upper(), str(k)): v
        for k, v in flt.items()
        if k not in plain
    }
    rows = [r for r in rows if matches(r, operated)]
    order = obj(params.get("order"))
    rows = order_rows(rows, {str(k).upper(): v for k, v in order.items()})
    return paged(rows, params.get("start"))


@method("disk.storage.getlist", "disk")
def storage_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """disk/storage/disk-storage-get-list.md."""
    rows = [
        dict(s)
        for s in table(store, "disk_storage").values()
        if s["ENTITY_TYPE"] != "user" or s["ENTITY_ID"] == str(caller.user_id) or caller.is_admin
    ]
    return paged(rows, params.get("start"))


@method("disk.storage.getchildren", "disk")
def storage_children(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """disk/storage/disk-storage-get-children.md: the root folder's children."""
    storage_id = _arg(params, "id", 0)
    storage = table(store, "disk_storage").get(storage_id)
    if storage is None:
        raise ApiError("ERROR_NOT_FOUND", f"Could not find entity with id `{storage_id}`", 404)
    return _children(store, int(storage["ROOT_OBJECT_ID"]), params)


@method("disk.folder.getchildren", "disk")
def folder_children(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """disk/folder/disk-folder-get-children.md."""
    folder_id = _arg(params, "id", 1)
    _object(store, folder_id, "folder")
    return _children(store, folder_id, params)


@method("disk.file.get", "disk")
def file_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return _public(store, _object(store, _arg(params, "id", 0), "file"))


def _name_taken(store: Store, folder_id: int, name: str, skip: int | None = None) -> bool:
    return any(
        o["PARENT_ID"] == str(folder_id) and o["NAME"].lower() == name.lower() and int(o["ID"]) != skip
        for o in table(store, "disk_object").values()
    )


def _unique(store: Store, folder_id: int, name: str) -> str:
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    candidate, n = name, 1
    while _name_taken(store, folder_id, candidate):
        candidate = f"{stem} ({n}){dot}{ext}" if dot else f"{name} ({n})"
        n += 1
    return candidate


def _new_object(
    store: Store, parent: dict[str, Any], name: str, kind: str, caller: Caller, content: bytes = b""
) -> dict[str, Any]:
    object_id = store.next_id("disk_object")
    when = now_iso(store)
    record: dict[str, Any] = {
        "ID": str(object_id),
        "NAME": name,
        "CODE": None,
        "STORAGE_ID": parent["STORAGE_ID"],
        "TYPE": kind,
        "PARENT_ID": parent["ID"],
        "DELETED_TYPE": "0",
        "CREATE_TIME": when,
        "UPDATE_TIME": when,
        "DELETE_TIME": None,
        "CREATED_BY": str(caller.user_id),
        "UPDATED_BY": str(caller.user_id),
        "DELETED_BY": "0",
    }
    if kind == "file":
        record.update(
            {
                "FILE_ID": str(10000 + object_id),
                "SIZE": str(len(content)),
                "GLOBAL_CONTENT_VERSION": "1",
                "CONTENT": base64.b64encode(content).decode(),
            }
        )
    table(store, "disk_object")[object_id] = record
    return record


@method("disk.folder.addsubfolder", "disk")
def folder_add_subfolder(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """disk/folder/disk-folder-add-subfolder.md: ``data.NAME``; a taken name is DISK_OBJ_22000."""
    parent = _object(store, _arg(params, "id", 0), "folder")
    data = params.get("data")
    name = str(data.get("NAME") or "").strip() if isinstance(data, dict) else ""
    if not name:
        raise ApiError("ERROR_ARGUMENT", "Invalid value of parameter {Parameter #1}", 400)
    if _name_taken(store, int(parent["ID"]), name):
        raise ApiError("DISK_OBJ_22000", "A folder with this name already exists", 400)
    return _public(store, _new_object(store, parent, name, "folder", caller))


@method("disk.folder.uploadfile", "disk")
def folder_upload_file(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """disk/folder/disk-folder-upload-file.md: ``fileContent`` = [name, base64]; without it, an upload URL."""
    parent = _object(store, _arg(params, "id", 0), "folder")
    data = obj(params.get("data"))
    name = str(data.get("NAME") or "").strip()
    if not name:
        raise ApiError(
            "DISK_BASE_SERVICE_22001", "Error: required parameter NAME (DISK_BASE_SERVICE_22001)", 400
        )
    content = params.get("fileContent")
    if content is None:  # the two-step upload: the portal answers where to POST the file
        return {"field": "file", "uploadUrl": f"{store.base_url}/rest/upload.json?folder={parent['ID']}"}
    if isinstance(content, dict):
        content = list(content.values())
    if not isinstance(content, list) or len(content) != 2:
        raise ApiError("ERROR_COULD_NOT_SAVE_FILE", "Could not save file", 400)
    try:
        raw = base64.b64decode(str(content[1]), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("ERROR_COULD_NOT_SAVE_FILE", "Could not save file", 400) from None
    if _name_taken(store, int(parent["ID"]), name):
        if str(params.get("generateUniqueName")).lower() not in ("true", "1", "y"):
            raise ApiError("DISK_OBJ_22000", "A file with this name already exists", 400)
        name = _unique(store, int(parent["ID"]), name)
    return _public(store, _new_object(store, parent, name, "file", caller, raw))


def _target(store: Store, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    record = _object(store, _arg(params, "id", 0), "file")
    target = _object(store, _arg(params, "targetFolderId", 1), "folder")
    return record, target


@method("disk.file.copyto", "disk")
def file_copy_to(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """disk/file/disk-file-copy-to.md: a new file in the target folder; the original stays."""
    record, target = _target(store, params)
    if _name_taken(store, int(target["ID"]), record["NAME"]):
        raise ApiError("DISK_OBJ_22000", "A file with this name already exists", 400)
    copy = _new_object(
        store, target, record["NAME"], "file", caller, base64.b64decode(record.get("CONTENT") or "")
    )
    return _public(store, copy)


@method("disk.file.moveto", "disk")
def file_move_to(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """disk/file/disk-file-move-to.md: the same file (same ID) in the target folder."""
    record, target = _target(store, params)
    if _name_taken(store, int(target["ID"]), record["NAME"], skip=int(record["ID"])):
        raise ApiError("DISK_OBJ_22000", "A file with this name already exists", 400)
    record.update(
        {
            "PARENT_ID": target["ID"],
            "STORAGE_ID": target["STORAGE_ID"],
            "UPDATE_TIME": now_iso(store),
            "UPDATED_BY": str(caller.user_id),
        }
    )
    return _public(store, record)


@method("disk.file.delete", "disk")
def file_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """disk/file/disk-file-delete.md: destroys the file (not the trash)."""
    record = _object(store, _arg(params, "id", 0), "file")
    del table(store, "disk_object")[int(record["ID"])]
    return True


@method("documentgenerator.document.add", "documentgenerator")
def document_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """UNVERIFIED for this name: the docs describe crm.documentgenerator.document.add (templateId,
    entityTypeId, entityId, values → {document}); the sandbox answers that shape, with one template (ID 1) for
    CRM records."""
    template = positive(params.get("templateId"))
    if template != 1:
        raise ApiError("0", "Template not found", 400)
    entity_type = positive(params.get("entityTypeId"))
    kind = _CRM_TYPES.get(entity_type or 0)
    if kind is None:
        raise ApiError("0", "No provider for entityTypeId", 400)
    entity_id = positive(params.get("entityId"))
    record = store.tables.get(kind, {}).get(entity_id or 0)
    if record is None:
        raise ApiError("0", "Cannot create document", 400)
    doc_id = store.next_id("document")
    number = f"2026-{doc_id:03d}"
    values = obj(params.get("values"))
    document = {
        "id": doc_id,
        "title": f"Quote {number} — {record.get('TITLE') or record.get('NAME')}",
        "number": number,
        "createTime": now_iso(store),
        "createdBy": caller.user_id,
        "templateId": "1",
        "entityId": str(entity_id),
        "entityTypeId": str(entity_type),
        "values": {**values, "DocumentNumber": number},
        "downloadUrl": f"{store.base_url}/rest/documentgenerator.document.download.json?id={doc_id}",
        "stampsEnabled": str(params.get("stampsEnabled")) == "1",
        "publicUrl": None,
    }
    table(store, "document")[doc_id] = document
    return {"document": document}
