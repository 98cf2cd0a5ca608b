"""Every failure a Bitrix24 call can end in, as one typed hierarchy keyed by error code and HTTP status.

    Bitrix24Error .code .status .retryable .hint ├── ConfigError (also ValueError) bad local input: webhook
    URL, api version, params, batch shape ├── AuthError NO_AUTH_FOUND, invalid_token, WRONG_AUTH_TYPE,
    invalid_client … │ ├── TokenExpired expired_token — refreshed and retried once by the client │ └──
    ReauthorizationRequired invalid_grant: the refresh token is dead; reinstall / re-authorize ├── ScopeError
    insufficient_scope, invalid_scope ├── AccessDenied ACCESS_DENIED, INVALID_CREDENTIALS, user_access_error,
    PAYMENT_REQUIRED ├── RateLimited QUERY_LIMIT_EXCEEDED (503) — retried with backoff ├── OperatingLimit
    OPERATION_TIME_LIMIT (429) — the method pauses until .reset_at ├── Overloaded OVERLOAD_LIMIT — a manual
    block by support; not retried ├── NotFound NOT_FOUND, ERROR_METHOD_NOT_FOUND, …ENTITYNOTFOUNDEXCEPTION ├──
    BadRequest ERROR_ARGUMENT, ERROR_CORE, batch errors, REST 3.0 validation … ├── ServerError 5xx,
    INTERNAL_SERVER_ERROR, PORTAL_DELETED — retryable except a deleted portal ├── NetworkError no answer:
    connect/read failures, dropped connections └── InvalidResponse the answer is not a Bitrix24 envelope (HTML
    page, truncated JSON)

Legacy CRM methods answer ``{"error": "", "error_description": "Not found"}`` (HTTP 400): the code is then
read from the text (NOT_FOUND, CRM_ACCESS_DENIED, else ERROR_ARGUMENT) and the portal's text is kept as the
message.

Messages, reprs and hints are masked: no webhook code or token can appear in them (protocol.md §1).
"""

from __future__ import annotations

from typing import ClassVar

from bitrix24_agent_tools.masking import mask_text

_V3_PREFIX = "BITRIX_REST_V3_EXCEPTION_"

# One line of cause and fix per code in protocol.md §3 (and the method-level codes seen across the docs).
_HINTS: dict[str, str] = {
    "QUEUE_FULL": "nothing was sent: the portal's request budget is booked further ahead than this client "
    "waits; try again after the time given",
    "INTERNAL_SERVER_ERROR": "the portal failed internally; the call is retried with backoff, try again "
    "later",
    "ERROR_UNEXPECTED_ANSWER": "the portal gave an unexpected answer; retried with backoff, try again later",
    "QUERY_LIMIT_EXCEEDED": "too many requests for this portal; slow down (the client queues and retries)",
    "OPERATION_TIME_LIMIT": "this method's operating-time budget is spent; wait until operating_reset_at",
    "OVERLOAD_LIMIT": "Bitrix24 support blocked REST for this portal; contact support, retrying will not "
    "help",
    "ERROR_BATCH_METHOD_NOT_ALLOWED": "this method cannot run inside batch (a batch cannot contain a batch)",
    "ERROR_BATCH_LENGTH_EXCEEDED": "a batch takes at most 50 commands; split it (Bitrix24.batch splits for "
    "you)",
    "NO_AUTH_FOUND": "the webhook code or access token is wrong; check B24_WEBHOOK_URL or re-authorize the "
    "app",
    "expired_token": "the OAuth access token expired; refresh it with the refresh token (done automatically)",
    "invalid_token": "the access token is not valid for this portal; re-authorize the application",
    "INVALID_REQUEST": "the portal requires HTTPS; use an https:// URL",
    "ACCESS_DENIED": "REST is not available to this user or on this plan; check the plan and the user's "
    "rights",
    "INVALID_CREDENTIALS": "the acting user lacks permission for this; use a user with the right role",
    "insufficient_scope": "the webhook or app lacks the scope this method needs; add the scope and reinstall",
    "invalid_scope": "the requested scope is not allowed for this app; fix the app's scopes",
    "user_access_error": "the app is restricted to some users; ask the admin to grant this user access",
    "PORTAL_DELETED": "the portal is closed or deleted; nothing to retry",
    "ERROR_METHOD_NOT_FOUND": "no such REST method on this portal (or its module is off); check the method "
    "name",
    "WRONG_AUTH_TYPE": "this method needs OAuth application auth; a webhook cannot call it",
    "ERROR_CORE": "the portal rejected the call; check the parameters against the method's fields",
    "ERROR_ARGUMENT": "a parameter is missing or invalid; check the method's fields (*.fields)",
    "NOT_FOUND": "the record does not exist or is not visible to this user; check the id",
    "CRM_ACCESS_DENIED": "the acting user has no right to this record or action; use a user with that CRM "
    "permission",
    "INVALID_ARG_VALUE": "a filter or order field or value is not allowed; check the names with "
    "crm.item.fields",
    "invalid_request": "the OAuth request is malformed; check client_id, grant_type and the token server URL",
    "invalid_client": "the client id or secret is wrong; check B24_CLIENT_ID and B24_CLIENT_SECRET",
    "invalid_grant": "the refresh token is dead or was already used; reinstall or re-authorize the "
    "application",
    "PAYMENT_REQUIRED": "the app or portal subscription has lapsed; renew it in Bitrix24 Market",
    "NETWORK_ERROR": "the portal did not answer; check the URL and the network (retried when safe)",
    "INVALID_RESPONSE": "the answer was not a Bitrix24 envelope (an HTML page or cut JSON); check the portal "
    "URL",
    "CONFIG_ERROR": "fix the local argument named in the message",
    _V3_PREFIX + "VALIDATIONEXCEPTION": "a field failed validation; the message names the field",
    _V3_PREFIX + "INVALIDJSONEXCEPTION": "REST 3.0 accepts JSON bodies only",
    _V3_PREFIX + "UNKNOWNDTOPROPERTYEXCEPTION": "an unknown field was sent; read the method's field list",
    _V3_PREFIX + "INVALIDFILTEREXCEPTION": "the filter uses an unknown operator or field",
    _V3_PREFIX + "ENTITYNOTFOUNDEXCEPTION": "the record does not exist or is not visible to this user",
    _V3_PREFIX + "ACCESSDENIEDEXCEPTION": "the acting user lacks permission for this",
    _V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION": "the webhook or app lacks the scope this method needs",
    _V3_PREFIX
    + "IDEMPOTENCYKEYREUSEDEXCEPTION": "this Idempotency-Key was used with a different body; use a new key",
}


