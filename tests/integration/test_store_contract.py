"""The store port's contract; runs unchanged against every adapter."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import orjson
import pytest

from tests.waiting import wait_until_async
from webhook_manager.delivery.batching import plan_batches
from webhook_manager.domain.errors import CaptureConflict, Conflict, LimitReached, NotFound
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import (
    IDEMPOTENCY_KEY_KEPT_MS,
    Action,
    Attempt,
    AttemptOutcome,
    Backlog,
    CapturedGroup,
    CapturedTable,
    CapturePosition,
    Configuration,
    ConfigurationCaps,
    ConfigurationInput,
    DueWebhook,
    EndpointReport,
    EventStatus,
    FailedWebhook,
    Formed,
    FormWebhooks,
    KeyedRecording,
    MinuteCounts,
    NewWebhook,
    PendingBundle,
    Session,
    Subject,
    WebhookStatus,
    WebhookTypes,
)
from webhook_manager.store import Store, open_store, sql_store


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


async def test_migrate_is_idempotent_and_safe_when_run_at_once(blank_store_url: str) -> None:
    stores = [await open_store(blank_store_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(applied, key=len) == [[], [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
        assert await stores[0].migrate() == []
        await stores[0].ping()
    finally:
        for s in stores:
            await s.close()


async def test_users_belong_to_clients_and_are_unique_per_client(store: Store) -> None:
    alice = await store.create_user("100", "alice", "hash-a", 1)
    assert alice is not None
    assert alice.client_code == "100"
    other = await store.create_user("200", "alice", "hash-b", 2)
    assert other is not None
    assert other.id != alice.id
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


async def test_a_user_is_found_by_id(store: Store) -> None:
    user = await store.create_user("100", "alice", "h", 1)
    assert user is not None
    assert await store.get_user(user.id) == user
    assert await store.get_user(user.id + 1000) is None


async def test_a_service_secret_is_made_once_and_kept(store: Store) -> None:
    first = await store.service_secret("identity-token-key", "one")
    assert first == "one"
    assert await store.service_secret("identity-token-key", "two") == "one"
    agreed = await asyncio.gather(*(store.service_secret("other", f"c{i}") for i in range(8)))
    assert len(set(agreed)) == 1


async def test_login_failures_are_counted_in_a_window_and_cleared(store: Store) -> None:
    assert await store.login_failures("100", "alice", since_ms=0) == 0
    for at in (1000, 2000, 3000):
        await store.record_login_failure("100", "alice", at, forget_before_ms=0)
    assert await store.login_failures("100", "alice", since_ms=0) == 3
    assert await store.login_failures("100", "alice", since_ms=2000) == 2  # a sliding window
    assert await store.login_failures("100", "bob", since_ms=0) == 0
    await store.record_login_failure("100", "bob", 9000, forget_before_ms=2500)  # forgets old ones of anyone
    assert await store.login_failures("100", "alice", since_ms=0) == 1
    await store.clear_login_failures("100", "alice")
    assert await store.login_failures("100", "alice", since_ms=0) == 0
    assert await store.login_failures("100", "bob", since_ms=0) == 1


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


async def test_configuration_caps_count_per_client_and_per_table_and_action(store: Store) -> None:
    caps = ConfigurationCaps(per_client=3, per_subject=2)
    for at in (1, 2):
        await store.create_configuration(configuration("100", at), caps=caps)
    with pytest.raises(LimitReached, match="max_configurations_per_subject"):
        await store.create_configuration(configuration("100", 3), caps=caps)
    invoice = configuration("100", 4, "invoice")
    await store.create_configuration(invoice, caps=caps)
    with pytest.raises(LimitReached, match="max_configurations_per_client"):
        await store.create_configuration(configuration("100", 5, "order"), caps=caps)
    await store.create_configuration(configuration("200", 6), caps=caps)  # another client has its own caps
    assert [c.created_at_ms for c in await store.list_configurations("100")] == [1, 2, 4]

    # Moving a configuration into a full table and action is refused and changes nothing; staying is fine.
    into_full = ConfigurationInput("product", Action.INSERT, "https://example.org/moved", "x")
    with pytest.raises(LimitReached, match="max_configurations_per_subject"):
        await store.replace_configuration("100", invoice.id, into_full, 9, caps=caps)
    assert await store.get_configuration("100", invoice.id) == invoice
    first = (await store.list_configurations("100"))[0]
    kept = ConfigurationInput("product", Action.INSERT, "https://example.org/new", "y", disabled=True)
    replaced = await store.replace_configuration("100", first.id, kept, 9, caps=caps)
    assert replaced is not None
    assert replaced.endpoint == "https://example.org/new"
    assert await store.replace_configuration("100", new_id(), kept, 9, caps=caps) is None


async def test_configuration_caps_hold_under_parallel_creates(store: Store) -> None:
    caps = ConfigurationCaps(per_client=5, per_subject=20)
    outcomes = await asyncio.gather(
        *(store.create_configuration(configuration("100", at), caps=caps) for at in range(12)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, LimitReached) for o in outcomes) == 7
    assert [o for o in outcomes if not isinstance(o, LimitReached | None)] == []
    assert len(await store.list_configurations("100")) == 5


async def test_remove_only_the_clients_own(store: Store) -> None:
    c = configuration("100", 10)
    await store.create_configuration(c)
    assert not await store.remove_configuration("200", c.id, 1)
    assert await store.get_configuration("100", c.id) == c
    assert await store.remove_configuration("100", c.id, 1)
    assert not await store.remove_configuration("100", c.id, 1)
    assert await store.list_configurations("100") == []


# the pipeline's verbs

ITEMS = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(250)])


def forming(max_events: int = 100) -> FormWebhooks:
    """A form step that puts every pending event into batches of ``max_events`` for each configuration."""

    def form(
        subject: Subject, bundles: list[PendingBundle], configurations: list[Configuration], complete: bool
    ) -> Formed:
        plan = plan_batches(bundles, max_events=max_events, linger_ms=0, now_ms=10**15, complete=complete)
        webhooks = [
            NewWebhook(new_id(), c.id, *subject, c.endpoint, c.secret, len(batch), orjson.dumps(batch), recorded)
            for batch, recorded in zip(plan.batches, plan.recorded_at_ms, strict=True)
            for c in configurations
        ]
        return Formed(webhooks, list(plan.advances.items()), plan.wake_at_ms)

    return form


async def test_events_are_kept_only_for_an_enabled_configuration(store: Store) -> None:
    assert not await store.record_events("100", "product", "insert", ITEMS, 250, 1)
    await store.create_configuration(configuration("100", 1))
    assert await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    assert not await store.record_events("100", "product", "update", ITEMS, 250, 2)
    assert not await store.record_events("200", "product", "insert", ITEMS, 250, 2)
    listed = await store.list_events("100", "product", "insert", 100)
    assert len(listed) == 100
    assert listed[0].row_id == 249
    assert listed[0].status == EventStatus.PENDING
    assert await store.list_events("200", "product", "insert", 100) == []


async def test_captured_events_and_their_position_are_stored_together(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    assert await store.capture_position("sqlite:abc") is None
    groups = [
        CapturedGroup("product", "insert", ITEMS, 250),
        CapturedGroup("product", "update", ITEMS, 250),  # no configuration: dropped, yet the position moves
    ]
    assert await store.record_captured("100", "sqlite:abc", None, "17", groups, 2) == 250
    assert await store.capture_position("sqlite:abc") == "17"
    assert await store.record_captured("100", "sqlite:abc", "17", "18", [], 3) == 0
    assert await store.capture_position("sqlite:abc") == "18"
    assert len(await store.list_events("100", "product", "insert", 100)) == 100
    assert await store.list_events("100", "product", "update", 100) == []


async def test_a_capture_that_read_from_a_stale_position_stores_nothing(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_captured("100", "pg:slot", None, "5:-1", [], 1)
    for expected in (None, "4:-1"):  # another process moved it (or made it) first
        with pytest.raises(CaptureConflict):
            await store.record_captured(
                "100", "pg:slot", expected, "9:-1", [CapturedGroup("product", "insert", ITEMS, 250)], 2
            )
    assert await store.capture_position("pg:slot") == "5:-1"
    assert await store.list_events("100", "product", "insert", 100) == []


async def test_forming_advances_events_with_their_webhooks(store: Store) -> None:
    c = configuration("100", 1)
    await store.create_configuration(c)
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    made, wake_at = await store.form_webhooks(forming(), 3)
    assert (made, wake_at) == (3, None)
    assert await store.form_webhooks(forming(), 4) == (0, None)  # nothing twice
    webhooks = await store.list_webhooks("100", None, None, 10)
    assert sorted(w.event_count for w in webhooks) == [50, 100, 100]
    assert {(w.status, w.tries, w.endpoint) for w in webhooks} == {(WebhookStatus.PENDING, 0, c.endpoint)}
    assert {e.status for e in await store.list_events("100", "product", "insert", 100)} == {EventStatus.PROCESSED}


async def test_forming_goes_in_runs_of_about_a_mebibyte_each_forming_a_batch_at_least(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    big = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": "x" * 4000} for i in range(250)])
    for at in range(4):  # 4 bundles of ~1 MB
        await store.record_events("100", "product", "insert", big, 250, at)
    made_at_once = []
    while True:
        made, wake_at = await store.form_webhooks(forming(), 10)
        made_at_once.append(made)
        if wake_at is None:
            break
        assert wake_at == 10  # the rest is due now
    # Each bundle is about a MiB: a run reads one or two, and each run forms something (it always reads a whole
    # batch's worth at least), so the runs end.
    assert sum(made_at_once) == 10
    assert len(made_at_once) >= 3
    assert all(made_at_once[:-1]), made_at_once
    assert {e.status for e in await store.list_events("100", "product", "insert", 1000)} == {EventStatus.PROCESSED}


async def test_a_failing_form_step_changes_nothing(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)

    def broken(*args: object) -> Formed:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.form_webhooks(broken, 3)
    assert await store.list_webhooks("100", None, None, 10) == []
    assert await store.form_webhooks(forming(), 4) == (3, None)


async def test_claims_lease_respect_the_per_endpoint_share_and_log_tries(store: Store) -> None:
    a, b = configuration("100", 1), configuration("100", 2)
    b = Configuration(b.id, "100", "product", Action.INSERT, "https://other.example/x", "s", False, 2, 2)
    await store.create_configuration(a)
    await store.create_configuration(b)
    await store.record_events("100", "product", "insert", ITEMS, 250, 3)
    await store.form_webhooks(forming(max_events=10), 3)  # 25 webhooks for each endpoint
    first = await store.claim_due_webhooks(10, 100, 10**6, {a.endpoint: 3}, 5)
    per_endpoint = Counter(w.endpoint for w in first)
    assert per_endpoint == {a.endpoint: 2, b.endpoint: 5}
    again = await store.claim_due_webhooks(10, 100, 10**6, {}, 100)
    assert len(again) == 50 - 7
    assert not {w.seq for w in first} & {w.seq for w in again}  # leased: not due
    outcomes = [AttemptOutcome(w.seq, 20, 5, 200, "", True, None) for w in first[:1]]
    outcomes += [AttemptOutcome(w.seq, 20, 5, 500, "HTTP 500", False, 5000) for w in first[1:2]]
    outcomes += [AttemptOutcome(w.seq, 20, 5, None, "connection refused", False, None) for w in first[2:3]]
    await store.record_attempts(outcomes)
    logged = {w.id: w for w in await store.list_webhooks("100", None, None, 100)}
    sent, retrying, failed = (logged[w.id] for w in first[:3])
    assert (sent.status, sent.tries, sent.processed_at_ms) == (WebhookStatus.SENT, 1, 25)
    assert (retrying.status, retrying.last_failure) == (WebhookStatus.RETRYING, "HTTP 500")
    assert (failed.status, failed.last_failure) == (WebhookStatus.FAILED, "connection refused")
    found = await store.get_webhook("100", first[1].id)
    assert found is not None
    assert found[2] == [Attempt(20, 5, 500, "HTTP 500")]
    assert [w.id for w in await store.claim_due_webhooks(5000, 100, 1000, {}, 100)] == [first[1].id]
    # Leases of a process that died are dropped at start.
    assert await store.release_leases(6000) == 50 - 2
    assert len(await store.claim_due_webhooks(6000, 100, 1000, {}, 100)) == 50 - 2


async def test_forming_tells_the_webhooks_it_stored_once_they_are_committed(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.create_configuration(configuration("100", 2, table="invoice"))
    await store.record_events("100", "product", "insert", ITEMS, 250, 3)
    await store.record_events("100", "invoice", "insert", ITEMS, 250, 3)
    told: list[list[str]] = []

    def stored(webhooks: Sequence[NewWebhook]) -> None:
        told.append([w.id for w in webhooks])

    assert await store.form_webhooks(forming(), 4, stored=stored) == (6, None)
    # each subject's round once committed on PostgreSQL; the run, one transaction, at its end on SQLite
    assert len(told) == (1 if store.single_process else 2)
    listed = {w.id for w in await store.list_webhooks("100", None, None, 100)}
    assert sorted(i for ids in told for i in ids) == sorted(listed)


async def test_backlog_counts_what_waits_and_claims_say_whose_and_how_old(store: Store) -> None:
    assert await store.backlog(10) == Backlog(0, None, 0, 0, 0, None, 0)
    c = configuration("100", 1)
    await store.create_configuration(c)
    await store.record_events("100", "product", "insert", ITEMS, 250, 3)
    await store.record_events("100", "product", "insert", ITEMS, 250, 7)
    waiting = await store.backlog(10)
    assert (waiting.pending_events, waiting.oldest_pending_event_ms, waiting.webhooks_pending) == (500, 3, 0)
    assert await store.form_webhooks(forming(), 20) == (5, None)
    assert await store.backlog(30) == Backlog(0, None, 5, 0, 5, 20, 0)
    first = await store.claim_due_webhooks(30, 2, 1000, {}, 10)
    assert {(w.client_code, w.configuration_id, w.tries) for w in first} == {("100", c.id, 0)}
    assert await store.backlog(40) == Backlog(0, None, 5, 0, 3, 20, 2)
    await store.record_attempts([AttemptOutcome(first[0].seq, 40, 5, 500, "HTTP 500", False, 5000)])
    assert await store.backlog(50) == Backlog(0, None, 4, 1, 3, 20, 1)
    # At 5000 the other lease has run out (1030) and the retry is due: all five are due, the retry has one try.
    rest = await store.claim_due_webhooks(5000, 100, 1000, {}, 10)
    assert len(rest) == 5
    assert {w.id: w.tries for w in rest}[first[0].id] == 1
    # Each batch keeps when its oldest event was recorded: 300 events from the bundle of 3, 200 from that of 7.
    assert sorted(w.recorded_at_ms or 0 for w in rest) == [3, 3, 3, 7, 7]


async def test_resend_and_removed_configurations(store: Store) -> None:
    c = configuration("100", 1)
    await store.create_configuration(c)
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    await store.form_webhooks(forming(), 3)
    (w, *_) = await store.claim_due_webhooks(10, 1, 1000, {}, 10)
    await store.record_attempts([AttemptOutcome(w.seq, 20, 5, 500, "HTTP 500", False, None)])
    assert await store.resend_webhook("200", w.id, 30) is None
    assert await store.resend_webhook("100", w.id, 30) == "failed"
    assert await store.resend_webhook("100", w.id, 31) == "pending"  # already resent: nothing changes
    assert await store.remove_configuration("100", c.id, 40)
    webhooks = await store.list_webhooks("100", None, None, 10)
    assert {(x.status, x.last_failure) for x in webhooks} == {(WebhookStatus.FAILED, "configuration removed")}
    assert await store.claim_due_webhooks(50, 10, 1000, {}, 10) == []


async def test_purge_deletes_only_what_is_finished_and_old(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    await store.form_webhooks(forming(), 3)
    due = await store.claim_due_webhooks(10, 2, 1000, {}, 10)
    await store.record_attempts([AttemptOutcome(w.seq, 20, 5, 200, "", True, None) for w in due])
    assert await store.purge_finished(3, 100) == 0  # processed at 3, finished at 25: not before 3
    assert await store.purge_finished(1000, 100) == 2 + 1  # two sent webhooks and the processed bundle
    left = await store.list_webhooks("100", None, None, 10)
    assert len(left) == 1
    assert left[0].status == WebhookStatus.PENDING


async def _rows(store_url: str, sql: str) -> list[tuple[object, ...]]:
    """What the store's own database holds, read past the port (for invariants the port does not show)."""
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            return db.execute(sql).fetchall()
    conn = await asyncpg.connect(store_url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_a_webhook_ended_at_claim_keeps_no_lease(store: Store, store_url: str) -> None:
    c = configuration("100", 1)
    await store.create_configuration(c)
    await store.record_events("100", "product", "insert", ITEMS, 1, 2)
    await store.form_webhooks(forming(), 3)
    [claimed] = await store.claim_due_webhooks(10, 10, 1000, {}, 10)  # leased until 1010, its try never logged
    disabled = ConfigurationInput(c.table, c.action, c.endpoint, c.secret, disabled=True)
    await store.replace_configuration("100", c.id, disabled, 20)  # in flight: left to its try
    assert await store.claim_due_webhooks(2000, 10, 1000, {}, 10) == []  # the lease ran out: ended instead
    [ended] = await store.list_webhooks("100", None, None, 10)
    assert (ended.id, ended.status, ended.last_failure) == (claimed.id, WebhookStatus.FAILED, "configuration disabled")
    assert await _rows(store_url, "SELECT seq FROM webhooks WHERE due_at IS NULL AND lease_until IS NOT NULL") == []


async def test_has_users_once_one_is_created(store: Store) -> None:
    assert not await store.has_users()
    await store.create_user("100", "alice", "h", 1)
    assert await store.has_users()


async def test_a_forgotten_capture_starts_afresh(store: Store) -> None:
    assert not await store.forget_capture("mysql:db:100:product")
    await store.record_captured("100", "mysql:db:100:product", None, "binlog.000001:4:-1", [], 1)
    assert await store.forget_capture("mysql:db:100:product")
    assert await store.capture_position("mysql:db:100:product") is None
    assert await store.record_captured("100", "mysql:db:100:product", None, "binlog.000002:4:-1", [], 2) == 0
    assert await store.capture_position("mysql:db:100:product") == "binlog.000002:4:-1"


async def test_webhook_types_are_what_capture_sources_describe_merged_per_table(store: Store) -> None:
    assert await store.webhook_types("100") == WebhookTypes([], [])
    rows_and_ids = [CapturedTable("product", True, True), CapturedTable("tag", False, True)]
    await store.describe_capture("sqlite:a", "100", rows_and_ids, 1)
    await store.describe_capture("postgres:b", "100", [CapturedTable("product", True, False)], 1)
    await store.describe_capture("mysql:c", "200", [CapturedTable("ledger", False, False)], 1)
    # product is watched twice: it has a row id in both, and the row as data in one only
    assert await store.webhook_types("100") == WebhookTypes(
        [CapturedTable("product", True, False), CapturedTable("tag", False, True)], []
    )
    assert await store.webhook_types("200") == WebhookTypes([CapturedTable("ledger", False, False)], [])
    await store.describe_capture("postgres:b", "100", [CapturedTable("invoice", True, False)], 2)  # replaced
    assert [t.table for t in (await store.webhook_types("100")).captured] == ["invoice", "product", "tag"]
    assert await store.forget_capture("sqlite:a")  # no position was stored: its tables were
    assert await store.webhook_types("100") == WebhookTypes([CapturedTable("invoice", True, False)], [])
    assert not await store.forget_capture("sqlite:a")


async def test_event_names_are_noted_once_per_client_and_capped(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for table, action in [("order", "confirm"), ("Order", "insert"), ("order", "confirm"), ("a", "delete")]:
        await store.note_event_name("100", table, action, 1)
    await store.note_event_name("200", "refund", "confirm", 1)
    other = await open_store(store_url)  # another process, which has noted nothing yet
    try:
        await other.note_event_name("100", "order", "confirm", 2)
        monkeypatch.setattr(sql_store, "EVENT_NAMES_PER_CLIENT", 4)
        for n in range(3):
            await other.note_event_name("100", f"t{n}", "insert", 2)
    finally:
        await other.close()
    assert (await store.webhook_types("100")).custom == [
        ("Order", "insert"),
        ("a", "delete"),
        ("order", "confirm"),
        ("t0", "insert"),
    ]
    assert await store.webhook_types("200") == WebhookTypes([], [("refund", "confirm")])


async def test_ping_answers_while_the_store_is_open(store: Store) -> None:
    await store.ping()


async def test_watch_wakes_on_what_other_processes_record(store: Store, store_url: str) -> None:
    seen: list[str] = []
    woken = asyncio.Event()

    def wake(what: str) -> None:
        seen.append(what)
        woken.set()

    async def until_woken_by(what: str, announce: Callable[[], Awaitable[object]]) -> None:
        # The listener connects in the background: announce again until it hears one.
        async with asyncio.timeout(10):
            while what not in seen:
                await announce()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await woken.wait()
                woken.clear()

    await store.watch(wake)
    other = await open_store(store_url)
    try:
        c = configuration("100", 1)
        await other.create_configuration(c)
        if store.single_process:
            # One process at a time uses such a store; its loops poll, and it has nobody to hear from.
            await other.record_events("100", "product", "insert", ITEMS, 1, 2)
            assert seen == []
            return
        await until_woken_by("events", lambda: other.record_events("100", "product", "insert", ITEMS, 1, 2))
        await other.form_webhooks(forming(), 3)
        [w] = await other.claim_due_webhooks(10, 1, 1000, {}, 10)
        await other.record_attempts([AttemptOutcome(w.seq, 20, 5, 500, "HTTP 500", False, None)])
        await until_woken_by("webhooks", lambda: other.resend_webhook("100", w.id, 30))
    finally:
        await other.close()


# reports (the status command)

HOUR_START = 10**9
"""The start of the reports' hour in the tests below: tries at or after it count."""


async def _tried_endpoints(store: Store) -> dict[str, list[str]]:
    """Configurations for endpoints a, b and c of one subject, four webhooks each, and tries of a and b: a is
    tried once before the hour (5000 ms, failed) and four times in it (10 ms and 20 ms sent; 1234 ms failed,
    then 30 ms failed for good); b twice in it (99 ms failed, 7 ms failed for good); c is never tried and its
    configuration is removed. Returns the ids of each endpoint's webhooks that ended failed, newest first."""
    endpoints = {name: f"https://{name}.example/hook" for name in "abc"}
    configurations = {}
    for at, (name, endpoint) in enumerate(endpoints.items()):
        c = configuration("100", at)
        configurations[name] = Configuration(c.id, "100", "product", Action.INSERT, endpoint, "s", False, at, at)
        await store.create_configuration(configurations[name])
    four = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(4)])
    await store.record_events("100", "product", "insert", four, 4, HOUR_START - 200_000)
    assert await store.form_webhooks(forming(max_events=1), HOUR_START - 100_000) == (12, None)
    t = HOUR_START
    claimed = await store.claim_due_webhooks(t - 50_000, 100, 10**6, {endpoints["c"]: 10}, 10)  # none of c
    a = [w for w in claimed if w.endpoint == endpoints["a"]]
    b = [w for w in claimed if w.endpoint == endpoints["b"]]
    assert (len(a), len(b), len(claimed)) == (4, 4, 8)
    await store.record_attempts(
        [
            AttemptOutcome(a[0].seq, t - 1, 5000, 503, "HTTP 503", False, t + 10**7),  # before the hour
            AttemptOutcome(a[1].seq, t, 10, 200, "", True, None),
            AttemptOutcome(a[2].seq, t + 100, 20, 200, "", True, None),
            AttemptOutcome(a[3].seq, t + 200, 1234, 500, "HTTP 500", False, t + 300),
            AttemptOutcome(b[0].seq, t + 50, 99, 500, "HTTP 500", False, t + 10**7),
            AttemptOutcome(b[1].seq, t + 300, 7, None, "connection refused", False, None),  # failed
        ]
    )
    assert [w.id for w in await store.claim_due_webhooks(t + 350, 100, 10**6, {endpoints["c"]: 10}, 10)] == [a[3].id]
    await store.record_attempts([AttemptOutcome(a[3].seq, t + 400, 30, 502, "HTTP 502", False, None)])  # failed
    assert await store.remove_configuration("100", configurations["c"].id, t + 500)  # fails c's four
    c_ids = [w.id for w in await store.list_webhooks("100", None, None, 100) if w.endpoint == endpoints["c"]]
    return {"a": [a[3].id], "b": [b[1].id], "c": c_ids}


