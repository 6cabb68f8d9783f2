"""The exact body of a webhook (CONTRACT.md §6). Pure.

Keys in this order: id, hmac, clientCode, table, action, eventCount (a string, as in Erply's example), items.
Items are kept in their wire form from the moment they are recorded, so building a body is slicing a list
and one orjson call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from webhook_manager.signing import erply_hmac

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def webhook_body(
    webhook_id: str, secret: str, client_code: str, table: str, action: str, items: Sequence[Any]
) -> bytes:
    """The UTF-8 JSON body of one webhook."""
    return orjson.dumps(
        {
            "id": webhook_id,
            "hmac": erply_hmac(secret, webhook_id),
            "clientCode": client_code,
            "table": table,
            "action": action,
            "eventCount": str(len(items)),
            "items": items,
        }
    )


class TimestampFormatter:
    """Milliseconds since the epoch → ``YYYY-MM-DD HH:MM:SS`` in one time zone, remembering the last second
    (events of one call mostly share a second)."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)
        self._second = -1
        self._text = ""

    def __call__(self, ms: int) -> str:
        second = ms // 1000
        if second != self._second:
            self._text = datetime.fromtimestamp(second, self._zone).strftime(TIMESTAMP_FORMAT)
            self._second = second
        return self._text
