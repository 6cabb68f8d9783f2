"""Secrets in request targets are hidden before a log line is written."""

from __future__ import annotations

import logging

import pytest

from webhook_manager.observability.redaction import SecretsRedacted, redacted


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/api/?sessionKey=abc&clientCode=100", "/api/?sessionKey=***&clientCode=100"),
        ("/api/?clientCode=100&PASSWORD=pw%20x", "/api/?clientCode=100&PASSWORD=***"),
        ("/v1/x?jwt=a.b.c;token=t&identityToken=i", "/v1/x?jwt=***;token=***&identityToken=***"),
        ("/api/?request=verifyUser&username=bob", "/api/?request=verifyUser&username=bob"),
        ("/api/?mysessionKey=kept", "/api/?mysessionKey=kept"),  # only the parameters of those names
        ("postgresql://app:pw@db/shop", "postgresql://app:***@db/shop"),
        (
            "postgres postgresql://app@db/shop?password=hunter2&sslpassword=x",
            "postgres postgresql://app@db/shop?password=***&sslpassword=***",
        ),
        ("mysql://root:p%40ss@127.0.0.1:3306/app?x=1", "mysql://root:***@127.0.0.1:3306/app?x=1"),
        ("https://hooks.example/x?api_key=k1&token=t&keep=1", "https://hooks.example/x?api_key=***&token=***&keep=1"),
        ("cannot send: no user in mailto:bob@example.com", "cannot send: no user in mailto:bob@example.com"),
    ],
)
def test_secret_parameters_are_hidden(given: str, expected: str) -> None:
    assert redacted(given) == expected


def test_the_filter_hides_them_in_a_records_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s "%s"', ("1.2.3.4", "/api/?password=x"), None)
    assert SecretsRedacted().filter(record)
    assert record.getMessage() == '1.2.3.4 "/api/?password=***"'
