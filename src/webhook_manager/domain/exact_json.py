"""JSON read as orjson reads it, but with integers beyond 64 bits kept exact. Pure.

orjson reads an integer outside -2^63 … 2^64-1 as a float (12345678901234567890123 becomes
1.2345678901234568e+22) and cannot write one. :func:`loads` reads such an integer as an
:class:`orjson.Fragment` of its own digits, which ``orjson.dumps`` writes back byte for byte; every other value
is what orjson gives. Only a text with 19 digits in a row can hold such an integer, so any other costs one
scan of its bytes on top of orjson.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_RUN = b"0" * 19  # the shortest integers beyond 64 bits: -9223372036854775809, 18446744073709551616
_RUN_IN_TEXT = re.compile("[0-9]{19}")
_LONGEST_IN_RANGE = len("-9223372036854775808")  # as long as 18446744073709551615


def may_hold_big_int(text: bytes | str) -> bool:
    """False when ``text`` certainly holds no integer beyond 64 bits (no 19 digits in a row)."""
    if isinstance(text, str):
        return _RUN_IN_TEXT.search(text) is not None
    return text.translate(_DIGITS).find(_RUN) >= 0


def loads(text: bytes | str) -> Any:
    """``text`` decoded; raise orjson.JSONDecodeError for what orjson refuses (numbers beyond a double's range
    among them)."""
    value = orjson.loads(text)
    if not may_hold_big_int(text):
        return value
    try:
        return json.loads(text, parse_int=_int)
    except RecursionError:  # deeper than any webhook can carry (250 levels), and refused as such later
        return value


def _int(digits: str) -> int | orjson.Fragment:
    if len(digits) <= _LONGEST_IN_RANGE:
        number = int(digits)
        if -(2**63) <= number < 2**64:
            return number
    return orjson.Fragment(digits)
