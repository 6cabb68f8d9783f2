"""Events in (docs/api.md): a recording call's envelope and items, checked cheaply. Pure.

10 000 items per call are checked in one tight loop, not one pydantic model each: every item becomes the
dict a webhook will carry (``rowId``, ``timestamp`` in the configured zone, ``data``), so nothing is
converted again later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.model import Action
from webhook_manager.domain.timefmt import TIMESTAMP_FORMAT, TimestampFormatter
from webhook_manager.ingest.fields import check_action, check_table

MAX_ITEMS = 10_000
MAX_ROW_ID = 2**63 - 1
_WALL_CLOCK = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The checked content of one recording call."""

    table: str
    action: Action
    items: list[dict[str, Any]]


class TimestampReader:
    """Turns a given ``timestamp`` into the wire form, remembering what it saw (items mostly share one)."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)
        self._known: dict[str, str] = {}

    def __call__(self, value: str) -> str | None:
        known = self._known.get(value)
        if known is None:
            known = self._read(value)
            if known is None:
                return None
            if len(self._known) < 4096:
                self._known[value] = known
        return known

    def _read(self, value: str) -> str | None:
        try:
            if _WALL_CLOCK.fullmatch(value):
                moment = datetime.strptime(value, TIMESTAMP_FORMAT)
            elif _RFC3339.fullmatch(value):
                moment = datetime.fromisoformat(value.upper().replace(" ", "T")).astimezone(self._zone)
            else:
                return None
        except (ValueError, OverflowError):
            return None
        if not 1000 <= moment.year <= 9999:
            return None
        return moment.strftime(TIMESTAMP_FORMAT)


def _envelope(body: Any) -> tuple[str, Action, list[Any]]:
    """The table, action and raw items of a recording call."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    if "table" not in body:
        raise InvalidInput("table", "is required")
    if "action" not in body:
        raise InvalidInput("action", "is required")
    table = check_table(body["table"])
    action = check_action(body["action"])
    raw = body.get("items")
    if not isinstance(raw, list):
        raise InvalidInput("items", "is required: a list of 1 to 10000 events")
    if not 1 <= len(raw) <= MAX_ITEMS:
        raise InvalidInput("items", f"must hold 1 to {MAX_ITEMS} events, not {len(raw)}")
    return table, action, raw


def parse_event_batch(body: Any, *, reader: TimestampReader, now: TimestampFormatter, now_ms: int) -> EventBatch:
    """Check a decoded ``POST /v1/event`` body; raise InvalidInput naming the field (``items[3].rowId``)."""
    table, action, raw = _envelope(body)
    received = now(now_ms)
    items: list[dict[str, Any]] = []
    append = items.append
    for index, item in enumerate(raw):
        if type(item) is not dict:
            raise InvalidInput(f"items[{index}]", "must be an object")
        row_id = item.get("rowId", 0)
        if type(row_id) is not int or not 0 <= row_id <= MAX_ROW_ID:
            if row_id is None:
                row_id = 0
            else:
                raise InvalidInput(f"items[{index}].rowId", "must be a whole number from 0 to 2^63-1")
        stamp = item.get("timestamp")
        if stamp is None:
            stamp = received
        elif type(stamp) is not str or (stamp := reader(stamp)) is None:
            raise InvalidInput(
                f"items[{index}].timestamp",
                "must be 'YYYY-MM-DD HH:MM:SS' or RFC 3339 with a zone, like 2020-01-01T00:00:00Z",
            )
        append({"rowId": row_id, "timestamp": stamp, "data": item.get("data")})
    return EventBatch(table, action, items)


def items_json(items: list[dict[str, Any]]) -> bytes:
    """The items as the JSON array kept in the store; InvalidInput when ``data`` nests too deeply to fit in a
    webhook body (which wraps the array in one more object)."""
    try:
        wrapped = orjson.dumps({"items": items})
    except (orjson.JSONEncodeError, TypeError):
        raise InvalidInput("items", "data nests too deeply to be sent in a webhook (at most 250 levels)") from None
    return wrapped[len(b'{"items":') : -1]
