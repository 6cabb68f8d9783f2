"""Decoding PostgreSQL's logical replication protocol (pgoutput, protocol version 1). Pure.

Only what capture needs: transaction boundaries with their commit LSN and time, relation descriptions, and
the new (or old key) tuple of each row change. Values arrive as text; :func:`json_value` turns them into
JSON by their type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from webhook_manager.capture.changes import json_or_text

PG_EPOCH_MS = 946_684_800_000  # 2000-01-01 in milliseconds since the Unix epoch

_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">bQQq")
_INT32 = struct.Struct(">I")
_INT16 = struct.Struct(">H")
_COLUMN = struct.Struct(">Ii")

INT_TYPES = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_NUMBER_OR_JSON_TYPES = frozenset({700, 701, 1700, 114, 3802})  # float4, float8, numeric, json, jsonb
_BOOL = 16
UNCHANGED = object()
"""A TOASTed value the update did not change, so pgoutput did not send it."""


@dataclass(frozen=True, slots=True)
class Relation:
    relid: int
    namespace: str
    name: str
    columns: tuple[str, ...]
    types: tuple[int, ...]


def begin(payload: bytes) -> tuple[int, int]:
    """A ``B`` message: (commit LSN, commit time in ms since the Unix epoch)."""
    final_lsn, commit_us, _ = _BEGIN.unpack_from(payload, 1)
    return final_lsn, PG_EPOCH_MS + commit_us // 1000


def commit(payload: bytes) -> tuple[int, int]:
    """A ``C`` message: (commit LSN, end LSN of the transaction)."""
    _, commit_lsn, end_lsn, _ = _COMMIT.unpack_from(payload, 1)
    return commit_lsn, end_lsn


def _string(payload: bytes, offset: int) -> tuple[str, int]:
    end = payload.index(0, offset)
    return payload[offset:end].decode(), end + 1


def relation(payload: bytes) -> Relation:
    """An ``R`` message."""
    (relid,) = _INT32.unpack_from(payload, 1)
    namespace, offset = _string(payload, 5)
    name, offset = _string(payload, offset)
    offset += 1  # replica identity setting
    (count,) = _INT16.unpack_from(payload, offset)
    offset += 2
    columns: list[str] = []
    types: list[int] = []
    for _ in range(count):
        column, offset = _string(payload, offset + 1)  # after the flags byte
        type_oid, _ = _COLUMN.unpack_from(payload, offset)
        offset += 8
        columns.append(column)
        types.append(type_oid)
    return Relation(relid, namespace, name, tuple(columns), tuple(types))


def relid(payload: bytes) -> int:
    """The relation of an ``I``, ``U`` or ``D`` message."""
    return int(_INT32.unpack_from(payload, 1)[0])


def truncated(payload: bytes) -> list[int]:
    """The relations of a ``T`` message."""
    (count,) = _INT32.unpack_from(payload, 1)
    return [_INT32.unpack_from(payload, 6 + 4 * i)[0] for i in range(count)]


def new_tuple_offset(payload: bytes) -> int:
    """Where the tuple that describes the row starts: the new tuple of ``I`` and ``U``, the old key (or old
    row) of ``D``; an update's old tuple, sent first under REPLICA IDENTITY FULL or a key change, is skipped."""
    kind = payload[5]
    if payload[0] == 0x55 and kind in (0x4B, 0x4F):  # U with K or O: skip the old tuple to its N
        return skip_tuple(payload, 6) + 1
    return 6


def skip_tuple(payload: bytes, offset: int) -> int:
    (count,) = _INT16.unpack_from(payload, offset)
    offset += 2
    for _ in range(count):
        kind = payload[offset]
        offset += 1
        if kind == 0x74:  # t: text value
            (length,) = _INT32.unpack_from(payload, offset)
            offset += 4 + length
    return offset


def column_text(payload: bytes, offset: int, index: int) -> bytes | None:
    """The text of column ``index`` of the tuple at ``offset`` (None when null or not sent)."""
    offset += 2
    for _ in range(index):
        kind = payload[offset]
        offset += 1
        if kind == 0x74:
            (length,) = _INT32.unpack_from(payload, offset)
            offset += 4 + length
    if payload[offset] != 0x74:
        return None
    (length,) = _INT32.unpack_from(payload, offset + 1)
    return payload[offset + 5 : offset + 5 + length]


def row(payload: bytes, offset: int, rel: Relation) -> dict[str, Any]:
    """The tuple at ``offset`` as a JSON object; values the update did not send (unchanged TOAST) are left
    out."""
    (count,) = _INT16.unpack_from(payload, offset)
    offset += 2
    values: dict[str, Any] = {}
    for i in range(min(count, len(rel.columns))):
        kind = payload[offset]
        offset += 1
        if kind == 0x74:
            (length,) = _INT32.unpack_from(payload, offset)
            values[rel.columns[i]] = json_value(payload[offset + 4 : offset + 4 + length], rel.types[i])
            offset += 4 + length
        elif kind == 0x6E:  # n: null
            values[rel.columns[i]] = None
    return values


def json_value(text: bytes, type_oid: int) -> Any:
    """A value in PostgreSQL's text form as JSON: integers, booleans, numbers and JSON as such, the rest as
    its text."""
    if type_oid in INT_TYPES:
        return int(text)
    if type_oid == _BOOL:
        return text == b"t"
    if type_oid in _NUMBER_OR_JSON_TYPES:
        # numbers as JSON numbers; NaN, Infinity and what a double cannot hold as their text
        return json_or_text(text)
    return text.decode()
