"""Time as the wire shows it. The store keeps integer milliseconds since the Unix epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The wall-clock form of an item's ``timestamp`` in a webhook."""


def now_ms() -> int:
    """Milliseconds since the epoch, from the wall clock."""
    return time.time_ns() // 1_000_000


def rfc3339_ms(ms: int) -> str:
    """``2019-11-21T14:01:13.471Z``: RFC 3339 in UTC with milliseconds, as in the Swagger examples."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def from_wall_clock(text: str, zone: str) -> int:
    """``YYYY-MM-DD HH:MM:SS`` read in ``zone`` → milliseconds since the epoch."""
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(zone))
    return int(moment.timestamp()) * 1000


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
