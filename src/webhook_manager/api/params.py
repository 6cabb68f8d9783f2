"""Query parameters and time fields shared by the delivery-log routes."""

from __future__ import annotations

from typing import NoReturn

from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.ids import is_id
from webhook_manager.domain.timefmt import rfc3339_ms

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


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


def checked_id(value: str) -> str:
    """An ``{id}`` in a path: 24 lowercase hex characters."""
    if not is_id(value):
        raise InvalidInput("id", "must be 24 lowercase hex characters")
    return value


def optional_time(ms: int | None) -> str:
    """An RFC 3339 time, or "" for one that has not happened yet."""
    return "" if ms is None else rfc3339_ms(ms)


def required(value: str | None, field: str) -> str:
    """A query parameter the call cannot do without."""
    if value is None:
        missing(field)
    return value


def missing(field: str) -> NoReturn:
    """Refuse a call that lacks ``field``."""
    raise InvalidInput(field, "is required")
