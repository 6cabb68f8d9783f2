"""24-hex identifiers, shaped like the ids Erply's service hands out.

Four bytes of Unix seconds then eight random bytes: sortable by creation second (good index locality),
unguessable, and 24 lowercase hex characters like ``6284e24920ab9a8b363344dd``.
"""

from __future__ import annotations

import os
import re
import time

_ID = re.compile(r"[0-9a-f]{24}")


def new_id(now: float | None = None) -> str:
    """Return a fresh 24-lowercase-hex id."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    return seconds.to_bytes(4, "big").hex() + os.urandom(8).hex()


def new_ids(count: int, now: float | None = None) -> list[str]:
    """Return ``count`` fresh ids sharing one clock read (for batch inserts)."""
    prefix = (int(time.time() if now is None else now) & 0xFFFFFFFF).to_bytes(4, "big").hex()
    raw = os.urandom(8 * count).hex()
    return [prefix + raw[i : i + 16] for i in range(0, 16 * count, 16)]


def is_id(value: str) -> bool:
    """True when ``value`` is 24 lowercase hex characters."""
    return _ID.fullmatch(value) is not None