def hint_for(code: str) -> str:
    """One line of cause and fix for a Bitrix24 error code (used by errors and the diagnostics pack)."""
    if code in _HINTS:
        return _HINTS[code]
    for known, hint in _HINTS.items():
        if known.lower() == code.lower():
            return hint
    return "see the error description; the Bitrix24 docs list this code under the method's page"


class Bitrix24Error(Exception):
    """Base of every error the client raises."""

    retryable: ClassVar[bool] = False

    def __init__(
        self, code: str, description: str = "", status: int | None = None, method: str | None = None
    ) -> None:
        self.code = code
        self.description = mask_text(description or "")
        self.status = status
        self.method = method
        super().__init__(str(self))

    @property
    def hint(self) -> str:
        return hint_for(self.code)

    def __str__(self) -> str:
        where = f" in {self.method}" if self.method else ""
        status = f" (HTTP {self.status})" if self.status else ""
        text = (
            f"{self.code}{where}{status}: {self.description}"
            if self.description
            else f"{self.code}{where}{status}"
        )
        return mask_text(f"{text} — {self.hint}")

    def __repr__(self) -> str:
        return mask_text(
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, method={self.method!r})"
        )

    def short(self) -> str:
        """One line for a model or a person: the code, what the portal said, and the hint."""
        said = mask_text(
            " ".join(self.description.split())
        )  # masked before it is cut: no part of a secret survives
        if len(said) > 160:
            said = said[:160] + f"… (+{len(said) - 160} chars)"
        return mask_text(f"{self.code}: {said} — {self.hint}" if said else f"{self.code}: {self.hint}")


class ConfigError(Bitrix24Error, ValueError):
    def __init__(self, message: str) -> None:
        super().__init__("CONFIG_ERROR", message)

    def __str__(self) -> str:
        return mask_text(self.description)


class AuthError(Bitrix24Error):
    pass


class TokenExpired(AuthError):
    pass


class ReauthorizationRequired(AuthError):
    pass


class ScopeError(Bitrix24Error):
    pass


class AccessDenied(Bitrix24Error):
    pass


class RateLimited(Bitrix24Error):
    retryable = True


