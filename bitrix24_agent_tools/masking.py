"""Mask secrets (webhook codes, tokens, client secrets, application tokens) in text, URLs and params.

Every path that can show data to a person or a model — log records, exception messages, reprs, audit rows,
tool outputs — passes through these helpers. Two mechanisms work together:

* **shape**: webhook URLs (``/rest/<user>/<code>/``, ``/rest/api/<user>/<code>/``), ``auth=`` query values and
  well-known secret keys in mappings are masked wherever they appear;
* **value**: every secret the library learns (a webhook code, an access or refresh token, a client secret,
  an application token) is registered with :func:`register_secret`, and any later occurrence of that exact
  value in any text is masked, whatever shape it is in.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

#: Keys whose values are secrets wherever they appear (compared case-insensitively).
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "auth",
        "access_token",
        "refresh_token",
        "client_secret",
        "application_token",
        "webhook_code",
        "password",
        "secret",
        "token",
        "api_key",
        "authorization",
        "idempotency_secret",
    }
)

# Short values would mask ordinary words; real Bitrix24 secrets are far longer than this.
_MIN_SECRET_LEN = 6

_lock = threading.Lock()
_secrets: set[str] = set()
# Registered secrets are found without a regex over all of them, so that a check costs the same with 10 or
# 10,000 secrets and registering one more is a few dict inserts. A secret of at least _GRAM + _STRIDE - 1
# characters is indexed by its _GRAM-character substrings at offsets 0.._STRIDE-1; wherever it occurs in a
# text, one of those substrings starts at a multiple of _STRIDE, so sampling the text every _STRIDE characters
# finds every candidate (then confirmed with a plain substring test). Shorter secrets (rare: real codes and
# tokens are longer) are tested one by one.
_GRAM = 6
_STRIDE = 8
_by_gram: dict[str, tuple[str, ...]] = {}
_short: tuple[str, ...] = ()

_WEBHOOK_RE = re.compile(r"(/rest/(?:api/)?\d+/)([^/\s?#\"']+)")
_QUERY_SECRET_RE = re.compile(
    r"((?:^|[?&\s\"'])(?:auth|access_token|refresh_token|client_secret|application_token)(?:%5B[^=&]*%5D|\[[^=&]*\])?=)([^&\s\"']+)",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"(Bearer\s+)([A-Za-z0-9._~+/=-]+)", re.IGNORECASE)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`mask_text` hides it from now on."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        global _short
        if len(value) < _GRAM + _STRIDE - 1:
            _short = tuple(sorted((*_short, value), key=len, reverse=True))
            return
        for offset in range(_STRIDE):  # copy-on-write tuples: a reader never sees one change under it
            gram = value[offset : offset + _GRAM]
            _by_gram[gram] = (*_by_gram.get(gram, ()), value)


def _mask_registered(text: str) -> str:
    if len(text) < _MIN_SECRET_LEN or not _secrets:
        return text
    index = _by_gram
    found = {s for s in _short if s in text}
    if index:
        hits = {text[i : i + _GRAM] for i in range(0, len(text) - _GRAM + 1, _STRIDE)} & index.keys()
        for gram in hits:
            found.update(s for s in index[gram] if s in text)
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_registered(text: str) -> str:
    """``text`` with only the registered secrets masked: what a reviewer reads, where every other word the
    model wrote must stay visible."""
    return _mask_registered(text)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def mask_text(text: str) -> str:
    """Return ``text`` with every registered secret and every secret-shaped fragment masked."""
    if not text:
        return text
    text = _mask_registered(text)
    # Each shape needs a literal the text must contain; checking for it first (C speed) spares the regex scan.
    if "/rest/" in text:
        text = _WEBHOOK_RE.sub(lambda m: m.group(1) + MASK, text)
    if "=" in text:
        text = _QUERY_SECRET_RE.sub(lambda m: m.group(1) + MASK, text)
    if "bearer" in text.lower():
        text = _BEARER_RE.sub(lambda m: m.group(1) + MASK, text)
    return text


def mask_url(url: str) -> str:
    """Mask the webhook code and any ``auth``-like query value of a URL."""
    return mask_text(url)


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def mask_params(value: Any) -> Any:
    """Deep-copy ``value`` with secret keys' values replaced and secret values masked in every string."""
    if isinstance(value, Mapping):
        return {k: (MASK if is_secret_key(k) else mask_params(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_params(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_registered_params(value: Any) -> Any:
    """Deep-copy ``value`` with only registered secrets masked: what a reviewer is shown of a call."""
    if isinstance(value, Mapping):
        return {k: mask_registered_params(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_registered_params(v) for v in value]
    if isinstance(value, str):
        return _mask_registered(value)
    return value


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug; do not hide the record
            return True
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        # A traceback can quote a URL or a token too; handlers print ``exc_text`` when it is set.
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(_TRACEBACK_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_TRACEBACK_FORMATTER = logging.Formatter()


_FILTER = MaskingFilter()


def get_logger(name: str) -> logging.Logger:
    """Return the named logger with the masking filter attached.

    Logger filters are not inherited by child loggers, so every module of the library takes its logger
    from here (``log = get_logger(__name__)``) rather than from :func:`logging.getLogger`.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def protect_third_party_loggers(
    names: Iterable[str] = ("httpx", "httpcore", "mcp", "uvicorn.access"),
) -> None:
    """Attach the masking filter to libraries that log request URLs themselves (httpx logs every URL at INFO,
    and a webhook URL carries its secret code in the path)."""
    for name in names:
        get_logger(name)
