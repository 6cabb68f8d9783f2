"""The body of a bulk resend (``POST /v1/webhook/resend``): which of the client's failed webhooks get a new
round of tries. Every field is optional; errors name the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.ids import is_id
from webhook_manager.ingest.fields import check_action, check_table

FIELDS = ("table", "action", "status", "since", "until", "configurationId")
_DAYS = "(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31"
_LEAP_YEAR = "(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
_YEAR = "(?:100[1-9]|10[1-9][0-9]|1[1-9][0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = re.compile(
    f"(?:{_YEAR}-(?:{_DAYS})|{_LEAP_YEAR}-02-29)[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    f"(?:\\.[0-9]{{1,9}})?{_OFFSET}"
)
"""RFC 3339 with a zone, real dates of years 1001–9998 (schemas.RFC3339_PATTERN, which the document shows)."""


@dataclass(frozen=True)
class ResendFilter:
    """The webhooks a bulk resend takes: each None is no filter; ``until_ms`` is exclusive."""

    table: str | None = None
    action: str | None = None
    configuration_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


def parse_resend_filter(body: Any) -> ResendFilter:
    """Check a decoded bulk resend body; raise InvalidInput naming the field."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    for key in body:
        if key not in FIELDS:
            raise InvalidInput(key, f"is not a filter of a resend (they are {', '.join(FIELDS)})")
    if "status" in body and body["status"] != "failed":
        raise InvalidInput("status", "must be failed: only failed webhooks can be resent")
    configuration_id = body.get("configurationId")
    if "configurationId" in body and not (isinstance(configuration_id, str) and is_id(configuration_id)):
        raise InvalidInput("configurationId", "must be a configuration id: 24 lowercase hex characters")
    return ResendFilter(
        table=check_table(body["table"]) if "table" in body else None,
        action=check_action(body["action"]).value if "action" in body else None,
        configuration_id=configuration_id,
        since_ms=_time(body, "since"),
        until_ms=_time(body, "until"),
    )


def _time(body: dict[str, Any], field: str) -> int | None:
    """An RFC 3339 time → milliseconds since the epoch, rounded up: webhooks are created on whole milliseconds,
    so ``createdAt >= since`` and ``createdAt < until`` hold of the same ones with it."""
    if field not in body:
        return None
    value = body[field]
    if not isinstance(value, str) or TIME.fullmatch(value) is None:
        raise InvalidInput(field, "must be an RFC 3339 time with its zone, like 2020-01-01T00:00:00Z")
    text = value.upper().replace(" ", "T")
    fraction = ""
    if "." in text:
        whole, rest = text.split(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, text = rest[:digits], whole + rest[digits:]
    seconds = int(datetime.fromisoformat(text).timestamp())
    nanoseconds = int(fraction.ljust(9, "0")) if fraction else 0
    return seconds * 1000 + -(-nanoseconds // 1_000_000)
