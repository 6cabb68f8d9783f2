from __future__ import annotations

from typing import Any

import orjson
import pytest

from webhook_manager.domain import exact_json
from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.timefmt import TimestampFormatter
from webhook_manager.ingest.event_input import EventBatch, TimestampReader, items_json, parse_event_batch

NOW_MS = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC


def parse(body: Any, zone: str = "UTC") -> EventBatch:
    return parse_event_batch(body, reader=TimestampReader(zone), now=TimestampFormatter(zone), now_ms=NOW_MS)


def test_defaults_and_wire_form() -> None:
    batch = parse({"table": "product", "action": "update", "items": [{}, {"rowId": 5, "data": {"a": 1}}]})
    assert (batch.table, batch.action.value) == ("product", "update")
    assert batch.items == [
        {"rowId": 0, "timestamp": "2023-11-14 22:13:20", "data": None},
        {"rowId": 5, "timestamp": "2023-11-14 22:13:20", "data": {"a": 1}},
    ]


def test_timestamps_wall_clock_and_rfc3339() -> None:
    items = [
        {"timestamp": "2020-01-01 00:00:00"},
        {"timestamp": "2020-01-01T00:00:00Z"},
        {"timestamp": "2020-01-01T02:00:00+02:00"},
    ]
    assert [i["timestamp"] for i in parse({"table": "t", "action": "insert", "items": items}).items] == [
        "2020-01-01 00:00:00"
    ] * 3
    tallinn = parse({"table": "t", "action": "insert", "items": items}, "Europe/Tallinn").items
    assert [i["timestamp"] for i in tallinn] == ["2020-01-01 00:00:00", "2020-01-01 02:00:00", "2020-01-01 02:00:00"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"action": "insert", "items": [{}]}, "table"),
        ({"table": "t", "items": [{}]}, "action"),
        ({"table": "t", "action": "upsert", "items": [{}]}, "action"),
        ({"table": "t t", "action": "insert", "items": [{}]}, "table"),
        ({"table": "t", "action": "insert"}, "items"),
        ({"table": "t", "action": "insert", "items": []}, "items"),
        ({"table": "t", "action": "insert", "items": [{}] * 10_001}, "items"),
        ({"table": "t", "action": "insert", "items": {"rowId": 1}}, "items"),
        ({"table": "t", "action": "insert", "items": [{}, 5]}, "items[1]"),
        ({"table": "t", "action": "insert", "items": [{}, {}, {"rowId": -1}]}, "items[2].rowId"),
        ({"table": "t", "action": "insert", "items": [{"rowId": "7"}]}, "items[0].rowId"),
        ({"table": "t", "action": "insert", "items": [{"rowId": True}]}, "items[0].rowId"),
        ({"table": "t", "action": "insert", "items": [{"rowId": 1.5}]}, "items[0].rowId"),
        ({"table": "t", "action": "insert", "items": [{"rowId": 2**63}]}, "items[0].rowId"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "yesterday"}]}, "items[0].timestamp"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "2020-13-01 00:00:00"}]}, "items[0].timestamp"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "2020-01-01T00:00:00"}]}, "items[0].timestamp"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": 1577836800}]}, "items[0].timestamp"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "0999-01-01 00:00:00"}]}, "items[0].timestamp"),
        (
            {"table": "t", "action": "insert", "items": [{"timestamp": "0001-01-01T00:00:00+01:00"}]},
            "items[0].timestamp",
        ),
        (
            {"table": "t", "action": "insert", "items": [{"timestamp": "9999-12-31T23:59:59-01:00"}]},
            "items[0].timestamp",
        ),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "20200101T000000Z"}]}, "items[0].timestamp"),
        ({"table": "t", "action": "insert", "items": [{"timestamp": "2020-W01-1T00:00:00Z"}]}, "items[0].timestamp"),
    ],
)
def test_bad_input_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    assert caught.value.field == field


def test_10000_items_are_fine_and_a_null_row_id_is_0() -> None:
    batch = parse({"table": "t", "action": "insert", "items": [{"rowId": None}] * 10_000})
    assert len(batch.items) == 10_000
    assert batch.items[0]["rowId"] == 0


def test_lower_case_rfc3339_and_fractions() -> None:
    items = [{"timestamp": "2020-01-01t00:00:00.123z"}, {"timestamp": "2020-01-01 00:00:00.5+00:00"}]
    assert [i["timestamp"] for i in parse({"table": "t", "action": "insert", "items": items}).items] == [
        "2020-01-01 00:00:00"
    ] * 2


def test_data_too_deep_for_a_webhook_is_refused_naming_items() -> None:
    deep: Any = None
    for _ in range(252):
        deep = [deep]
    batch = parse({"table": "t", "action": "insert", "items": [{"data": deep}]})
    with pytest.raises(InvalidInput) as caught:
        items_json(batch.items)
    assert caught.value.field == "items"
    assert orjson.loads(items_json([{"rowId": 1, "timestamp": "x", "data": [[1]]}])) == [
        {"rowId": 1, "timestamp": "x", "data": [[1]]}
    ]


def test_integers_beyond_64_bits_are_kept_exactly_from_the_body_to_the_stored_items() -> None:
    data = b'{"big":12345678901234567890123,"negative":[-12345678901234567890123,{"n":98765432109876543210}],"f":1.5}'
    item = b'{"rowId":1,"timestamp":"2020-01-01 00:00:00","data":' + data + b"}"
    body = exact_json.loads(b'{"table":"t","action":"insert","items":[' + item + b"]}")  # as POST /v1/event reads
    assert items_json(parse(body).items) == b"[" + item + b"]"
    with pytest.raises(InvalidInput) as caught:
        parse(exact_json.loads(b'{"table":"t","action":"insert","items":[{"rowId":18446744073709551616}]}'))
    assert caught.value.field == "items[0].rowId"
