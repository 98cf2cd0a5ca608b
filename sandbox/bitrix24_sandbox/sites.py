"""Sites and landing pages (landing.site.*, landing.landing.*, landing.block.*): the sites pack."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import method, now_iso, portal_date, positive, table
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_SITE_FIELDS = {"TITLE", "CODE", "TYPE", "DOMAIN_ID", "DESCRIPTION", "XML_ID", "ACTIVE", "LANDING_ID_INDEX"}
_PAGE_FIELDS = {"TITLE", "CODE", "SITE_ID", "DESCRIPTION", "XML_ID", "SITEMAP", "FOLDER_ID", "ACTIVE"}


def _list(rows: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """``params{select, filter, order}`` as landing's getList methods read them."""
    options = params.get("params") or {}
    if not isinstance(options, dict):
        raise ApiError("TYPE_ERROR", "Data type error in method call parameters.", 400)
    from bitrix24_sandbox.query import matches, order_rows

    flt = options.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("TYPE_ERROR", "Data type error in method call parameters.", 400)
    # the filter as the ORM reads it: the operation before the field (=, !, >, <, %, @ …), a list an IN
    wanted = {
        re.sub(r"^([^A-Za-z_]*)(.*)$", lambda m: m.group(1) + m.group(2).upper(), str(k)): v
        for k, v in flt.items()
    }
    wanted = {(("@" + k) if isinstance(v, list) and k[:1].isalpha() else k): v for k, v in wanted.items()}
    out = [r for r in rows if matches(r, wanted)]
    order = options.get("order")
    if isinstance(order, dict):
        out = order_rows(out, {str(k).upper(): v for k, v in order.items()})
    select = options.get("select")
    if isinstance(select, list) and select and "*" not in select:
        out = [{k: v for k, v in r.items() if k in {str(s).upper() for s in select}} for r in out]
    # landing-landing-get-list.md, example: "DATE_MODIFY": "10/10/2022 03:25:30 pm"
    return [{k: portal_date(v) if k.startswith("DATE_") and v else v for k, v in r.items()} for r in out]


