from __future__ import annotations

from webhook_manager.domain.ids import is_id, new_id, new_ids
from webhook_manager.domain.timefmt import rfc3339_ms


def test_ids_are_24_lowercase_hex_and_unique() -> None:
    ids = [new_id() for _ in range(1000)] + new_ids(1000)
    assert all(is_id(i) for i in ids)
    assert len(set(ids)) == 2000


def test_ids_start_with_their_creation_second() -> None:
    assert new_id(0x6284E249).startswith("6284e249")
    assert {i[:8] for i in new_ids(5, 0x6284E249)} == {"6284e249"}


def test_is_id_refuses_other_shapes() -> None:
    assert not is_id("6284E24920AB9A8B363344DD")
    assert not is_id("6284e24920ab9a8b363344d")
    assert not is_id("6284e24920ab9a8b363344ddx")
    assert not is_id("zz84e24920ab9a8b363344dd")


def test_rfc3339_with_milliseconds_in_utc() -> None:
    assert rfc3339_ms(1574344873471) == "2019-11-21T14:01:13.471Z"
    assert rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339_ms(1574344873999) == "2019-11-21T14:01:13.999Z"
