"""Path and query parameters and time fields shared by the routes, with how the OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import WithJsonSchema

from webhook_manager.api.schemas import ID_PATTERN, MAX_REPORT_MINUTES, TABLE
from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.ids import is_id
from webhook_manager.domain.model import Action, WebhookStatus
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.ingest.fields import TABLE_PATTERN

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
DEFAULT_MINUTES = 60
_ACTIONS = [a.value for a in Action]
_STATUSES = [s.value for s in WebhookStatus]

# The handlers check these themselves (checked_id, check_limit, check_table, check_action), with their own
# messages; the annotations only say in the document what they accept.
IdPath = Annotated[str, Path(description="24 lowercase hex characters", json_schema_extra={"pattern": ID_PATTERN})]
TableQuery = Annotated[str, Query(description="The table"), WithJsonSchema({"type": "string", "pattern": TABLE})]
ActionQuery = Annotated[str, Query(description="The action"), WithJsonSchema({"type": "string", "enum": _ACTIONS})]
TableFilter = Annotated[
    str | None,
    Query(description="Only this table; empty is no filter"),
    WithJsonSchema({"type": "string", "pattern": f"^(?:{TABLE_PATTERN.pattern})?$"}),
]
ActionFilter = Annotated[
    str | None,
    Query(description="Only this action; empty is no filter"),
    WithJsonSchema({"type": "string", "enum": [*_ACTIONS, ""]}),
]
Limit = Annotated[
    str | None,
    Query(description="How many, newest first: default 20 (also when empty), above 100 cut to 100"),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}]}),
]

StatusFilter = Annotated[
    str | None,
    Query(description="Only webhooks with this status (extension)"),
    WithJsonSchema({"type": "string", "enum": _STATUSES}),
]
Before = Annotated[
    str | None,
    Query(
        description="Only webhooks older than this one of the client's, for paging: the page after a list is "
        "before=<its last id> (extension)"
    ),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN}),
]
Minutes = Annotated[
    str | None,
    Query(description=f"The last this many minutes: 1 to {MAX_REPORT_MINUTES}, default {DEFAULT_MINUTES}"),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_REPORT_MINUTES}),
]


def check_limit(raw: str | None) -> int:
    """``limit``: default 20, above 100 cut to 100, below 1 (or not a number) refused."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("limit", "must be a whole number from 1 to 100") from None
    if value < 1:
        raise InvalidInput("limit", "must be at least 1")
    return min(value, MAX_LIMIT)


def check_status(raw: str | None) -> str | None:
    """``status``: a webhook's status; None (no filter) when absent."""
    if raw is not None and raw not in _STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(_STATUSES)}")
    return raw


def check_before(raw: str | None) -> str | None:
    """``before``: a webhook's id (whether it is one of the client's is the store's to say); None when absent."""
    if raw is not None and not is_id(raw):
        raise InvalidInput("before", "must be a webhook id: 24 lowercase hex characters")
    return raw


def check_minutes(raw: str | None) -> int:
    """``minutes``: a whole number from 1 to 1440, default 60."""
    if raw is None:
        return DEFAULT_MINUTES
    digits = raw.lstrip("0")  # leading zeros are fine; so many digits that ``int`` refuses them are not
    if not (raw.isascii() and raw.isdigit() and len(digits) <= 4 and 1 <= int(digits or "0") <= MAX_REPORT_MINUTES):
        raise InvalidInput("minutes", f"must be a whole number from 1 to {MAX_REPORT_MINUTES}")
    return int(digits)


def checked_id(value: str) -> str:
    """An ``{id}`` in a path: 24 lowercase hex characters."""
    if not is_id(value):
        raise InvalidInput("id", "must be 24 lowercase hex characters")
    return value


def optional_time(ms: int | None) -> str:
    """An RFC 3339 time, or "" for one that has not happened yet."""
    return "" if ms is None else rfc3339_ms(ms)