def _fields(params: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("MISSING_PARAMS", "Required top-level parameter `fields` is missing", 400)
    upper_fields = {str(k).upper(): v for k, v in fields.items()}
    code = upper_fields.get("CODE")
    if code is not None:
        if "/" in str(code):
            raise ApiError("SLASH_IS_NOT_ALLOWED", "Slash is not allowed in the landing address.", 400)
        if str(code) == "":
            raise ApiError("CANT_BE_EMPTY", "The page address cannot be empty.", 400)
    return {k: v for k, v in upper_fields.items() if k in allowed}


def _site(store: Store, site_id: Any, code: str = "SITE_NOT_FOUND") -> dict[str, Any]:
    site = table(store, "landing_site").get(positive(site_id) or 0)
    if site is None:
        raise ApiError(code, "Site not found.", 400)
    return site


@method("landing.site.getList", "landing")
def site_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return _list([dict(s) for s in table(store, "landing_site").values()], params)


@method("landing.site.add", "landing")
def site_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """landing/site/landing-site-add.md: TITLE and CODE are required; the result is the site's ID."""
    fields = _fields(params, _SITE_FIELDS)
    for key in ("TITLE", "CODE"):
        if not str(fields.get(key) or "").strip():
            raise ApiError("MISSING_PARAMS", f"Required field `{key}` is missing", 400)  # UNVERIFIED text
    sites = table(store, "landing_site")
    if any(s["CODE"] == str(fields["CODE"]) for s in sites.values()):
        raise ApiError("CODE_IS_NOT_UNIQUE", "The site code is not unique within the domain", 400)
    site_id = store.next_id("landing_site")
    when = now_iso(store)
    sites[site_id] = {
        "ID": str(site_id),
        "TITLE": str(fields["TITLE"]),
        "CODE": str(fields["CODE"]),
        "TYPE": str(fields.get("TYPE") or "PAGE"),
        "ACTIVE": "N",
        "DATE_CREATE": when,
        "DATE_MODIFY": when,
        "DESCRIPTION": str(fields.get("DESCRIPTION") or ""),
    }
    return site_id


@method("landing.site.update", "landing")
def site_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    if not params.get("id") or not isinstance(params.get("fields"), dict):
        raise ApiError("MISSING_PARAMS", "Not enough parameters provided, missing: id", 400)
    site = _site(store, params["id"])
    fields = _fields(params, _SITE_FIELDS)
    if "CODE" in fields and any(
        s["CODE"] == str(fields["CODE"]) and s is not site for s in table(store, "landing_site").values()
    ):
        raise ApiError("CODE_IS_NOT_UNIQUE", "The site code is not unique within the domain", 400)
    site.update({k: str(v) for k, v in fields.items()})
    site["DATE_MODIFY"] = now_iso(store)
    return True


@method("landing.site.delete", "landing")
def site_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """landing/site/landing-site-delete.md: a site with pages is SITE_IS_NOT_EMPTY."""
    if not params.get("id"):
        raise ApiError("MISSING_PARAMS", "Required parameter `id` is missing", 400)
    site = _site(store, params["id"])
    if any(p["SITE_ID"] == site["ID"] for p in table(store, "landing_page").values()):
        raise ApiError("SITE_IS_NOT_EMPTY", "The site contains pages.", 400)
    del table(store, "landing_site")[int(site["ID"])]
    return True


@method("landing.landing.getList", "landing")
def page_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return _list([dict(p) for p in table(store, "landing_page").values()], params)


def _page(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("lid"):
        raise ApiError("MISSING_PARAMS", "Required parameter `lid` is missing", 400)
    page = table(store, "landing_page").get(positive(params["lid"]) or 0)
    if page is None:
        raise ApiError("LANDING_NOT_EXIST", "Landing not found", 400)
    return page


@method("landing.landing.add", "landing")
def page_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """landing/page/methods/landing-landing-add.md: TITLE and SITE_ID are required."""
    fields = _fields(params, _PAGE_FIELDS)
    if not str(fields.get("TITLE") or "").strip():
        raise ApiError("MISSING_PARAMS", "Required field `TITLE` is missing", 400)  # UNVERIFIED text
    site = _site(store, fields.get("SITE_ID"))
    page_id = store.next_id("landing_page")
    table(store, "landing_page")[page_id] = {
        "ID": str(page_id),
        "TITLE": str(fields["TITLE"]),
        "CODE": str(fields.get("CODE") or f"page{page_id}"),
        "SITE_ID": site["ID"],
        "ACTIVE": "N",
        "PUBLIC": "N",
        "DATE_MODIFY": now_iso(store),
        "DATE_PUBLIC": None,
        "DESCRIPTION": str(fields.get("DESCRIPTION") or ""),
    }
    return page_id


@method("landing.landing.update", "landing")
def page_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    page = _page(store, params)
    fields = _fields(params, _PAGE_FIELDS)
    if "SITE_ID" in fields:
        fields["SITE_ID"] = _site(store, fields["SITE_ID"])["ID"]
    page.update({k: str(v) for k, v in fields.items()})
    page["DATE_MODIFY"] = now_iso(store)
    return True


@method("landing.landing.publication", "landing")
def page_publication(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """landing/page/methods/landing-landing-publication.md: the page (and its site) become active and
    public."""
    page = _page(store, params)
    when = now_iso(store)
    page.update({"ACTIVE": "Y", "PUBLIC": "Y", "DATE_PUBLIC": when})
    table(store, "landing_site")[int(page["SITE_ID"])]["ACTIVE"] = "Y"
    return True


@method("landing.landing.delete", "landing")
def page_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    page = _page(store, params)
    del table(store, "landing_page")[int(page["ID"])]
    for block_id in [k for k, b in table(store, "landing_block").items() if b["lid"] == int(page["ID"])]:
        del table(store, "landing_block")[block_id]
    return True


def _block_out(block: dict[str, Any]) -> dict[str, Any]:
    cards = "".join(
        f'<div class="{selector.lstrip(".")}">card {n + 1}</div>'
        for selector, count in block["cards"].items()
        for n in range(count)
    )
    return {
        "id": block["id"],
        "lid": block["lid"],
        "code": block["code"],
        "name": block["name"],
        "active": block["active"],
        "meta": {"LID": str(block["lid"])},
        "content": f'<div id="b{block["id"]}">{cards}</div>',
        "css": [],
        "js": [],
    }


@method("landing.block.getList", "landing")
def block_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """landing/block/methods/landing-block-get-list.md: the page's blocks (``lid`` may be a list)."""
    lids = params.get("lid")
    if lids in (None, "", []):
        raise ApiError("MISSING_PARAMS", "Required top-level parameter `lid` is not provided.", 400)
    wanted = [positive(x) for x in (lids if isinstance(lids, list) else [lids])]
    for lid in wanted:
        if lid not in table(store, "landing_page"):
            raise ApiError("LANDING_NOT_EXIST", "Landing not found", 400)
    return [_block_out(b) for b in table(store, "landing_block").values() if b["lid"] in wanted]


@method("landing.block.addCard", "landing")
def block_add_card(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """landing/block/methods/landing-block-add-card.md: lid, block, selector (``.class@N``) and content."""
    for key in ("lid", "block", "selector", "content"):
        if params.get(key) in (None, ""):
            raise ApiError("MISSING_PARAMS", f"Required parameter `{key}` is missing", 400)
    page = _page(store, params)
    block = table(store, "landing_block").get(positive(params["block"]) or 0)
    if block is None or block["lid"] != int(page["ID"]):
        raise ApiError("BLOCK_NOT_FOUND", "Block not found", 400)
    selector = str(params["selector"]).split("@", 1)[0]
    if selector not in block["cards"]:
        raise ApiError("CARD_NOT_FOUND", "Card not found in the block", 400)
    block["cards"][selector] += 1
    return True