async def test_the_endpoint_report_counts_the_tries_of_the_hour_with_percentiles_and_the_last_failure(
    store: Store,
) -> None:
    assert await store.endpoint_report(0) == []
    await _tried_endpoints(store)
    t = HOUR_START
    a = EndpointReport("https://a.example/hook", 4, 2, 20, 1200, t + 400, "HTTP 502")  # 1234 ms: 1200 (2 digits)
    b = EndpointReport("https://b.example/hook", 2, 0, 7, 99, t + 300, "connection refused")
    assert await store.endpoint_report(t) == [a, b]  # by endpoint; c was never tried
    assert a.success_rate == 0.5
    assert b.success_rate == 0.0
    # From the start of time the try before the hour counts too: five tries, the slowest 5000 ms.
    assert await store.endpoint_report(0) == [
        EndpointReport("https://a.example/hook", 5, 2, 30, 5000, t + 400, "HTTP 502"),
        b,
    ]
    # After the last failure of a: only its later tries count, and none of them failed.
    assert await store.endpoint_report(t + 401) == []
    assert await store.endpoint_report(t + 100) == [
        EndpointReport("https://a.example/hook", 3, 1, 30, 1200, t + 400, "HTTP 502"),
        EndpointReport("https://b.example/hook", 1, 0, 7, 7, t + 300, "connection refused"),
    ]


