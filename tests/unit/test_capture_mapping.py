"""Captured changes → events (docs/capture.md), pgoutput decoding and capture settings: the pure parts."""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from webhook_manager.capture import pgoutput
from webhook_manager.capture.binlog_transactions import json_safe
from webhook_manager.capture.changes import Change, Changes, json_or_text, row_id, to_groups
from webhook_manager.capture.position import TransactionPosition
from webhook_manager.capture.postgres_logical import parse_position
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.timefmt import TimestampFormatter

MS_2024 = 1_704_067_200_000  # 2024-01-01 00:00:00 UTC


def test_changes_group_by_table_and_action_keeping_their_order() -> None:
    changes = [
        Change("product", "insert", 3, MS_2024, None),
        Change("product", "update", 3, MS_2024 + 1500, {"id": 3}),
        Change("product", "insert", 1, MS_2024 + 2000, None),
        Change("invoice", "delete", "77", MS_2024, None),
    ]
    groups = to_groups(Changes.of(changes), TimestampFormatter("Europe/Tallinn"))
    assert [(g.table, g.action, g.count) for g in groups] == [
        ("product", "insert", 2),
        ("product", "update", 1),
        ("invoice", "delete", 1),
    ]
    assert orjson.loads(groups[0].items) == [
        {"rowId": 3, "timestamp": "2024-01-01 02:00:00", "data": None},
        {"rowId": 1, "timestamp": "2024-01-01 02:00:02", "data": None},
    ]
    assert orjson.loads(groups[1].items)[0]["data"] == {"id": 3}
    assert orjson.loads(groups[2].items)[0]["rowId"] == 77


def test_a_large_batch_is_cut_into_bundles_of_10000() -> None:
    groups = to_groups(
        Changes.of(Change("t", "update", i, MS_2024, None) for i in range(25_000)), TimestampFormatter("UTC")
    )
    assert [g.count for g in groups] == [10_000, 10_000, 5_000]
    assert orjson.loads(groups[2].items)[-1]["rowId"] == 24_999


@pytest.mark.parametrize(
    ("given", "expected"),
    [(5, 5), (0, 0), (-3, 0), (2**63, 0), ("42", 42), ("-1", 0), ("abc", 0), ("9" * 20, 0), (None, 0), (1.5, 0)],
)
def test_row_id_is_a_whole_number_from_0_to_2_63_or_0(given: Any, expected: int) -> None:
    assert row_id(given) == expected
    assert (
        orjson.loads(
            to_groups(Changes.of([Change("t", "insert", given, MS_2024, None)]), TimestampFormatter("UTC"))[0].items
        )[0]["rowId"]
        == expected
    )


def test_data_too_deep_for_a_webhook_keeps_the_event_without_it() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    groups = to_groups(
        Changes.of([Change("t", "insert", 1, MS_2024, {"doc": deep}), Change("t", "insert", 2, MS_2024, {"ok": True})]),
        TimestampFormatter("UTC"),
    )
    assert [(i["rowId"], i["data"]) for i in orjson.loads(groups[0].items)] == [(1, None), (2, {"ok": True})]


def _tuple(*values: bytes | None) -> bytes:
    out = struct.pack(">H", len(values))
    for value in values:
        out += b"n" if value is None else b"t" + struct.pack(">I", len(value)) + value
    return out


def test_pgoutput_messages_decode() -> None:
    relation = (
        b"R" + struct.pack(">I", 16387) + b"public\x00product\x00d" + struct.pack(">H", 4)
        + b"\x01id\x00" + struct.pack(">Ii", 23, -1)
        + b"\x00price\x00" + struct.pack(">Ii", 1700, -1)
        + b"\x00ok\x00" + struct.pack(">Ii", 16, -1)
        + b"\x00doc\x00" + struct.pack(">Ii", 3802, -1)
    )  # fmt: skip
    rel = pgoutput.relation(relation)
    assert (rel.relid, rel.namespace, rel.name, rel.columns) == (
        16387,
        "public",
        "product",
        ("id", "price", "ok", "doc"),
    )
    insert = b"I" + struct.pack(">I", 16387) + b"N" + _tuple(b"7", b"12.50", b"t", b'{"a": [1]}')
    offset = pgoutput.new_tuple_offset(insert)
    assert pgoutput.column_text(insert, offset, 0) == b"7"
    assert orjson.loads(orjson.dumps(pgoutput.row(insert, offset, rel))) == {
        "id": 7, "price": 12.5, "ok": True, "doc": {"a": [1]}
    }  # fmt: skip
    # an update that sends the old key first: the new tuple is the one read
    update = (
        b"U"
        + struct.pack(">I", 16387)
        + b"K"
        + _tuple(b"6", None, None, None)
        + b"N"
        + _tuple(b"7", b"NaN", None, None)
    )
    offset = pgoutput.new_tuple_offset(update)
    assert pgoutput.column_text(update, offset, 0) == b"7"
    assert pgoutput.row(update, offset, rel) == {"id": 7, "price": "NaN", "ok": None, "doc": None}
    delete = b"D" + struct.pack(">I", 16387) + b"K" + _tuple(b"9", None, None, None)
    assert pgoutput.column_text(delete, pgoutput.new_tuple_offset(delete), 0) == b"9"
    assert pgoutput.truncated(b"T" + struct.pack(">I", 2) + b"\x00" + struct.pack(">II", 16387, 99)) == [16387, 99]
    begin = b"B" + struct.pack(">QqI", 0x1D9E978, 757_382_400_000_000, 729)  # 2024-01-01 in µs since 2000
    assert pgoutput.begin(begin) == (0x1D9E978, MS_2024)
    assert pgoutput.commit(b"C\x00" + struct.pack(">QQq", 10, 20, 0)) == (10, 20)


