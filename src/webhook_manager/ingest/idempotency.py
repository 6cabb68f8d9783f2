"""The ``Idempotency-Key`` header of ``POST /v1/event``: its rule, and the hash that tells a repeat of a call
from another call with the same key. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from webhook_manager.domain.errors import InvalidInput

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_PATTERN = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")
"""1 to 255 printable ASCII characters; spaces only inside, since HTTP drops those around a header's value."""


def check_idempotency_key(values: Sequence[str]) -> str | None:
    """The key of a call: the header's one value (None without the header); InvalidInput naming the header
    when it is sent twice or breaks the rule."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(HEADER, "must be sent once")
    key = values[0]
    if KEY_PATTERN.fullmatch(key) is None:
        raise InvalidInput(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def body_hash(body: bytes) -> bytes:
    """What a repeat of a call must match: the SHA-256 of its body's exact bytes."""
    return hashlib.sha256(body).digest()
