"""Consents (userconsent.*) and signed documents (sign.b2e.*): the compliance pack."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import app_only, method, now_iso, positive, table, upper
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


@method("userconsent.agreement.list", "userconsent")
def agreement_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """user-consent/user-consent-agreement-list.md: ID, NAME, ACTIVE, LANGUAGE_ID."""
    return [
        {k: a[k] for k in ("ID", "NAME", "ACTIVE", "LANGUAGE_ID")}
        for a in table(store, "consent_agreement").values()
    ]


def _agreement(store: Store, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        raise ApiError("ERROR_ARGUMENT", "Parameter `Agreement ID` required.", 400)
    agreement = table(store, "consent_agreement").get(positive(value) or 0)
    if agreement is None:
        raise ApiError("ERROR_ARGUMENT", f"Agreement with id `{value}` not found.", 400)
    return agreement


@method("userconsent.agreement.text", "userconsent")
def agreement_text(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, str]:
    agreement = _agreement(store, upper(params).get("ID"))
    return {"LABEL": agreement["LABEL"], "TEXT": agreement["TEXT"]}


@method("userconsent.consent.add", "userconsent")
def consent_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """user-consent/user-consent-consent-add.md: AGREEMENT_ID and IP are required; the result is the
    consent's ID."""
    query = upper(params)
    agreement = _agreement(store, query.get("AGREEMENT_ID"))
    try:
        ip = str(ipaddress.ip_address(str(query.get("IP") or "")))
    except ValueError:
        raise ApiError("ERROR_ARGUMENT", "Parameter `IP` required.", 400) from None  # UNVERIFIED text
    consent_id = store.next_id("consent")
    table(store, "consent")[consent_id] = {
        "ID": str(consent_id),
        "AGREEMENT_ID": agreement["ID"],
        "IP": ip,
        "USER_ID": str(positive(query.get("USER_ID")) or ""),
        "URL": str(query.get("URL") or ""),
        "ORIGIN_ID": query.get("ORIGIN_ID"),
        "ORIGINATOR_ID": query.get("ORIGINATOR_ID"),
        "DATE_INSERT": now_iso(store),
    }
    return consent_id


def _tail(
    store: Store, params: dict[str, Any], caller: Caller, keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    app_only(
        caller,
        "WRONG_AUTH_TYPE",
        "Current authorization type is denied for this method Application context required",
    )
    limit = positive(params.get("limit")) or 20
    offset = max(0, int(positive(params.get("offset")) or 0))
    docs = [d for d in table(store, "sign_document").values() if d["member_id"] == caller.user_id]
    return [
        {
            **{k: d[k] for k in keys},
            "file_url": f"{store.base_url}/rest/download.json?token=sign.b2e|{d['id']}",
        }
        for d in docs[offset : offset + limit]
    ]


@method("sign.b2e.personal.tail", "sign.b2e")
def personal_tail(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sign/sign-b2e-personal-tail.md: the caller's signed documents."""
    return _tail(store, params, caller, ("id", "title", "signed_date"))


@method("sign.b2e.mysafe.tail", "sign.b2e")
def mysafe_tail(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sign/sign-b2e-mysafe-tail.md: the documents in the caller's company safe."""
    return _tail(
        store,
        params,
        caller,
        ("id", "title", "create_date", "signed_date", "creator_id", "member_id", "role"),
    )
