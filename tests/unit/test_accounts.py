from __future__ import annotations

import pytest

from webhook_manager import accounts
from webhook_manager.domain.errors import InvalidInput


def test_passwords_are_salted_slow_hashes() -> None:
    first = accounts.hash_password("correct horse battery")
    second = accounts.hash_password("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second
    assert "correct horse battery" not in first
    assert accounts.verify_password(first, "correct horse battery")
    assert not accounts.verify_password(first, "correct horse batterY")
    assert not accounts.verify_password("not a hash", "x")


def test_session_keys_are_long_random_and_stored_hashed() -> None:
    keys = {accounts.new_session_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(k) >= 40 for k in keys)
    key = next(iter(keys))
    assert len(accounts.hash_session_key(key)) == 32
    assert accounts.hash_session_key(key) == accounts.hash_session_key(key)
    assert key.encode() not in accounts.hash_session_key(key)


@pytest.mark.parametrize(("raw", "expected"), [(None, 3600), ("", 3600), ("60", 60), (86401, 86400), ("999999", 86400)])
def test_session_length(raw: str | int | None, expected: int) -> None:
    assert accounts.session_length(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-5", "soon", "1.5"])
def test_bad_session_length(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^sessionLength must be a (whole|positive) number of seconds$"):
        accounts.session_length(raw)


def test_client_codes() -> None:
    assert accounts.check_client_code("100") == "100"
    for bad in ["", "a b", "x" * 65, "1;2"]:
        with pytest.raises(InvalidInput, match="clientCode"):
            accounts.check_client_code(bad)


def test_the_service_hashes_at_argon2s_recommended_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # drop the cheap hasher the in-process tests use
    params = accounts.hash_password("x").split("$")
    assert params[1] == "argon2id"
    assert params[3] == "m=65536,t=3,p=4"
