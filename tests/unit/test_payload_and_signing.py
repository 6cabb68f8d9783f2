"""Golden tests for the bytes others verify: the body, its hmac and the Standard Webhooks signature."""

from __future__ import annotations

import orjson
from standardwebhooks import Webhook

from webhook_manager.delivery.payload import webhook_body
from webhook_manager.delivery.signing import (
    erply_hmac,
    standard_headers,
    standard_signature,
    standard_signatures,
    verify_hmac,
)
from webhook_manager.domain.model import PendingBundle
from webhook_manager.domain.timefmt import TimestampFormatter

ITEMS = [
    {"rowId": 1, "timestamp": "2020-01-01 00:00:00", "data": None},
    {"rowId": 0, "timestamp": "2020-01-01 00:00:00", "data": None},
]


def test_the_contracts_hmac_test_vector() -> None:
    assert (
        erply_hmac("mySecretWord", "6284e24920ab9a8b363344dd")
        == "49bd805ee40c169780f7d0ce68a9d89ac29de9fdfc876d1d2ba3d6802b162c72"
    )
    assert verify_hmac(
        "mySecretWord", "6284e24920ab9a8b363344dd", "49BD805EE40C169780F7D0CE68A9D89AC29DE9FDFC876D1D2BA3D6802B162C72"
    )
    assert not verify_hmac(
        "otherSecret", "6284e24920ab9a8b363344dd", erply_hmac("mySecretWord", "6284e24920ab9a8b363344dd")
    )


def test_the_body_byte_for_byte() -> None:
    body = webhook_body("6284e24920ab9a8b363344dd", "mySecretWord", "100", "product", "insert", ITEMS)
    assert body == (
        b'{"id":"6284e24920ab9a8b363344dd",'
        b'"hmac":"49bd805ee40c169780f7d0ce68a9d89ac29de9fdfc876d1d2ba3d6802b162c72",'
        b'"clientCode":"100","table":"product","action":"insert","eventCount":"2",'
        b'"items":[{"rowId":1,"timestamp":"2020-01-01 00:00:00","data":null},'
        b'{"rowId":0,"timestamp":"2020-01-01 00:00:00","data":null}]}'
    )


def test_data_is_carried_as_given_and_unicode_stays_utf8() -> None:
    items = [{"rowId": 7, "timestamp": "2020-01-01 00:00:00", "data": {"name": "Õun", "price": 1.5, "tags": [1, None]}}]
    body = webhook_body("6284e24920ab9a8b363344dd", "", "100", "product", "update", items)
    assert "Õun".encode() in body
    assert orjson.loads(body)["items"] == items


def test_integers_beyond_64_bits_go_out_as_they_were_stored() -> None:
    item = b'{"rowId":3,"timestamp":"2020-01-01 00:00:00","data":[12345678901234567890123,{"n":-98765432109876543210}]}'
    bundle = PendingBundle(1, 0, 0, 1, b"[" + item + b"]")  # as the store hands it to the batcher
    body = webhook_body("6284e24920ab9a8b363344dd", "mySecretWord", "100", "product", "insert", bundle.items)
    assert body == (
        b'{"id":"6284e24920ab9a8b363344dd",'
        b'"hmac":"49bd805ee40c169780f7d0ce68a9d89ac29de9fdfc876d1d2ba3d6802b162c72",'
        b'"clientCode":"100","table":"product","action":"insert","eventCount":"1","items":[' + item + b"]}"
    )


def test_standard_webhooks_signature_golden_and_verified_by_the_official_library() -> None:
    body = webhook_body("6284e24920ab9a8b363344dd", "mySecretWord", "100", "product", "insert", ITEMS)
    signature = standard_signature("mySecretWord", "6284e24920ab9a8b363344dd", 1700000000, body)
    assert signature == standard_signature("mySecretWord", "6284e24920ab9a8b363344dd", 1700000000, body)
    assert signature.startswith("v1,")
    assert len(signature) == 3 + 44
    headers = standard_headers("mySecretWord", "6284e24920ab9a8b363344dd", 1700000000, body)
    assert headers == {
        "webhook-id": "6284e24920ab9a8b363344dd",
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature,
    }
    # The library checks the timestamp against its clock, so verify a fresh one.
    import time

    now = int(time.time())
    Webhook(b"mySecretWord").verify(body, standard_headers("mySecretWord", "6284e24920ab9a8b363344dd", now, body))
    assert standard_headers("", "6284e24920ab9a8b363344dd", now, body) == {}


def test_a_replaced_secret_in_its_grace_adds_its_signature_after_the_new_ones() -> None:
    body = webhook_body("6284e24920ab9a8b363344dd", "old", "100", "product", "insert", ITEMS)
    sign = {s: standard_signature(s, "6284e24920ab9a8b363344dd", 1700000000, body) for s in ("new", "old")}
    headers = standard_headers("new", "6284e24920ab9a8b363344dd", 1700000000, body, ("old",))
    assert headers["webhook-signature"] == f"{sign['new']} {sign['old']}"  # space-separated, the new one first
    assert standard_signatures(["new", "old", "new", ""], "6284e24920ab9a8b363344dd", 1700000000, body) == (
        f"{sign['new']} {sign['old']}"  # each secret once, empty ones sign nothing
    )
    # an empty new secret: the replaced one alone signs, until its grace ends
    alone = standard_headers("", "6284e24920ab9a8b363344dd", 1700000000, body, ("old",))
    assert alone["webhook-signature"] == sign["old"]
    import time

    now = int(time.time())
    both = standard_headers("new", "6284e24920ab9a8b363344dd", now, body, ("old",))
    Webhook(b"new").verify(body, both)
    Webhook(b"old").verify(body, both)


def test_timestamps_in_the_configured_zone() -> None:
    assert TimestampFormatter("UTC")(1577836800_000) == "2020-01-01 00:00:00"
    assert TimestampFormatter("Europe/Tallinn")(1577836800_000) == "2020-01-01 02:00:00"
    fmt = TimestampFormatter("UTC")
    assert fmt(1577836800_999) == "2020-01-01 00:00:00"
    assert fmt(1577836801_000) == "2020-01-01 00:00:01"
