"""System methods, as CRestProvider implements them (modules/rest/classes/general/rest_provider.php)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import (
    METHODS,
    method,
    wanted_scopes,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


# --- system methods, as CRestProvider implements them (modules/rest/classes/general/rest_provider.php)
# --------

_EVENT_METHODS = (
    "event.bind",
    "event.unbind",
    "event.get",
    "event.offline.get",
    "event.offline.clear",
    "event.offline.error",
    "event.offline.list",
)


def _methods_by_scope() -> dict[str, list[str]]:
    by_scope: dict[str, list[str]] = {}
    for name, (scope_name, _) in METHODS.items():
        by_scope.setdefault(scope_name, []).append(name)
    by_scope.setdefault("event", []).extend(_EVENT_METHODS)
    by_scope.setdefault("basic", []).extend(["batch", "events"])
    return by_scope


@method("profile", "basic")
def profile(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """common/users/profile.md; getProfile: ID, ADMIN, NAME, LAST_NAME, PERSONAL_GENDER, TIME_ZONE,
    TIME_ZONE_OFFSET."""
    user = store.tables["user"][caller.user_id]
    if str(user.get("ACTIVE", True)).lower() in ("false", "n"):
        return {}
    return {
        "ID": str(user["ID"]),
        "ADMIN": caller.is_admin,
        "NAME": user["NAME"],
        "LAST_NAME": user["LAST_NAME"],
        "PERSONAL_GENDER": str(user.get("PERSONAL_GENDER") or ""),
        "TIME_ZONE": "",
        "TIME_ZONE_OFFSET": 10800,
    }


@method("scope", "basic")
def scope(store: Store, params: dict[str, Any], caller: Caller) -> list[str]:
    """scopeList: the credential's scopes, or every scope of the portal with ``full``."""
    query = {str(k).upper(): v for k, v in params.items()}
    if str(query.get("FULL") or "").lower() in ("1", "true", "y"):
        return sorted(s for s in _methods_by_scope() if s != "basic")
    return sorted(s for s in caller.scopes if s != "basic")


@method("methods", "basic")
def methods_list(store: Store, params: dict[str, Any], caller: Caller) -> list[str]:
    """methodsList: the methods of ``scope``, of every scope with ``full``, else of the credential's
    scopes."""
    by_scope = _methods_by_scope()
    wanted = wanted_scopes(params, caller, by_scope)
    return [
        name
        for scope_name in sorted(by_scope)
        if scope_name in wanted
        for name in sorted(by_scope[scope_name])
    ]


@method("method.get", "basic")
def method_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, bool]:
    """common/system/method-get.md: ``isExisting`` on this portal, ``isAvailable`` with this credential's
    scopes. The name is matched as given against the lower-case method list (rest_provider.php getMethod)."""
    name = str(params.get("name") or "")
    result = {"isExisting": False, "isAvailable": False}
    for scope_name, names in _methods_by_scope().items():
        if name and name in names:
            result["isExisting"] = True
            if scope_name == "basic" or scope_name in caller.scopes:
                result["isAvailable"] = True
    return result


@method("app.info", "basic")
def app_info(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """common/system/app-info.md; appInfo: an application's record, a webhook's scopes, else an access
    error."""
    if caller.kind == "oauth" and caller.app_id:
        return {
            "ID": sorted(store.apps).index(caller.app_id) + 1 if caller.app_id in store.apps else 1,
            "CODE": f"local.{caller.app_id}",
            "VERSION": 1,
            "STATUS": "L",
            "INSTALLED": True,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LANGUAGE_ID": "en",
            "LICENSE": "en_pro",
            "LICENSE_TYPE": "pro",
            "LICENSE_FAMILY": "pro",
        }
    if caller.kind == "webhook":
        return {"SCOPE": sorted(s for s in caller.scopes if s != "basic"), "LICENSE": "en_pro"}
    raise ApiError("ACCESS_DENIED", "Application context required", 403)


@method("feature.get", "basic")
def feature_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, str]:
    """getFeature: ``CODE`` is required (CODE_EMPTY); the sandbox enables every feature."""
    query = {str(k).upper(): v for k, v in params.items()}
    if not query.get("CODE"):
        raise ApiError("CODE_EMPTY", "CODE can't be empty", 400)
    return {"value": "Y"}


@method("server.time", "basic")
def server_time(store: Store, params: dict[str, Any], caller: Caller) -> str:
    """common/system/server-time.md: ``YYYY-MM-DDThh:mm:ss±hh:mm`` in the portal's time zone."""
    from bitrix24_sandbox.portal import _iso

    return _iso(store.wall())