class QueueFull(RateLimited):
    """Refused before sending: the wait for the portal's rate budget (or the method's operating budget) is
    longer than the client's ``max_wait``. ``retry_after`` is when to try again; nothing reached the
    portal."""

    sent = False

    def __init__(self, method: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            "QUEUE_FULL", f"the next free slot is {retry_after:.0f} s away; try again then", method=method
        )


class OperatingLimit(Bitrix24Error):
    retryable = True

    def __init__(
        self,
        code: str,
        description: str = "",
        status: int | None = None,
        method: str | None = None,
        reset_at: float | None = None,
    ) -> None:
        self.reset_at = reset_at
        super().__init__(code, description, status, method)


class Overloaded(Bitrix24Error):
    pass


class NotFound(Bitrix24Error):
    pass


class BadRequest(Bitrix24Error):
    pass


class ServerError(Bitrix24Error):
    retryable = True


class PortalDeleted(ServerError):
    retryable = False


class NetworkError(Bitrix24Error):
    retryable = True


class InvalidResponse(Bitrix24Error):
    # A cut or HTML body behind a 200 is a passing fault: a read is repeated; a write never is (its outcome is
    # unknown, see _flow._retry_delay).
    retryable = True


_BY_CODE: dict[str, type[Bitrix24Error]] = {
    "INTERNAL_SERVER_ERROR": ServerError,
    "ERROR_UNEXPECTED_ANSWER": ServerError,
    "PORTAL_DELETED": PortalDeleted,
    "QUERY_LIMIT_EXCEEDED": RateLimited,
    "OPERATION_TIME_LIMIT": OperatingLimit,
    "OVERLOAD_LIMIT": Overloaded,
    "ERROR_BATCH_METHOD_NOT_ALLOWED": BadRequest,
    "ERROR_BATCH_LENGTH_EXCEEDED": BadRequest,
    "NO_AUTH_FOUND": AuthError,
    "expired_token": TokenExpired,
    "invalid_token": AuthError,
    "WRONG_AUTH_TYPE": AuthError,
    "invalid_request": AuthError,
    "invalid_client": AuthError,
    "invalid_grant": ReauthorizationRequired,
    "INVALID_REQUEST": BadRequest,
    "ACCESS_DENIED": AccessDenied,
    "INVALID_CREDENTIALS": AccessDenied,
    "user_access_error": AccessDenied,
    "PAYMENT_REQUIRED": AccessDenied,
    "insufficient_scope": ScopeError,
    "invalid_scope": ScopeError,
    "ERROR_METHOD_NOT_FOUND": NotFound,
    "NOT_FOUND": NotFound,
    "ERROR_CORE": BadRequest,
    "ERROR_ARGUMENT": BadRequest,
    "INVALID_ARG_VALUE": BadRequest,
    "CRM_ACCESS_DENIED": AccessDenied,
    _V3_PREFIX + "ENTITYNOTFOUNDEXCEPTION": NotFound,
    _V3_PREFIX + "ACCESSDENIEDEXCEPTION": AccessDenied,
    _V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION": ScopeError,
}
_BY_CODE_LOWER = {k.lower(): v for k, v in _BY_CODE.items()}


def known_codes() -> frozenset[str]:
    """Every error code this library knows, in lower case (the portal's codes and its own)."""
    return frozenset(_BY_CODE_LOWER) | {k.lower() for k in _HINTS}


def legacy_code(description: str) -> str:
    """Legacy CRM methods answer ``{"error": "", "error_description": "Not found"}`` with HTTP 400 (e.g.
    api-reference/crm/deals/crm-deal-get.md, Error Handling): the text is all there is, so the code is read
    from it."""
    text = description.strip().lower()
    if "not found" in text:
        return "NOT_FOUND"
    if text.startswith("access denied") or "permission" in text:
        return "CRM_ACCESS_DENIED"
    return "ERROR_ARGUMENT"


def error_from(
    code: str, description: str = "", status: int | None = None, method: str | None = None
) -> Bitrix24Error:
    """Build the right error for a code (falling back on the HTTP status when the code is unknown)."""
    if code == "":
        code = legacy_code(description)
    cls = _BY_CODE.get(code) or _BY_CODE_LOWER.get(code.lower())
    if cls is None:
        if code.startswith(_V3_PREFIX):
            cls = BadRequest
        elif status is not None and status >= 500:
            cls = ServerError
        elif status == 401:
            cls = AuthError
        elif status == 403:
            cls = AccessDenied
        elif status == 404:
            cls = NotFound
        else:
            cls = BadRequest
    return cls(code, description, status, method)
