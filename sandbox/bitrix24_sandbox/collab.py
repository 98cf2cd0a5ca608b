"""Workgroups and projects (sonet_group.*) and the live feed (log.blogpost.*, log.blogcomment.*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.data import sonet_group_record
from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import Listing, method, now_iso, obj, paged, positive, table, upper
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_GROUP_FIELDS = (
    "NAME",
    "DESCRIPTION",
    "VISIBLE",
    "OPENED",
    "CLOSED",
    "KEYWORDS",
    "INITIATE_PERMS",
    "PROJECT",
    "PROJECT_DATE_START",
    "PROJECT_DATE_FINISH",
    "OWNER_ID",
    "SCRUM_MASTER_ID",
    "SUBJECT_ID",
)


def _members(store: Store, group_id: int) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = table(store, "sonet_member").setdefault(
        group_id, {"GROUP_ID": str(group_id), "MEMBERS": []}
    )["MEMBERS"]
    return members


def _visible(store: Store, group: dict[str, Any], caller: Caller) -> bool:
    if caller.is_admin or group["VISIBLE"] == "Y":
        return True
    return any(m["USER_ID"] == str(caller.user_id) for m in _members(store, int(group["ID"])))


@method("sonet_group.get", "sonet_group")
def group_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """sonet-group/sonet-group-get.md: the groups the caller can see, FILTER by field (``%NAME`` is a
    substring)."""
    query = upper(params)
    flt = obj(query.get("FILTER"))
    rows = []
    for group in table(store, "sonet_group").values():
        if not _visible(store, group, caller):
            continue
        ok = True
        for key, wanted in flt.items():
            name = str(key).upper()
            if name.startswith("%"):
                ok = ok and str(wanted).lower() in str(group.get(name[1:]) or "").lower()
            else:
                ok = ok and str(group.get(name.lstrip("=")) or "") == str(wanted)
        if ok:
            rows.append(dict(group))
    return paged(rows, query.get("START"))


@method("sonet_group.user.get", "sonet_group")
def group_user_get(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sonet-group/members/sonet-group-user-get.md: ``[{USER_ID, ROLE}]``."""
    group_id = positive(upper(params).get("ID"))
    if group_id is None:
        raise ApiError("", "Wrong socialnetwork group ID", 400)
    group = table(store, "sonet_group").get(group_id)
    if group is None or not _visible(store, group, caller):
        raise ApiError("", "Socialnetwork group not found", 400)
    return [dict(m) for m in _members(store, group_id)]


