"""The checks ``webhook-manager listen`` runs on what it receives, on bodies and headers made as the service
makes them."""

from __future__ import annotations

import json

from webhook_manager.delivery.payload import webhook_body
from webhook_manager.delivery.signing import standard_headers
from webhook_manager.listen import (
    ABSENT,
    NO_SECRET,
    NOT_A_WEBHOOK,
    VALID,
    check_hmac,
    check_signature,
    examine,
    render_json,
    render_text,
)

SECRET = "mySecretWord"
ID = "6284e24920ab9a8b363344dd"
NOW = 1_700_000_000
ITEMS = [
    {"rowId": 1, "timestamp": "2020-01-01 00:00:00", "data": None},
    {"rowId": 2, "timestamp": "2020-01-01 00:00:01", "data": {"name": "tea"}},
]


def body(secret: str = SECRET, webhook_id: str = ID) -> bytes:
    return webhook_body(webhook_id, secret, "100", "product", "update", ITEMS)


def headers(raw: bytes, secret: str = SECRET, webhook_id: str = ID) -> dict[str, str]:
    return standard_headers(secret, webhook_id, NOW, raw)


def test_a_genuine_webhook_is_valid_twice_and_shown_whole() -> None:
    raw = body()
    received = examine(raw, headers(raw), SECRET, path="/hooks?x=1", status=200)
    assert received.hmac == VALID
    assert received.signature == VALID
    assert received.error is None
    assert json.loads(render_json(received)) == {
        "id": ID,
        "table": "product",
        "action": "update",
        "eventCount": "2",
        "items": ITEMS,
        "hmac": "valid",
        "signature": "valid",
        "path": "/hooks?x=1",
        "status": 200,
        "error": None,
    }
    text = render_text(received, "12:00:00", delay=6)
    assert text.splitlines() == [
        "POST /hooks?x=1 at 12:00:00, answering 200 after 6 s",
        f"  id          {ID}",
        "  table       product",
        "  action      update",
        "  eventCount  2",
        "  hmac        valid",
        "  signature   valid",
        '  items       {"rowId":1,"timestamp":"2020-01-01 00:00:00","data":null}',
        '              {"rowId":2,"timestamp":"2020-01-01 00:00:01","data":{"name":"tea"}}',
    ]
    assert SECRET not in text


def test_an_hmac_made_with_another_secret_or_for_another_id_is_invalid() -> None:
    assert check_hmac(SECRET, json.loads(body(secret="other"))) == "INVALID: hmac does not match"
    forged = {**json.loads(body()), "id": "6284e24920ab9a8b363344de"}
    assert check_hmac(SECRET, forged) == "INVALID: hmac does not match"
    assert check_hmac(SECRET, {**forged, "hmac": "zé"}) == "INVALID: hmac does not match"
    assert check_hmac(SECRET, {**forged, "hmac": 7}) == "INVALID: hmac is not a string"


def test_without_a_secret_nothing_is_checked_and_missing_parts_are_absent() -> None:
    raw = body()
    received = examine(raw, headers(raw), None, path="/", status=200)
    assert (received.hmac, received.signature) == (NO_SECRET, NO_SECRET)
    assert check_signature(None, raw, {}, ID) == ABSENT
    assert check_signature(SECRET, raw, {}, ID) == ABSENT
    no_hmac = {key: value for key, value in json.loads(raw).items() if key != "hmac"}
    assert check_hmac(SECRET, no_hmac) == ABSENT


def test_a_signature_made_with_another_secret_or_over_another_body_is_invalid() -> None:
    raw = body()
    assert check_signature(SECRET, raw, headers(raw, secret="other"), ID) == "INVALID: signature does not match"
    assert check_signature(SECRET, raw + b" ", headers(raw), ID) == "INVALID: signature does not match"
    later = {**headers(raw), "webhook-timestamp": str(NOW + 1)}
    assert check_signature(SECRET, raw, later, ID) == "INVALID: signature does not match"
    assert check_signature(SECRET, raw, {**headers(raw), "webhook-timestamp": "soon"}, ID) == (
        "INVALID: webhook-timestamp is not Unix seconds"
    )
    assert check_signature(SECRET, raw, {**headers(raw), "webhook-signature": "v2,abc"}, ID) == (
        "INVALID: no v1 signature in webhook-signature"
    )
    partial = {"webhook-id": ID, "webhook-timestamp": str(NOW)}
    assert check_signature(SECRET, raw, partial, ID) == "INVALID: no webhook-signature header"


def test_one_matching_signature_among_several_is_enough_and_header_names_are_case_blind() -> None:
    raw = body()
    genuine = headers(raw)
    other = headers(raw, secret="rotated-away")["webhook-signature"]
    several = {**genuine, "webhook-signature": f"v1a,xyz {other} {genuine['webhook-signature']}"}
    assert check_signature(SECRET, raw, several, ID) == VALID
    only_others = {**genuine, "webhook-signature": f"{other} v1,{'A' * 44}"}
    assert check_signature(SECRET, raw, only_others, ID) == "INVALID: signature does not match"
    shouted = {name.upper(): value for name, value in genuine.items()}
    assert check_signature(SECRET, raw, shouted, ID) == VALID


def test_a_webhook_id_other_than_the_bodys_is_invalid() -> None:
    raw = body()
    # Signed correctly, but for another id than the body carries: a replayed or mixed-up try.
    signed_for_other_id = headers(raw, webhook_id="6284e24920ab9a8b36334400")
    received = examine(raw, signed_for_other_id, SECRET, path="/", status=200)
    assert received.signature == "INVALID: webhook-id differs from the body's id"
    assert received.hmac == VALID


def test_a_body_that_is_not_a_webhook_is_said_to_be_so() -> None:
    for raw, why in [
        (b"hello", "not a webhook: the body is not JSON (5 bytes)"),
        (b"", "not a webhook: the body is not JSON (0 bytes)"),
        (b"\xff\xfe{", "not a webhook: the body is not JSON (3 bytes)"),
        (b"[" * 100_000, "not a webhook: the body is not JSON (100000 bytes)"),
        (b"[1, 2]", "not a webhook: the body is not a JSON object"),
        (b'{"id": 5, "items": []}', 'not a webhook: no string "id"'),
        (b'{"id": "abc"}', 'not a webhook: no "items" array'),
    ]:
        received = examine(raw, {}, SECRET, path="/x", status=503)
        assert received.error == why
        assert (received.hmac, received.signature) == (NOT_A_WEBHOOK, ABSENT)
        assert received.id is None
        assert render_text(received, "12:00:00").splitlines() == [
            "POST /x at 12:00:00, answering 503",
            f"  body        {why}",
            f"  hmac        {NOT_A_WEBHOOK}",
            f"  signature   {ABSENT}",
        ]
        assert json.loads(render_json(received))["error"] == why


def test_a_signed_body_that_is_not_a_webhook_still_has_its_signature_checked() -> None:
    raw = b"not json at all"
    assert examine(raw, headers(raw), SECRET, path="/", status=200).signature == VALID


def test_fields_a_webhook_lacks_are_shown_missing_and_json_null() -> None:
    raw = b'{"id": "abc", "items": []}'
    received = examine(raw, {}, SECRET, path="/", status=200)
    text = render_text(received, "12:00:00")
    assert "  table       (missing)" in text
    assert "  items       (none)" in text
    assert "  hmac        absent" in text
    shown = json.loads(render_json(received))
    assert (shown["table"], shown["action"], shown["eventCount"], shown["items"]) == (None, None, None, [])
