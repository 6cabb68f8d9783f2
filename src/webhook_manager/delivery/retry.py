"""When a failed webhook is tried again, or that it is not. Pure."""

from __future__ import annotations

import random
from collections.abc import Callable

MAX_RETRY_AFTER_S = 3600.0
JITTER = 0.2


def next_try_at(
    tries: int,
    *,
    retries: int,
    delay_s: float,
    now_ms: int,
    retry_after_s: float | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> int | None:
    """When to try again after ``tries`` failed tries, in ms; None when no retry is left.

    The k-th retry waits ``delay_s × 2^(k-1)`` seconds, ±20 % jitter so a burst of failures does not come
    back as a burst; a receiver's ``Retry-After`` replaces that wait, up to one hour.
    """
    if tries > retries:
        return None
    if retry_after_s is not None:
        wait_s = min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
    else:
        wait_s = delay_s * 2 ** (tries - 1) * uniform(1 - JITTER, 1 + JITTER)
    return now_ms + int(wait_s * 1000)


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now_s, 0.0)