@method("sonet_group.create", "sonet_group")
def group_create(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """sonet-group/sonet-group-create.md: the caller (or OWNER_ID) owns the new group."""
    query = upper(params)
    if not str(query.get("NAME") or "").strip():
        raise ApiError("", "Incorrect input data", 400)
    owner = positive(query.get("OWNER_ID")) or caller.user_id
    if owner not in store.tables["user"]:
        raise ApiError("", "Incorrect input data", 400)
    group_id = store.next_id("sonet_group")
    when = now_iso(store)
    record = sonet_group_record(group_id, when, str(owner))
    record.update({k: str(query[k]) for k in _GROUP_FIELDS if query.get(k) not in (None, "")})
    record["OWNER_ID"] = str(owner)
    table(store, "sonet_group")[group_id] = record
    _members(store, group_id).append({"USER_ID": str(owner), "ROLE": "A"})
    return group_id


def _own_group(store: Store, query: dict[str, Any], caller: Caller, action: str) -> dict[str, Any]:
    group_id = positive(query.get("GROUP_ID"))
    if group_id is None:
        raise ApiError("", "Wrong group ID", 400)
    group = table(store, "sonet_group").get(group_id)
    if group is None:
        raise ApiError("", "Socialnetwork group not found", 400)
    if not caller.is_admin and group["OWNER_ID"] != str(caller.user_id):
        raise ApiError("", f"User has no permissions to {action} group", 400)
    return group


@method("sonet_group.update", "sonet_group")
def group_update(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """sonet-group/sonet-group-update.md: the result is the group's ID."""
    query = upper(params)
    group = _own_group(store, query, caller, "update")
    if "NAME" in query and not str(query["NAME"] or "").strip():
        raise ApiError("", "Cannot update group", 400)
    if "OWNER_ID" in query and positive(query["OWNER_ID"]) not in store.tables["user"]:
        raise ApiError("", "Cannot update group", 400)
    group.update({k: str(query[k]) for k in _GROUP_FIELDS if k in query})
    group["DATE_UPDATE"] = now_iso(store)
    return int(group["ID"])


@method("sonet_group.delete", "sonet_group")
def group_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    group = _own_group(store, upper(params), caller, "delete")
    del table(store, "sonet_group")[int(group["ID"])]
    table(store, "sonet_member").pop(int(group["ID"]), None)
    return True


# --- live feed ----------------------------------------------------------------------------------------------


@method("log.blogpost.add", "log")
def blogpost_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    message = str(params.get("POST_MESSAGE") or "").strip()
    if not message:  # log-blogpost-add.md, Error Handling
        raise ApiError("SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR", "Blog post hasn't been added", 400)
    new_id = store.next_id("blogpost")
    table(store, "blogpost")[new_id] = {
        "ID": str(new_id),
        "TITLE": str(params.get("POST_TITLE") or ""),
        "DETAIL_TEXT": message,
        "AUTHOR_ID": str(caller.user_id),
        "DEST": params.get("DEST") or ["UA"],
        "DATE_PUBLISH": now_iso(store),
    }
    return new_id


@method("log.blogpost.get", "log")
def blogpost_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """log/log-blogpost-get.md: POST_ID, FIRST_ID / LAST_ID (IDs above / below), ``total`` and paging by
    ``start``."""
    query = upper(params)
    posts = list(table(store, "blogpost").values())
    wanted = query.get("POST_ID")
    first, last = positive(query.get("FIRST_ID")), positive(query.get("LAST_ID"))
    rows = [
        p
        for p in posts
        if (wanted is None or p["ID"] == str(wanted))
        and (not first or int(p["ID"]) > first)
        and (not last or int(p["ID"]) < last)
    ]
    return paged(rows, params.get("start"))


def _own_post(store: Store, params: dict[str, Any], caller: Caller, code: str) -> dict[str, Any]:
    post_id = positive(upper(params).get("POST_ID"))
    if post_id is None:
        raise ApiError(code, "Wrong post ID", 400)
    post = table(store, "blogpost").get(post_id)
    if post is None:
        raise ApiError(code, "No post found", 400)
    if post["AUTHOR_ID"] != str(caller.user_id) and not caller.is_admin:
        raise ApiError(code, "No write perms", 403)
    return post


@method("log.blogpost.update", "log")
def blogpost_update(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """log/log-blogpost-update.md: the result is the post's ID."""
    post = _own_post(store, params, caller, "SONET_CONTROLLER_LIVEFEED_BLOGPOST_UPDATE_ERROR")
    if "POST_MESSAGE" in params:
        if not str(params["POST_MESSAGE"] or "").strip():
            raise ApiError(
                "SONET_CONTROLLER_LIVEFEED_BLOGPOST_UPDATE_ERROR", "Blog post hasn't been updated", 400
            )
        post["DETAIL_TEXT"] = str(params["POST_MESSAGE"])
    if "POST_TITLE" in params:
        post["TITLE"] = str(params["POST_TITLE"] or "")
    if isinstance(params.get("DEST"), list):
        post["DEST"] = params["DEST"]
    return int(post["ID"])


@method("log.blogpost.delete", "log")
def blogpost_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """log/log-blogpost-delete.md: code 100 for a wrong ID; the post's comments go with it."""
    post_id = positive(upper(params).get("POST_ID"))
    post = table(store, "blogpost").get(post_id or 0)
    if post is None:
        raise ApiError("100", "Wrong post ID", 400)
    if post["AUTHOR_ID"] != str(caller.user_id) and not caller.is_admin:
        raise ApiError(
            "You do not have permission to delete this message",
            "You do not have permission to delete this message",
            403,
        )
    del table(store, "blogpost")[int(post["ID"])]
    for comment_id in [k for k, c in table(store, "blogcomment").items() if c["POST_ID"] == post["ID"]]:
        del table(store, "blogcomment")[comment_id]
    return True


@method("log.blogcomment.add", "log")
def blogcomment_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """log/blogcomment/log-blogcomment-add.md: the result is the comment's ID."""
    query = upper(params)
    post = table(store, "blogpost").get(positive(query.get("POST_ID")) or 0)
    if post is None:
        raise ApiError("", "No post found", 400)
    text = str(query.get("TEXT") or "").strip()
    if not text:
        raise ApiError("", "Blog comment hasn't been added", 400)
    comments = table(store, "blogcomment")
    author = str(
        positive(query.get("USER_ID")) if caller.is_admin and query.get("USER_ID") else caller.user_id
    )
    if any(
        c["POST_ID"] == post["ID"] and c["TEXT"] == text and c["AUTHOR_ID"] == author
        for c in comments.values()
    ):
        raise ApiError("", "Duplicate comment", 400)
    comment_id = store.next_id("blogcomment")
    comments[comment_id] = {
        "ID": str(comment_id),
        "POST_ID": post["ID"],
        "TEXT": text,
        "AUTHOR_ID": author,
        "DATE_CREATE": now_iso(store),
    }
    return comment_id


@method("log.blogcomment.delete", "log")
def blogcomment_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """log/blogcomment/log-blogcomment-delete.md."""
    comment_id = positive(upper(params).get("COMMENT_ID"))
    if comment_id is None:
        raise ApiError("", "Wrong comment ID", 400)
    comment = table(store, "blogcomment").get(comment_id)
    if comment is None:
        raise ApiError("", "No comment found", 400)
    if comment["AUTHOR_ID"] != str(caller.user_id) and not caller.is_admin:
        raise ApiError("", "No delete perms", 400)
    del table(store, "blogcomment")[comment_id]
    return True
