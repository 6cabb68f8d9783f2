"""The store port's contract; runs unchanged against every adapter."""

from __future__ import annotations

import asyncio

import pytest

from webhook_manager.errors import Conflict
from webhook_manager.ids import new_id
from webhook_manager.model import Action, Configuration, ConfigurationInput, Session
from webhook_manager.store import Store, open_store


def configuration(client_code: str, at_ms: int, table: str = "product") -> Configuration:
    return Configuration(
        id=new_id(),
        client_code=client_code,
        table=table,
        action=Action.INSERT,
        endpoint="https://example.com/hook",
        secret="s3cret",
        disabled=False,
        created_at_ms=at_ms,
        updated_at_ms=at_ms,
    )


async def test_migrate_is_idempotent_and_safe_when_run_at_once(store_url: str) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(applied, key=len) == [[], [], [1]]
        assert await stores[0].migrate() == []
        await stores[0].ping()
    finally:
        for s in stores:
            await s.close()


async def test_users_belong_to_clients_and_are_unique_per_client(store: Store) -> None:
    alice = await store.create_user("100", "alice", "hash-a", 1)
    assert alice is not None and alice.client_code == "100"
    other = await store.create_user("200", "alice", "hash-b", 2)
    assert other is not None and other.id != alice.id
    with pytest.raises(Conflict):
        await store.create_user("100", "alice", "hash-c", 3)
    found = await store.find_user("100", "alice")
    assert found == alice
    assert await store.find_user("100", "bob") is None
    assert await store.find_user("300", "alice") is None


async def test_only_the_first_user_is_created_with_only_if_first(store: Store) -> None:
    first = await store.create_user("100", "admin", "h", 1, only_if_first=True)
    assert first is not None
    assert await store.create_user("100", "admin2", "h", 2, only_if_first=True) is None
    assert await store.find_user("100", "admin2") is None


async def test_login_failures_count_up_restart_and_clear(store: Store) -> None:
    assert await store.login_failures("100", "alice") is None
    for n in range(1, 4):
        got = await store.record_login_failure("100", "alice", now_ms=1000 + n, restart_before_ms=0)
        assert (got.count, got.last_failure_ms) == (n, 1000 + n)
    assert (await store.login_failures("100", "bob")) is None
    restarted = await store.record_login_failure("100", "alice", now_ms=9000, restart_before_ms=5000)
    assert restarted.count == 1
    await store.clear_login_failures("100", "alice")
    assert await store.login_failures("100", "alice") is None


async def test_sessions_are_found_by_key_hash_and_expired_ones_purged(store: Store) -> None:
    user = await store.create_user("100", "alice", "h", 1)
    assert user is not None
    old = Session(b"o" * 32, user.id, "100", created_at_ms=0, expires_at_ms=500)
    live = Session(b"l" * 32, user.id, "100", created_at_ms=0, expires_at_ms=5000)
    await store.create_session(old, purge_expired_before_ms=0)
    assert await store.find_session(b"o" * 32) == old
    await store.create_session(live, purge_expired_before_ms=1000)
    assert await store.find_session(b"o" * 32) is None
    assert await store.find_session(b"l" * 32) == live
    assert await store.find_session(b"x" * 32) is None


async def test_configurations_are_listed_oldest_first_per_client(store: Store) -> None:
    mine = [configuration("100", 10), configuration("100", 20, "invoice"), configuration("100", 30)]
    theirs = configuration("200", 15)
    for c in [mine[0], theirs, mine[1], mine[2]]:
        await store.create_configuration(c)
    assert await store.list_configurations("100") == mine
    assert await store.list_configurations("200") == [theirs]
    assert await store.list_configurations("300") == []
    assert await store.get_configuration("100", mine[1].id) == mine[1]
    assert await store.get_configuration("200", mine[1].id) is None


async def test_replace_changes_every_field_but_id_client_and_creation(store: Store) -> None:
    original = configuration("100", 10)
    await store.create_configuration(original)
    new = ConfigurationInput("invoice", Action.DELETE, "https://example.org/x", "", disabled=True)
    assert await store.replace_configuration("200", original.id, new, 99) is None
    replaced = await store.replace_configuration("100", original.id, new, 99)
    assert replaced == Configuration(
        original.id, "100", "invoice", Action.DELETE, "https://example.org/x", "", True, 10, 99
    )
    assert await store.get_configuration("100", original.id) == replaced
    assert await store.replace_configuration("100", new_id(), new, 99) is None


async def test_remove_only_the_clients_own(store: Store) -> None:
    c = configuration("100", 10)
    await store.create_configuration(c)
    assert not await store.remove_configuration("200", c.id, 1)
    assert await store.get_configuration("100", c.id) == c
    assert await store.remove_configuration("100", c.id, 1)
    assert not await store.remove_configuration("100", c.id, 1)
    assert await store.list_configurations("100") == []
