"""Integers beyond 64 bits read exactly (issue 11, row 11), and everything else as orjson reads it."""

from __future__ import annotations

import orjson
import pytest

from webhook_manager.domain import exact_json


def test_integers_beyond_64_bits_come_back_byte_for_byte() -> None:
    text = (
        b'{"a":12345678901234567890123,"b":-12345678901234567890123,"c":[[98765432109876543210987654321]],'
        b'"edges":[18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809]}'
    )
    assert orjson.loads(text)["a"] == 1.2345678901234568e22  # what orjson alone makes of it
    assert orjson.dumps(exact_json.loads(text)) == text
    assert exact_json.loads(text)["edges"][0] == 2**64 - 1  # within 64 bits: an int, as orjson gives
    assert orjson.dumps(exact_json.loads(b"1" + b"0" * 300)) == b"1" + b"0" * 300


def test_the_slow_path_reads_everything_else_as_orjson_does() -> None:
    # 19 digits in a string take the slow path though no integer needs it
    text = (
        '{"s":"1234567890123456789","f":[1.5,-0.0,1e22,2.5e-07,0.1,1.7976931348623157e308],"i":[-0,7,-9],'
        '"u":"Õun \\u00e9 \\ud83d\\ude00 \\n\\t\\"\\\\ \\u001f","n":null,"t":true,"d":{"k":1,"k":2},"e":{}}'
    )
    assert exact_json.may_hold_big_int(text)
    assert exact_json.may_hold_big_int(text.encode())
    for given in (text, text.encode()):
        assert exact_json.loads(given) == orjson.loads(given)
        assert orjson.dumps(exact_json.loads(given)) == orjson.dumps(orjson.loads(given))


@pytest.mark.parametrize("text", [b"NaN", b"[1e400]", b'{"a":12345678901234567890123,}', b"[" * 2000 + b"]" * 2000])
def test_what_orjson_refuses_is_refused(text: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        exact_json.loads(text)


def test_text_without_19_digits_in_a_row_is_orjsons_alone() -> None:
    assert not exact_json.may_hold_big_int(b'[999999999999999999,"123456789012345678",1.2345678901234567e+22]')
    assert exact_json.may_hold_big_int(b"[-9223372036854775809]")