def test_positions_of_a_replication_slot() -> None:
    assert parse_position(None) == TransactionPosition("0", -1)
    assert parse_position("31054976:-1") == TransactionPosition("31054976", -1)
    assert parse_position("31054976:250") == TransactionPosition("31054976", 250)


def test_capture_settings_are_checked() -> None:
    spec = CaptureSpec(kind="postgres", dsn="postgresql://u:pw@h/app", client_code="Acme 1", tables=("product",))
    assert spec.slot_name == "webhook_manager_acme_1"
    assert spec.describe() == "postgres postgresql://u:***@h/app"
    bad: list[dict[str, Any]] = [
        {"kind": "sqlite", "client_code": "1", "tables": ["t"]},
        {"kind": "postgres", "dsn": "mysql://h/app", "client_code": "1", "tables": ["t"]},
        {"kind": "sqlite", "database": "a.db", "client_code": "1", "tables": []},
        {"kind": "sqlite", "database": "a.db", "client_code": "1", "tables": ["t", "t"]},
        {"kind": "sqlite", "database": "a.db", "client_code": "1", "tables": ["t"], "row_id_columns": {"u": "id"}},
        {"kind": "sqlite", "database": "a.db", "client_code": "1", "tables": ["t"], "data": "all"},
        {"kind": "postgres", "dsn": "postgresql://h/app", "client_code": "1", "tables": ["t"], "slot": "Bad-Name"},
        {"kind": "oracle", "dsn": "x", "client_code": "1", "tables": ["t"]},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            CaptureSpec(**fields)


def test_json_from_a_database_keeps_what_it_cannot_carry_as_text() -> None:
    assert json_or_text('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert json_or_text(b'{"a": 1e400, "b": 1, "n": 100000000000000000000}') == {
        "a": "1e400", "b": 1, "n": "100000000000000000000"
    }  # fmt: skip
    assert json_or_text("NaN") == "NaN"
    deep = "[" * 5000 + "]" * 5000
    assert json_or_text(deep) == deep


def test_json_from_a_database_gives_integers_beyond_64_bits_as_text_not_as_floats() -> None:
    # orjson alone reads them as floats when nothing else in the document is beyond it
    assert json_or_text('{"n": 100000000000000000000, "m": 18446744073709551615, "s": "12345678901234567890"}') == {
        "n": "100000000000000000000", "m": 18446744073709551615, "s": "12345678901234567890"
    }  # fmt: skip
    assert json_or_text("-9223372036854775809") == "-9223372036854775809"
    assert json_or_text(b"[12345678901234567890123, 1.5]") == ["12345678901234567890123", 1.5]


def test_mysql_values_become_json() -> None:
    assert json_safe(datetime.timedelta(hours=838, minutes=59, seconds=59)) == "838:59:59"
    assert json_safe(-datetime.timedelta(hours=26)) == "-26:00:00"
    assert json_safe(datetime.timedelta(seconds=1, microseconds=500)) == "00:00:01.000500"
    assert json_safe(decimal.Decimal("12.50")) == 12.5
    assert json_safe(decimal.Decimal("1" + "0" * 30)) == "1" + "0" * 30  # beyond 64 bits: its text, not 1e30
    assert json_safe(datetime.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert json_safe(b"\xff\x00") == "ff00"
    assert json_safe(b"text") == "text"
    assert json_safe({"b", "a"}) == ["a", "b"]
    assert json_safe({b"k": [decimal.Decimal("1.5")]}) == {"k": [1.5]}
