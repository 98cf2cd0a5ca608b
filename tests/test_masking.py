"""Secrets never leak: masking of text, URLs, params and log records (tracebacks included)."""

from __future__ import annotations

import logging

import pytest

from bitrix24_agent_tools import masking
from bitrix24_agent_tools.masking import MASK, get_logger, mask_params, mask_text, register_secret

CODE = "k3y9secretcode77"


def test_webhook_code_is_masked_by_shape_even_if_never_registered() -> None:
    text = f"POST https://acme.bitrix24.ru/rest/1/{CODE}/crm.deal.list.json failed"
    masked = mask_text(text)
    assert CODE not in masked
    assert "/rest/1/***/crm.deal.list.json" in masked


def test_rest_api_v3_webhook_shape_is_masked() -> None:
    assert CODE not in mask_text(f"https://acme.bitrix24.ru/rest/api/7/{CODE}/tasks.task.get")


def test_query_auth_and_bearer_are_masked() -> None:
    masked = mask_text("GET /rest/crm.deal.get?id=1&auth=abcdef123456 Authorization: Bearer tok.en-value_1")
    assert "abcdef123456" not in masked
    assert "tok.en-value_1" not in masked
    assert "id=1" in masked


def test_registered_secret_is_masked_in_any_shape() -> None:
    secret = "refresh-9f8e7d6c5b4a"
    register_secret(secret)
    assert mask_text(f"token was {secret}!") == f"token was {MASK}!"
    assert secret not in mask_text(repr({"x": secret}))


def test_short_values_are_not_registered_as_secrets() -> None:
    register_secret("abc")
    assert mask_text("abc abcd") == "abc abcd"


def test_mask_params_hides_secret_keys_deeply_and_keeps_the_rest() -> None:
    params = {"auth": "xyzxyzxyz", "fields": {"TITLE": "Deal", "nested": [{"access_token": "t0k3n123"}]}}
    masked = mask_params(params)
    assert masked == {"auth": MASK, "fields": {"TITLE": "Deal", "nested": [{"access_token": MASK}]}}
    assert params["auth"] == "xyzxyzxyz"  # the caller's params are not mutated


def test_logger_masks_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    secret = "app-token-5566778899"
    register_secret(secret)
    log = get_logger("bitrix24_agent_tools.test_masking")
    with caplog.at_level(logging.DEBUG, logger="bitrix24_agent_tools.test_masking"):
        log.warning("calling %s with %s", f"https://p.bitrix24.ru/rest/1/{CODE}/x", secret)
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            log.exception("failed")
    rendered = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "failed" in rendered and "RuntimeError" in rendered
    assert secret not in rendered
    assert CODE not in rendered


def test_get_logger_attaches_the_filter_once() -> None:
    log = get_logger("bitrix24_agent_tools.once")
    get_logger("bitrix24_agent_tools.once")
    assert sum(isinstance(f, masking.MaskingFilter) for f in log.filters) == 1