async def test_the_endpoint_report_gives_sent_only_endpoints_no_failure(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    await store.form_webhooks(forming(), 3)  # three webhooks
    due = await store.claim_due_webhooks(10, 10, 1000, {}, 10)
    durations = [150, 12_345, 99]
    await store.record_attempts(
        [AttemptOutcome(w.seq, 20, ms, 200, "", True, None) for w, ms in zip(due, durations, strict=True)]
    )
    assert await store.endpoint_report(20) == [EndpointReport("https://example.com/hook", 3, 3, 150, 12_000, None, "")]


async def test_failed_webhooks_are_listed_newest_first(store: Store) -> None:
    assert await store.failed_webhooks(20) == []
    failed = await _tried_endpoints(store)
    t = HOUR_START
    expected = [
        FailedWebhook(i, "100", "product", "insert", "https://c.example/hook", 0, "configuration removed", t + 500)
        for i in failed["c"]
    ]
    expected += [
        FailedWebhook(failed["a"][0], "100", "product", "insert", "https://a.example/hook", 2, "HTTP 502", t + 430),
        FailedWebhook(
            failed["b"][0], "100", "product", "insert", "https://b.example/hook", 1, "connection refused", t + 307
        ),
    ]
    assert await store.failed_webhooks(20) == expected  # sent and retrying webhooks are not failed
    assert await store.failed_webhooks(2) == expected[:2]
    assert await store.resend_webhook("100", failed["b"][0], t + 600) == "failed"
    assert await store.failed_webhooks(20) == expected[:-1]  # resent: pending again


async def test_the_capture_report_gives_each_sources_position_and_when_it_moved(store: Store) -> None:
    assert await store.capture_report() == []
    await store.record_captured("100", "sqlite:b", None, "17", [], 1000)
    await store.record_captured("200", "mysql:a", None, "binlog.000001:4:-1", [], 2000)
    await store.record_captured("100", "sqlite:b", "17", "18", [], 3000, committed_ms=2500)
    assert await store.capture_report() == [
        CapturePosition("mysql:a", "200", "binlog.000001:4:-1", 2000),
        CapturePosition("sqlite:b", "100", "18", 3000, 2500),
    ]
    # a later move that does not say when its newest change was committed keeps the time known
    await store.record_captured("100", "sqlite:b", "18", "19", [], 4000)
    [_, moved] = await store.capture_report()
    assert (moved.position, moved.committed_at_ms, moved.lag_ms) == ("19", 2500, 1500)


async def test_unapplied_migrations_tell_a_store_that_needs_migrate_without_changing_it(blank_store_url: str) -> None:
    store = await open_store(blank_store_url)
    try:
        assert await store.unapplied_migrations() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        tables = (
            "SELECT name FROM sqlite_master"
            if blank_store_url.startswith("sqlite:///")
            else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        assert await _rows(blank_store_url, tables) == []  # it read only
        await store.migrate()
        assert await store.unapplied_migrations() == []
    finally:
        await store.close()


# what a dashboard reads: the log's paging and status filter, one client's endpoint report, webhooks per minute


async def test_the_log_pages_with_before_and_filters_by_status(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.create_configuration(configuration("200", 1))
    await store.record_events("100", "product", "insert", ITEMS, 250, 2)
    await store.record_events("200", "product", "insert", orjson.dumps([{"rowId": 1}]), 1, 2)
    assert await store.form_webhooks(forming(max_events=1), 3) == (251, None)
    everything = await store.list_webhooks("100", None, None, 1000)
    log_order = [w.id for w in everything]  # newest first
    assert len(set(log_order)) == 250

    pages: list[list[str]] = []
    before = None
    while page := await store.list_webhooks("100", None, None, 100, before=before):
        pages.append([w.id for w in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [i for p in pages for i in p] == log_order  # each once, in order

    claimed = [w for w in await store.claim_due_webhooks(10, 20, 1000, {}, 20) if w.client_code == "100"]
    outcomes = [AttemptOutcome(w.seq, 20, 5, 200, "", True, None) for w in claimed[:3]]
    outcomes += [AttemptOutcome(w.seq, 20, 5, 500, "HTTP 500", False, 5000) for w in claimed[3:5]]
    outcomes += [AttemptOutcome(w.seq, 20, 5, None, "connection refused", False, None) for w in claimed[5:7]]
    await store.record_attempts(outcomes)

    def newest_first(webhooks: list[DueWebhook]) -> list[str]:
        return sorted((w.id for w in webhooks), key=log_order.index)

    async def listed(status: str | None, before: str | None = None, table: str | None = None) -> list[str]:
        return [w.id for w in await store.list_webhooks("100", table, None, 1000, status=status, before=before)]

    sent, retrying, failed = newest_first(claimed[:3]), newest_first(claimed[3:5]), newest_first(claimed[5:7])
    assert await listed("sent") == sent
    assert await listed("retrying") == retrying
    assert await listed("failed") == failed
    assert await listed("pending") == [i for i in log_order if i not in {*sent, *retrying, *failed}]
    assert await listed("failed", before=failed[0]) == failed[1:]  # both filters at once
    assert await listed("sent", before=log_order[-1]) == []  # nothing is older than the oldest
    assert await listed(None, before=log_order[0], table="invoice") == []
    assert await listed(None, before=log_order[0], table="product") == log_order[1:]
    [theirs] = await store.list_webhooks("200", None, None, 100)
    for unknown in (theirs.id, new_id()):  # another client's webhook is as unknown as one that never was
        with pytest.raises(NotFound):
            await store.list_webhooks("100", None, None, 100, before=unknown)
    assert await store.list_webhooks("200", None, None, 100, before=theirs.id) == []


async def test_the_endpoint_report_of_one_client_counts_only_the_tries_of_its_webhooks(store: Store) -> None:
    await _tried_endpoints(store)  # client 100's
    t = HOUR_START
    c = configuration("200", 1)
    theirs = Configuration(c.id, "200", "product", Action.INSERT, "https://a.example/hook", "s", False, 1, 1)
    await store.create_configuration(theirs)  # the same endpoint as client 100's a
    two = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(2)])
    await store.record_events("200", "product", "insert", two, 2, t + 500)
    assert await store.form_webhooks(forming(max_events=1), t + 500) == (2, None)
    claimed = await store.claim_due_webhooks(t + 550, 100, 10**6, {}, 10)
    assert [w.client_code for w in claimed] == ["200", "200"]  # nothing of client 100's is due
    await store.record_attempts(
        [
            AttemptOutcome(claimed[0].seq, t + 600, 40, 200, "", True, None),
            AttemptOutcome(claimed[1].seq, t + 610, 60, 404, "HTTP 404", False, None),
        ]
    )
    a = EndpointReport("https://a.example/hook", 4, 2, 20, 1200, t + 400, "HTTP 502")
    b = EndpointReport("https://b.example/hook", 2, 0, 7, 99, t + 300, "connection refused")
    assert await store.endpoint_report(t, client_code="100") == [a, b]  # as before client 200's tries
    assert await store.endpoint_report(t, client_code="200") == [
        EndpointReport("https://a.example/hook", 2, 1, 40, 60, t + 610, "HTTP 404")
    ]
    assert await store.endpoint_report(t, client_code="300") == []
    assert await store.endpoint_report(t + 601, client_code="200") == [
        EndpointReport("https://a.example/hook", 1, 0, 60, 60, t + 610, "HTTP 404")
    ]
    # Without a client, every client's tries count (the status command's report): 10, 20, 30, 40, 60, 1200 ms.
    assert await store.endpoint_report(t) == [
        EndpointReport("https://a.example/hook", 6, 3, 30, 1200, t + 610, "HTTP 404"),
        b,
    ]


MINUTE_MS = 60_000


async def test_webhooks_per_minute_count_the_clients_sent_and_failed_by_the_minute_they_ended(store: Store) -> None:
    m0 = (HOUR_START // MINUTE_MS + 1) * MINUTE_MS  # a minute's start
    mine = configuration("100", 1)
    await store.create_configuration(mine)
    await store.create_configuration(configuration("200", 1))
    ten = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(10)])
    await store.record_events("100", "product", "insert", ten, 10, m0 - 30_000)
    await store.record_events("200", "product", "insert", orjson.dumps([{"rowId": 1}]), 1, m0 - 30_000)
    assert await store.form_webhooks(forming(max_events=1), m0 - 20_000) == (11, None)
    claimed = await store.claim_due_webhooks(m0 - 10_000, 100, 1000, {}, 100)
    w = [c for c in claimed if c.client_code == "100"]
    [theirs] = [c for c in claimed if c.client_code == "200"]
    assert len(w) == 10
    await store.record_attempts(
        [  # a webhook ends when its last try does: at + duration
            AttemptOutcome(w[0].seq, m0 - 5_000, 10, 200, "", True, None),  # in the minute before
            AttemptOutcome(w[1].seq, m0 + 1_000, 500, 200, "", True, None),
            AttemptOutcome(w[2].seq, m0 + 59_000, 999, 200, "", True, None),  # ends at 59.999 s: minute 0
            AttemptOutcome(w[3].seq, m0 + 59_500, 500, 200, "", True, None),  # ends at 60 s: minute 1
            AttemptOutcome(w[4].seq, m0 + 61_000, 10, 500, "HTTP 500", False, None),  # failed for good
            AttemptOutcome(w[5].seq, m0 + 62_000, 10, 500, "HTTP 500", False, m0 + 10**7),  # retrying: not ended
            AttemptOutcome(w[6].seq, m0 + 3 * MINUTE_MS + 5, 10, 200, "", True, None),
            AttemptOutcome(theirs.seq, m0 + 1_000, 10, 200, "", True, None),  # another client's
        ]
    )  # w[7:] were claimed and never logged: in flight, not ended

    def minutes(*counts: tuple[int, int]) -> list[MinuteCounts]:
        return [MinuteCounts(m0 + i * MINUTE_MS, sent, failed) for i, (sent, failed) in enumerate(counts)]

    now = m0 + 3 * MINUTE_MS + 30_000
    assert await store.webhooks_per_minute("100", m0, now) == minutes((2, 0), (1, 1), (0, 0), (1, 0))
    assert await store.webhooks_per_minute("100", m0 + 30_000, now) == minutes((2, 0), (1, 1), (0, 0), (1, 0))
    assert await store.webhooks_per_minute("100", m0 - MINUTE_MS, m0 - 1) == [MinuteCounts(m0 - MINUTE_MS, 1, 0)]
    assert await store.webhooks_per_minute("100", m0 + MINUTE_MS, m0 + MINUTE_MS) == [
        MinuteCounts(m0 + MINUTE_MS, 1, 1)
    ]
    assert await store.webhooks_per_minute("200", m0, m0 + MINUTE_MS) == minutes((1, 0), (0, 0))
    assert await store.webhooks_per_minute("300", m0, now) == minutes((0, 0), (0, 0), (0, 0), (0, 0))
    # Removing the configuration ends its unsent webhooks failed, the retrying one and those whose lease ran out:
    # they count in the minute it went.
    assert await store.remove_configuration("100", mine.id, m0 + 2 * MINUTE_MS + 10)
    assert await store.webhooks_per_minute("100", m0, now) == minutes((2, 0), (1, 1), (0, 4), (1, 0))


# idempotency keys of POST /v1/event

DAY_MS = IDEMPOTENCY_KEY_KEPT_MS
BODY, OTHER_BODY = hashlib.sha256(b"the first body").digest(), hashlib.sha256(b"another body").digest()


async def _once(
    store: Store, client_code: str, key: str, body: bytes, at_ms: int, action: str = "insert"
) -> KeyedRecording:
    """Record the 250 events of ITEMS under ``key`` at ``at_ms``, keys of the last day counting."""
    return await store.record_events_once(
        client_code, key, body, "product", action, ITEMS, 250, at_ms, expired_before_ms=at_ms - DAY_MS
    )


async def _bundles(store_url: str) -> int:
    """How many recording calls stored events."""
    return len(await _rows(store_url, "SELECT seq FROM event_bundles"))


async def test_a_repeat_with_an_idempotency_key_gets_the_first_answer_and_stores_nothing(
    store: Store, store_url: str
) -> None:
    await store.create_configuration(configuration("100", 1))
    t = 10**9
    assert await _once(store, "100", "order-1", BODY, t) == KeyedRecording(250, 250, first=True, same_body=True)
    assert await _once(store, "100", "order-1", BODY, t + 1000) == KeyedRecording(250, 250, first=False, same_body=True)
    # the key with another body (other events): the first answer, told apart, and nothing stored
    assert await _once(store, "100", "order-1", OTHER_BODY, t + 2000, action="update") == KeyedRecording(
        250, 250, first=False, same_body=False
    )
    assert await _bundles(store_url) == 1
    assert len(await store.list_events("100", "product", "insert", 1000)) == 250
    assert await store.list_events("100", "product", "update", 1000) == []
    # keys are the client's own, and exact: another client's, or another spelling, is another key
    assert (await _once(store, "100", "Order-1", BODY, t + 3000)).first
    assert await _bundles(store_url) == 2
    # no configuration of client 200: its events are dropped, and that answer is kept too
    assert await _once(store, "200", "order-1", BODY, t) == KeyedRecording(250, 0, first=True, same_body=True)
    assert await _once(store, "200", "order-1", BODY, t + 1) == KeyedRecording(250, 0, first=False, same_body=True)
    await store.create_configuration(configuration("200", t + 2))
    assert await _once(store, "200", "order-1", BODY, t + 3) == KeyedRecording(250, 0, first=False, same_body=True)
    assert await _bundles(store_url) == 2
    # without a key nothing changes: each call stores its events
    assert await store.record_events("100", "product", "insert", ITEMS, 250, t + 4000)
    assert await store.record_events("100", "product", "insert", ITEMS, 250, t + 4000)
    assert await _bundles(store_url) == 4


async def test_an_idempotency_key_is_kept_a_day_then_counts_as_unused_and_is_purged(
    store: Store, store_url: str
) -> None:
    await store.create_configuration(configuration("100", 1))
    t = 10**9
    assert (await _once(store, "100", "k", BODY, t)).first
    assert not (await _once(store, "100", "k", OTHER_BODY, t + DAY_MS)).first  # a day old: still kept
    assert await _bundles(store_url) == 1
    renewed = await _once(store, "100", "k", OTHER_BODY, t + DAY_MS + 1)  # past the day: unused, any body
    assert renewed == KeyedRecording(250, 250, first=True, same_body=True)
    assert await _once(store, "100", "k", OTHER_BODY, t + DAY_MS + 2) == KeyedRecording(250, 250, False, True)
    assert not (await _once(store, "100", "k", BODY, t + DAY_MS + 3)).same_body  # the renewed key's body counts
    assert await _bundles(store_url) == 2

    assert (await _once(store, "100", "old", BODY, t)).first
    assert await store.purge_finished(0, 100) == 0  # without keys_before_ms keys stay
    assert await store.purge_finished(0, 100, keys_before_ms=t) == 0  # used at t: not before t
    assert await store.purge_finished(0, 100, keys_before_ms=t + 1) == 1  # "old"; "k" is from t + DAY_MS + 1
    assert await store.purge_finished(0, 100, keys_before_ms=t + 1) == 0
    assert (await _once(store, "100", "old", OTHER_BODY, t + 10)).first  # purged: unused
    assert not (await _once(store, "100", "k", BODY, t + DAY_MS + 4)).same_body  # kept
    for n in range(5):
        await _once(store, "100", f"many-{n}", BODY, t + 20)
    assert await store.purge_finished(0, 2, keys_before_ms=t + 21) == 2  # a few at a time
    assert await store.purge_finished(0, 100, keys_before_ms=t + 21) == 4  # the other three and "old"


async def test_calls_with_one_idempotency_key_at_once_store_the_events_once(store: Store, store_url: str) -> None:
    await store.create_configuration(configuration("100", 1))
    others = [await open_store(store_url) for _ in range(3)]  # as other processes would
    t = 10**9
    try:
        for n in range(5):
            outcomes = await asyncio.gather(*(_once(s, "100", f"k{n}", BODY, t) for s in [store, *others]))
            assert sorted(o.first for o in outcomes) == [False, False, False, True]
            assert {(o.received, o.recorded, o.same_body) for o in outcomes} == {(250, 250, True)}
    finally:
        for s in others:
            await s.close()
    assert await _bundles(store_url) == 5


async def test_a_call_that_finds_its_idempotency_key_taken_waits_for_the_taker_to_commit(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.single_process:
        return  # SQLite: one writer at a time, so a call's transaction never overlaps another's (the test above)
    # The calls wait on the test's lock below, however busy the machine: no lock_timeout for them.
    monkeypatch.setattr("webhook_manager.store.postgres.LOCK_TIMEOUT_MS", 60_000)
    await store.create_configuration(configuration("100", 1))
    first, second = await open_store(store_url), await open_store(store_url)
    blocker = await asyncpg.connect(store_url)
    t = 10**9
    try:
        async with blocker.transaction():
            # Whichever call takes the key then waits to store its events; the other waits for its transaction.
            await blocker.execute("LOCK TABLE event_bundles IN EXCLUSIVE MODE")
            calls = [asyncio.ensure_future(_once(s, "100", "k", BODY, t)) for s in (first, second)]

            async def both_waiting() -> bool:
                waits = await blocker.fetch(
                    "SELECT wait_event FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                return sorted(w[0] for w in waits) == ["relation", "transactionid"]

            async with asyncio.timeout(30):
                await wait_until_async(both_waiting, what="one call waiting for the table, the other for the key")
        outcomes = await asyncio.gather(*calls)
    finally:
        await blocker.close()
        await first.close()
        await second.close()
    assert sorted(o.first for o in outcomes) == [False, True]
    assert {(o.received, o.recorded, o.same_body) for o in outcomes} == {(250, 250, True)}
    assert await _bundles(store_url) == 1


# custom headers and a replaced secret's grace (migration 10)


def with_headers(c: Configuration, headers: dict[str, str], secret: str | None = None) -> Configuration:
    return Configuration(
        c.id,
        c.client_code,
        c.table,
        c.action,
        c.endpoint,
        c.secret if secret is None else secret,
        c.disabled,
        c.created_at_ms,
        c.updated_at_ms,
        headers=headers,
    )


async def test_a_configurations_custom_headers_are_stored_in_order_and_replaced(store: Store) -> None:
    headers = {"X-Tenant": "acme", "Authorization": "Bearer t1", "x-empty": ""}
    c = with_headers(configuration("100", 1), headers)
    await store.create_configuration(c)
    found = await store.get_configuration("100", c.id)
    assert found == c
    assert found is not None
    assert list(found.headers.items()) == list(headers.items())  # in the order given
    plain = configuration("100", 2)
    await store.create_configuration(plain)
    assert await store.get_configuration("100", plain.id) == plain  # none: an empty object
    assert await store.list_configurations("100") == [c, plain]

    other = ConfigurationInput(c.table, c.action, c.endpoint, c.secret, headers={"X-Other": "2"})
    replaced = await store.replace_configuration("100", c.id, other, 5)
    assert replaced is not None
    assert replaced.headers == {"X-Other": "2"}
    assert await store.get_configuration("100", c.id) == replaced
    without = ConfigurationInput(c.table, c.action, c.endpoint, "s3cret")
    none = await store.replace_configuration("100", c.id, without, 6)
    assert none is not None
    assert none.headers == {}  # a replacement sets every field, the headers too


async def test_a_new_secret_keeps_the_replaced_one_for_the_grace_and_then_forgets_it(store: Store) -> None:
    c = configuration("100", 1)  # secret "s3cret"
    await store.create_configuration(c)

    async def put(secret: str, at_ms: int, grace_ms: int = 1000) -> tuple[str | None, int | None]:
        new = ConfigurationInput(c.table, c.action, c.endpoint, secret)
        replaced = await store.replace_configuration("100", c.id, new, at_ms, secret_grace_ms=grace_ms)
        assert replaced is not None
        assert replaced.secret == secret
        assert await store.get_configuration("100", c.id) == replaced
        return replaced.previous_secret, replaced.previous_secret_until_ms

    assert await put("s3cret", 10) == (None, None)  # the same secret: nothing to keep
    assert await put("new", 100) == ("s3cret", 1100)
    assert await put("new", 200) == ("s3cret", 1100)  # the same again: the grace under way goes on
    assert await put("newer", 300) == ("new", 1300)  # only the secret replaced last is kept
    assert await put("newer", 1300) == (None, None)  # a grace that has ended is forgotten
    assert await put("other", 1400, grace_ms=0) == (None, None)  # no grace: the new one alone at once
    assert await put("", 1500) == ("other", 2500)
    assert await put("after-empty", 1600) == (None, None)  # an empty secret signs nothing: none to keep
    got = await store.get_configuration("100", c.id)
    assert got is not None
    assert got.secret_grace_until_ms(1600) is None
    assert await put("again", 1700) == ("after-empty", 2700)
    got = await store.get_configuration("100", c.id)
    assert got is not None
    assert (got.secret_grace_until_ms(2699), got.secret_grace_until_ms(2700)) == (2700, None)


async def test_a_claimed_webhook_carries_its_configurations_headers_and_secrets_as_they_are_now(store: Store) -> None:
    c = with_headers(configuration("100", 1), {"X-A": "1"}, secret="old")
    await store.create_configuration(c)
    await store.record_events("100", "product", "insert", ITEMS, 2, 2)
    await store.form_webhooks(forming(max_events=1), 3)  # two webhooks, their bodies made with "old"
    [first, second] = await store.claim_due_webhooks(10, 1, 1000, {}, 10) + await store.claim_due_webhooks(
        10, 1, 1000, {}, 10
    )
    assert (first.secret, first.extra_secrets, first.headers) == ("old", (), {"X-A": "1"})

    new = ConfigurationInput(c.table, c.action, c.endpoint, "new", headers={"X-B": "2"})
    assert await store.replace_configuration("100", c.id, new, 20, secret_grace_ms=1000) is not None
    await store.record_attempts(
        [AttemptOutcome(w.seq, 20, 1, 500, "HTTP 500", False, due) for w, due in ((first, 30), (second, 1030))]
    )
    [retried] = await store.claim_due_webhooks(30, 10, 1000, {}, 10)  # in the grace: both secrets
    assert retried.id == first.id
    assert (retried.secret, retried.extra_secrets, retried.headers) == ("new", ("old",), {"X-B": "2"})
    await store.record_attempts([AttemptOutcome(retried.seq, 30, 1, 200, "", True, None)])
    [late] = await store.claim_due_webhooks(1030, 10, 1000, {}, 10)  # the grace ended at 1020: the new one alone
    assert late.id == second.id
    assert (late.secret, late.extra_secrets, late.headers) == ("new", (), {"X-B": "2"})
    assert "X-B" not in repr(late)  # never in a log line that prints one
    assert "old" not in repr(retried)


# bulk resend


def rows_of(count: int) -> bytes:
    return orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(count)])


async def _fail_due(store: Store, at_ms: int) -> None:
    """Claim every webhook due at ``at_ms`` and fail its one try for good."""
    due = await store.claim_due_webhooks(at_ms, 10_000, 1000, {}, 10_000)
    await store.record_attempts([AttemptOutcome(w.seq, at_ms, 1, 500, "HTTP 500", False, None) for w in due])


async def _statuses(store: Store, client_code: str) -> dict[str, WebhookStatus]:
    return {w.id: w.status for w in await store.list_webhooks(client_code, None, None, 1000)}


async def test_a_bulk_resend_takes_the_clients_failed_webhooks_that_match_every_filter(store: Store) -> None:
    p = configuration("100", 1)
    i = configuration("100", 1, table="invoice")
    u = Configuration(new_id(), "100", "product", Action.UPDATE, "https://example.com/u", "s", False, 1, 1)
    theirs = configuration("200", 1)
    for c in (p, i, u, theirs):
        await store.create_configuration(c)
    await store.record_events("100", "product", "insert", rows_of(2), 2, 1000)
    await store.record_events("100", "invoice", "insert", rows_of(2), 2, 1000)
    await store.record_events("200", "product", "insert", rows_of(2), 2, 1000)
    assert await store.form_webhooks(forming(max_events=1), 1000) == (6, None)
    await _fail_due(store, 1010)
    await store.record_events("100", "product", "insert", rows_of(2), 2, 2000)
    await store.record_events("100", "product", "update", rows_of(2), 2, 2000)
    assert await store.form_webhooks(forming(max_events=1), 2000) == (4, None)
    await _fail_due(store, 2010)
    await store.record_events("100", "product", "insert", rows_of(3), 3, 3000)
    await store.form_webhooks(forming(max_events=1), 3000)
    sent, retrying, *_ = await store.claim_due_webhooks(3010, 2, 1000, {}, 10)
    await store.record_attempts(
        [
            AttemptOutcome(sent.seq, 3010, 1, 200, "", True, None),
            AttemptOutcome(retrying.seq, 3010, 1, 500, "HTTP 500", False, 10**9),
        ]
    )  # and a third stays pending: none of the three is failed
    listed = await store.list_webhooks("100", None, None, 100)
    failed = {(w.table, w.action, w.created_at_ms): set[str]() for w in listed if w.status == WebhookStatus.FAILED}
    for w in listed:
        if w.status == WebhookStatus.FAILED:
            failed[(w.table, w.action, w.created_at_ms)].add(w.id)
    assert sorted((key, len(ids)) for key, ids in failed.items()) == [
        (("invoice", "insert", 1000), 2),
        (("product", "insert", 1000), 2),
        (("product", "insert", 2000), 2),
        (("product", "update", 2000), 2),
    ]
    before = await _statuses(store, "100")
    resent: set[str] = set()

    async def resend(
        expected: set[str],
        table: str | None = None,
        action: str | None = None,
        configuration_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> None:
        filters = {"table": table, "action": action, "configuration_id": configuration_id}
        count = await store.resend_webhooks(
            "100", **filters, since_ms=since_ms, until_ms=until_ms, now_ms=5000, rate_per_s=100
        )
        assert count == len(expected), (filters, since_ms, until_ms)
        resent.update(expected)
        now = await _statuses(store, "100")
        assert {w for w, s in now.items() if s != before[w]} == resent, (filters, since_ms, until_ms)
        assert all(now[w] == WebhookStatus.PENDING for w in resent)

    await resend(set(), table="invoice", action="update")  # both filters at once: none is both
    await resend(set(), configuration_id=theirs.id)  # another client's configuration: none of this one's
    await resend(set(), until_ms=1000)  # until is exclusive
    await resend(failed[("invoice", "insert", 1000)], table="invoice")
    await resend(failed[("product", "update", 2000)], action="update")
    await resend(failed[("product", "insert", 1000)], configuration_id=p.id, until_ms=2000)
    await resend(failed[("product", "insert", 2000)], since_ms=2000, until_ms=2001)  # since is inclusive
    await resend(set())  # none failed is left
    assert set((await _statuses(store, "200")).values()) == {WebhookStatus.FAILED}  # not theirs
    assert await store.resend_webhooks("200", now_ms=5000, rate_per_s=100) == 2
    again = await store.claim_due_webhooks(10**6, 100, 1000, {}, 100)
    assert {w.id for w in again} >= resent
    assert {(w.round_tries, w.tries) for w in again if w.id in resent} == {(0, 1)}  # a new round, same ids


async def test_a_bulk_resend_makes_its_webhooks_due_at_the_rate_oldest_first_in_chunks(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_store, "RESEND_CHUNK", 7)  # chunks of 7: the pacing goes on across them
    for client_code in ("100", "200"):
        await store.create_configuration(configuration(client_code, 1))
        await store.record_events(client_code, "product", "insert", rows_of(25), 25, 1000)
    assert await store.form_webhooks(forming(max_events=1), 1000) == (50, None)
    await _fail_due(store, 1010)
    assert await store.resend_webhooks("100", now_ms=50_000, rate_per_s=100) == 25
    assert await store.resend_webhooks("200", now_ms=60_000, rate_per_s=3) == 25

    def of(client_code: str) -> str:
        return (
            "SELECT status, round_tries, due_at, lease_until FROM webhooks "
            f"WHERE client_code = '{client_code}' ORDER BY seq"
        )

    assert await _rows(store_url, of("100")) == [("pending", 0, 50_000 + k * 10, None) for k in range(25)]
    assert await _rows(store_url, of("200")) == [("pending", 0, 60_000 + k * 1000 // 3, None) for k in range(25)]


async def test_a_webhook_due_now_is_claimed_before_resent_ones_due_later(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_events("100", "product", "insert", rows_of(5), 5, 1000)
    await store.form_webhooks(forming(max_events=1), 1000)
    await _fail_due(store, 1010)
    oldest_first = [w.id for w in reversed(await store.list_webhooks("100", None, None, 100))]
    t = 10_000
    assert await store.resend_webhooks("100", now_ms=t, rate_per_s=100) == 5  # due at t, t+10, …, t+40
    await store.record_events("100", "product", "insert", rows_of(1), 1, t + 5)
    assert await store.form_webhooks(forming(max_events=1), t + 5) == (1, None)  # due at t+5
    [new] = [w.id for w in await store.list_webhooks("100", None, None, 1) if w.id not in oldest_first]
    # two due by t+25 go first: the first resent one and the new one, before the resent ones due later
    first = await store.claim_due_webhooks(t + 25, 100, 1000, {}, 2)
    assert {w.id for w in first} == {oldest_first[0], new}
    rest = await store.claim_due_webhooks(t + 100, 100, 1000, {}, 100)
    assert {w.id for w in rest} == set(oldest_first[1:])


async def test_an_outcome_written_twice_is_logged_and_counted_once(store: Store) -> None:
    await store.create_configuration(configuration("100", 1))
    await store.record_events("100", "product", "insert", ITEMS, 250, 3)
    await store.form_webhooks(forming(), 4)
    first, second = (await store.claim_due_webhooks(10, 2, 1000, {}, 10))[:2]
    failed = AttemptOutcome(first.seq, 20, 5, 500, "HTTP 500", False, 5000)
    sent = AttemptOutcome(second.seq, 20, 7, 200, "", True, None)
    await store.record_attempts([failed, sent])
    # the dispatcher writes them again: the first write committed, but the store went away before answering
    await store.record_attempts([failed, sent])
    for webhook, expected in ((first, [Attempt(20, 5, 500, "HTTP 500")]), (second, [Attempt(20, 7, 200, "")])):
        found = await store.get_webhook("100", webhook.id)
        assert found is not None
        record, _, attempts = found
        assert (record.tries, attempts) == (1, expected)
    # a later try of the retried webhook is logged as its second
    [again] = [w for w in await store.claim_due_webhooks(5000, 10, 1000, {}, 10) if w.seq == first.seq]
    await store.record_attempts([AttemptOutcome(again.seq, 5000, 3, 200, "", True, None)])
    found = await store.get_webhook("100", first.id)
    assert found is not None
    assert [a.at_ms for a in found[2]] == [20, 5000]
    assert found[0].tries == 2
