"""The error a sandbox method raises; the portal turns it into Bitrix24's error envelope and HTTP status."""

from __future__ import annotations

from typing import Any

# HTTP statuses per code (protocol.md §3); codes not listed answer 400.
STATUS: dict[str, int] = {
    "INTERNAL_SERVER_ERROR": 500,
    "ERROR_UNEXPECTED_ANSWER": 500,
    "PORTAL_DELETED": 500,
    "QUERY_LIMIT_EXCEEDED": 503,
    "OVERLOAD_LIMIT": 503,
    "OPERATION_TIME_LIMIT": 429,
    "ERROR_BATCH_METHOD_NOT_ALLOWED": 405,
    "ERROR_BATCH_LENGTH_EXCEEDED": 400,
    "NO_AUTH_FOUND": 401,
    "expired_token": 401,
    "invalid_token": 401,
    "INVALID_REQUEST": 400,
    "ACCESS_DENIED": 403,
    "INVALID_CREDENTIALS": 403,
    "insufficient_scope": 403,
    "user_access_error": 403,
    "ERROR_METHOD_NOT_FOUND": 404,
    "WRONG_AUTH_TYPE": 401,
    "NOT_FOUND": 400,
}


class ApiError(Exception):
    """A Bitrix24 error raised by a sandbox method handler."""

    def __init__(
        self,
        code: str,
        description: str = "",
        status: int | None = None,
        *,
        time: dict[str, float] | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.time = (
            time  # a `time` block for the error envelope (OPERATION_TIME_LIMIT carries operating_reset_at)
        )
        self.code = code
        self.description = description
        self.status = status if status is not None else STATUS.get(code, 400)
        self.validation: list[dict[str, Any]] | None = None  # REST 3.0: [{message, field}]

    def with_message(self, message: str) -> ApiError:
        """The same error with another message (and the validation entry's message too)."""
        self.description = message
        if self.validation:
            self.validation = [{**v, "message": message} for v in self.validation]
        return self
