"""Database change capture (docs/capture.md), end to end: real application databases (an SQLite file, a
PostgreSQL database read through a replication slot or through triggers, a MariaDB database read through its
binlog) → the store (each kind: the ``store`` fixture of tests/integration/conftest.py) → webhooks to a real
receiver.

A story writes, waits until the webhooks it expects have arrived, and leaves the ``capturing`` block, which
stops the capture and drains the pipeline: after the block, what arrived is all that will, so the stories
count exactly (a change captured twice would show)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.capture_apps import KINDS, AppDb, app_database
from tests.integration.pipeline_helpers import add_configuration
from tests.receiver import Receiver
from tests.waiting import wait_until_async
from webhook_manager.capture import supervisor
from webhook_manager.capture.source import Source, source_for
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.capture.supervisor import prepare_source, run_capture
from webhook_manager.delivery.pipeline import Pipeline
from webhook_manager.domain.errors import CaptureBusy, CaptureError
from webhook_manager.settings import Settings
from webhook_manager.store import Store


@pytest.fixture(params=KINDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    with app_database(request.param, tmp_path) as app:
        yield app


@pytest.fixture
async def pipeline(store_url: str, store: Store) -> AsyncIterator[Pipeline]:
    settings = Settings(database_url=store_url, allow_private_endpoints=True, batch_linger_ms=0)
    p = Pipeline(store, settings)
    await p.egress.start()
    yield p
    await p.egress.close()


def set_up(spec: CaptureSpec) -> str:
    """--setup of a source that keeps nothing in the store (all but MySQL)."""
    source = source_for(spec)
    source.open()
    try:
        return source.setup().message
    finally:
        source.close()


@contextlib.asynccontextmanager
async def capturing(spec: CaptureSpec, store: Store, pipeline: Pipeline) -> AsyncIterator[asyncio.Task[None]]:
    """The capture of ``spec``, set up, running in the background while the block runs. Leaving the block
    stops it, then forms and sends everything it recorded: the receiver then holds every webhook this run
    of the capture makes, so what it holds can be counted exactly. (A batch read and not yet recorded when
    the capture stops is not acknowledged to the source, which gives it again at the next start.)"""
    await prepare_source(spec, lambda: contextlib.nullcontext(store))
    task = asyncio.create_task(run_capture(spec, store, "UTC", pipeline.events_recorded))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await pipeline.run_once()


async def delivered(pipeline: Pipeline, receiver: Receiver, events: int, path: str | None = None) -> None:
    """Run the pipeline until webhooks carrying at least ``events`` events (to ``path``) have arrived. (That
    no more arrive is counted after the ``capturing`` block.)"""

    async def arrived() -> bool:
        await pipeline.run_once()
        return sum(len(b["items"]) for b in receiver.bodies(path)) >= events

    async with asyncio.timeout(20):
        await wait_until_async(
            arrived, what=lambda: f"{events} events to {path or 'any path'}: {receiver.bodies(path)}"
        )


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How the claims of sources by ``run_capture`` ended: ``taken`` (the capture runs) or ``busy`` (another
    has the source, so it stands by)."""
    outcomes: Counter[str] = Counter()

    def watched(spec: CaptureSpec) -> Source:
        source = source_for(spec)
        claim = source.claim

        def claiming() -> str:
            try:
                key = claim()
            except CaptureBusy:
                outcomes["busy"] += 1
                raise
            outcomes["taken"] += 1
            return key

        source.claim = claiming  # type: ignore[method-assign]
        return source

    monkeypatch.setattr(supervisor, "source_for", watched)
    return outcomes


def items(bodies: list[Any]) -> list[dict[str, Any]]:
    return [item for body in bodies for item in body["items"]]


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def confirmed_past(app: AppDb, lsn: str) -> None:
    """Wait until the slot of ``app`` has been confirmed up to ``lsn``."""
    query = f"SELECT confirmed_flush_lsn >= '{lsn}' FROM pg_replication_slots WHERE slot_name = '{app.slot}'"

    async def confirmed() -> bool:
        return bool(await in_thread(app.query, query) == [(True,)])

    async with asyncio.timeout(10):
        await wait_until_async(confirmed, what=f"slot {app.slot} confirmed past {lsn}")


async def test_250_inserted_rows_make_webhooks_of_100_100_and_50(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await in_thread(app.create_product_table)
    await add_configuration(store, receiver.url("/status/200"), table="product", action="insert")
    async with capturing(app.spec(), store, pipeline):
        before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
        await in_thread(
            app.executemany,
            "INSERT INTO product (id, name, price) VALUES (?, ?, ?)",
            [(i, f"p{i}", i / 2) for i in range(1, 251)],
        )
        await delivered(pipeline, receiver, 250)
    after = datetime.now(UTC).replace(tzinfo=None)
    bodies = receiver.bodies()
    assert sorted(int(b["eventCount"]) for b in bodies) == [50, 100, 100]
    assert [(b["table"], b["action"], b["clientCode"]) for b in bodies] == [("product", "insert", "100")] * 3
    got = items(bodies)
    assert sorted(i["rowId"] for i in got) == list(range(1, 251))
    assert all(i["data"] is None for i in got)
    stamps = {datetime.strptime(i["timestamp"], "%Y-%m-%d %H:%M:%S") for i in got}
    assert all(before <= s <= after for s in stamps), (before, stamps, after)


async def test_bulk_update_and_delete_make_one_event_per_row(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await in_thread(app.create_product_table)
    await add_configuration(store, receiver.url("/ok/update"), table="product", action="update")
    await add_configuration(store, receiver.url("/ok/delete"), table="product", action="delete")
    async with capturing(app.spec(), store, pipeline):
        await in_thread(
            app.executemany,
            "INSERT INTO product (id, name, price) VALUES (?, ?, ?)",
            [(i, f"p{i}", 1.0) for i in range(1, 301)],
        )
        await in_thread(app.execute, "UPDATE product SET price = price + 1")
        await in_thread(app.execute, "DELETE FROM product WHERE id <= 120")
        await delivered(pipeline, receiver, 300, "/ok/update")
        await delivered(pipeline, receiver, 120, "/ok/delete")
    updates, deletes = receiver.bodies("/ok/update"), receiver.bodies("/ok/delete")
    assert sorted(i["rowId"] for i in items(updates)) == list(range(1, 301))
    assert sorted(i["rowId"] for i in items(deletes)) == list(range(1, 121))
    assert sorted(int(b["eventCount"]) for b in updates) == [100, 100, 100]
    assert receiver.bodies("/status/200") == []  # the 300 inserts matched no configuration: dropped


async def test_a_table_without_an_integer_key_gives_row_id_0_unless_a_column_is_named(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await in_thread(app.create_product_table)
    await in_thread(app.execute, "CREATE TABLE invoice (code text PRIMARY KEY, invoice_no integer)")
    await add_configuration(store, receiver.url("/ok/tag"), table="tag", action="insert")
    await add_configuration(store, receiver.url("/ok/invoice"), table="invoice", action="insert")
    spec = app.spec(("tag", "invoice"), row_id_columns={"invoice": "invoice_no"})
    async with capturing(spec, store, pipeline):
        await in_thread(app.executemany, "INSERT INTO tag (name, note) VALUES (?, ?)", [("a", "x"), ("b", None)])
        await in_thread(
            app.executemany,
            "INSERT INTO invoice (code, invoice_no) VALUES (?, ?)",
            [("A-1", 501), ("A-2", 502), ("A-3", None)],
        )
        await delivered(pipeline, receiver, 2, "/ok/tag")
        await delivered(pipeline, receiver, 3, "/ok/invoice")
    tags, invoices = receiver.bodies("/ok/tag"), receiver.bodies("/ok/invoice")
    assert [i["rowId"] for i in items(tags)] == [0, 0]
    assert [i["rowId"] for i in items(invoices)] == [501, 502, 0]


async def test_data_row_carries_the_new_row_and_null_for_delete(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await in_thread(app.create_product_table)
    for action in ("insert", "update", "delete"):
        await add_configuration(store, receiver.url(f"/ok/{action}"), table="product", action=action)
    async with capturing(app.spec(data="row"), store, pipeline):
        await in_thread(app.execute, ("INSERT INTO product (id, name, price) VALUES (?, ?, ?)", (7, 'say "hi"', 1.5)))
        await in_thread(app.execute, "UPDATE product SET price = 2.25, name = 'b' WHERE id = 7")
        await in_thread(app.execute, "DELETE FROM product WHERE id = 7")
        for action in ("insert", "update", "delete"):
            await delivered(pipeline, receiver, 1, f"/ok/{action}")
    inserted, updated, deleted = (receiver.bodies(f"/ok/{action}") for action in ("insert", "update", "delete"))
    assert [i["data"] for i in items(inserted)] == [{"id": 7, "name": 'say "hi"', "price": 1.5}]
    assert [i["data"] for i in items(updated)] == [{"id": 7, "name": "b", "price": 2.25}]
    assert [(i["rowId"], i["data"]) for i in items(deleted)] == [(7, None)]


async def test_changes_made_while_the_capture_is_stopped_arrive_once_it_runs_again(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await in_thread(app.create_product_table)
    await add_configuration(store, receiver.url("/status/200"), table="product", action="insert")
    spec = app.spec()
    async with capturing(spec, store, pipeline):
        await in_thread(app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(50)])
        await delivered(pipeline, receiver, 50)
    await in_thread(app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "b") for i in range(50, 130)])
    async with capturing(spec, store, pipeline):
        await delivered(pipeline, receiver, 130)
    bodies = receiver.bodies()
    assert sorted(i["rowId"] for i in items(bodies)) == list(range(130))


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres-logical", marks=pytest.mark.postgres),
        pytest.param("postgres-trigger", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
async def test_truncate_is_one_delete_with_row_id_0(
    kind: str, tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database(kind, tmp_path) as app:
        await in_thread(app.create_product_table)
        await add_configuration(store, receiver.url("/status/200"), table="product", action="delete")
        async with capturing(app.spec(data="row"), store, pipeline):
            await in_thread(app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])
            await in_thread(app.execute, "TRUNCATE product")
            await delivered(pipeline, receiver, 1)
        bodies = receiver.bodies()
        assert [(i["rowId"], i["data"]) for i in items(bodies)] == [(0, None)]


async def test_a_second_capture_of_one_source_stands_by_and_takes_over(
    app: AppDb, store: Store, pipeline: Pipeline, receiver: Receiver, claims: Counter[str]
) -> None:
    await in_thread(app.create_product_table)
    await add_configuration(store, receiver.url("/status/200"), table="product", action="insert")
    spec = app.spec()
    async with capturing(spec, store, pipeline) as first:
        async with asyncio.timeout(20):
            await wait_until_async(lambda: claims["taken"] == 1, what="the first capture to take the source")
        second = asyncio.create_task(run_capture(spec, store, "UTC", pipeline.events_recorded))
        try:
            async with asyncio.timeout(20):
                await wait_until_async(lambda: claims["busy"] >= 1, what="the second capture to stand by")
            await in_thread(
                app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(40)]
            )
            await delivered(pipeline, receiver, 40)
            first.cancel()  # the first process goes away
            await in_thread(
                app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "b") for i in range(40, 90)]
            )
            await delivered(pipeline, receiver, 90)
            assert not second.done()
            assert claims["taken"] == 2  # the second took over
        finally:
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second
    bodies = receiver.bodies()
    assert sorted(i["rowId"] for i in items(bodies)) == list(range(90))


async def test_sqlite_triggers_follow_a_column_added_while_capturing(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("sqlite", tmp_path) as app:
        await in_thread(app.create_product_table)
        await add_configuration(store, receiver.url("/status/200"), table="product", action="insert")
        async with capturing(app.spec(data="row"), store, pipeline):
            await in_thread(app.execute, "INSERT INTO product (id, name) VALUES (1, 'a')")
            await delivered(pipeline, receiver, 1)
            await in_thread(app.execute, "ALTER TABLE product ADD COLUMN colour text")

            async def triggers_know_the_column() -> bool:
                return "colour" in str(
                    await in_thread(app.query, "SELECT sql FROM sqlite_master WHERE type = 'trigger'")
                )

            async with asyncio.timeout(10):
                await wait_until_async(triggers_know_the_column)
            await in_thread(app.execute, "INSERT INTO product (id, name, colour) VALUES (2, 'b', 'red')")
            await delivered(pipeline, receiver, 2)
        bodies = receiver.bodies()
        assert [i["data"] for i in items(bodies)] == [
            {"id": 1, "name": "a", "price": None},
            {"id": 2, "name": "b", "price": None, "colour": "red"},
        ]


@pytest.mark.postgres
async def test_an_idle_slot_is_confirmed_past_other_writes(
    tmp_path: Path, store: Store, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhook_manager.capture import postgres_logical

    monkeypatch.setattr(postgres_logical, "HEARTBEAT_S", 0.2)
    with app_database("postgres-logical", tmp_path) as app:
        await in_thread(app.create_product_table)
        async with capturing(app.spec(), store, pipeline):
            await in_thread(
                app.execute, "CREATE TABLE other (id integer)", "INSERT INTO other SELECT generate_series(1, 20000)"
            )
            [(written,)] = await in_thread(app.query, "SELECT pg_current_wal_lsn()")
            await confirmed_past(app, written)


async def test_a_source_set_up_for_other_tables_is_not_taken_over(tmp_path: Path, app: AppDb) -> None:
    if app.is_mysql:
        pytest.skip("a MySQL source makes nothing on the server that another could take over")
    await in_thread(app.create_product_table)
    await in_thread(set_up, app.spec(("product", "tag")))
    with pytest.raises(CaptureError, match="run --teardown"):
        await in_thread(set_up, app.spec(("tag",)))
    if app.is_postgres:
        triggers_or_tables = f"SELECT count(*) FROM pg_publication_tables WHERE pubname = '{app.slot}'"
        if app.kind == "postgres-trigger":
            triggers_or_tables = f"SELECT count(*) FROM pg_trigger WHERE tgname LIKE '{app.slot}:%'"
        assert (await in_thread(app.query, triggers_or_tables))[0][0] in (2, 8)  # both tables still captured
    else:
        assert len(await in_thread(app.query, "SELECT name FROM sqlite_master WHERE type = 'trigger'")) == 6
        assert await in_thread(app.query, "PRAGMA journal_mode") == [("wal",)]


async def test_teardown_is_refused_while_a_capture_runs(
    app: AppDb, store: Store, pipeline: Pipeline, claims: Counter[str]
) -> None:
    await in_thread(app.create_product_table)
    async with capturing(app.spec(), store, pipeline):
        async with asyncio.timeout(20):
            await wait_until_async(lambda: claims["taken"] == 1, what="the capture to take the source")
        source = source_for(app.spec())
        await in_thread(source.open)
        try:
            with pytest.raises((CaptureError, CaptureBusy), match=r"stop it first|another process captures"):
                await in_thread(source.teardown)
        finally:
            await in_thread(source.close)


@pytest.mark.postgres
async def test_a_slot_of_another_database_is_not_taken(tmp_path: Path) -> None:
    with (
        app_database("postgres-logical", tmp_path / "0") as first,
        app_database("postgres-logical", tmp_path / "1") as second,
    ):
        for app in (first, second):
            await in_thread(app.create_product_table)
        await in_thread(set_up, first.spec())
        second.slot = first.slot
        with pytest.raises(CaptureError, match="is taken"):
            await in_thread(set_up, second.spec())


@pytest.mark.postgres
async def test_trigger_mode_never_fails_the_applications_writes(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("postgres-trigger", tmp_path) as app:
        role = f"wm_app_{app.slot[-6:]}"
        await in_thread(
            app.execute,
            "CREATE TABLE doc (id integer PRIMARY KEY, body json, big numeric)",
            f"CREATE ROLE {role} LOGIN",
            f"GRANT INSERT ON doc TO {role}",
        )
        await add_configuration(store, receiver.url("/status/200"), table="doc", action="insert")
        try:
            async with capturing(app.spec(("doc",), data="row"), store, pipeline):
                writer = AppDb(app.kind, app.where.replace("://postgres@", f"://{role}@"))
                # a role with only INSERT on the table; values jsonb would refuse; a number no double holds
                await in_thread(
                    writer.executemany,
                    "INSERT INTO doc (id, body, big) VALUES (?, ?, ?)",
                    [(1, '{"a": "\\u0000"}', 1), (2, '{"b": 1}', 10**400)],
                )
                await delivered(pipeline, receiver, 2)
        finally:
            await in_thread(app.execute, f"DROP OWNED BY {role}", f"DROP ROLE {role}")
        bodies = receiver.bodies()
        got = {i["rowId"]: i["data"] for i in items(bodies)}
        assert got[1] == {"id": 1, "body": {"a": "\x00"}, "big": 1}
        assert got[2]["body"] == {"b": 1}
        assert got[2]["big"] == str(10**400)  # kept as its text


@pytest.mark.postgres
async def test_logical_values_json_cannot_carry_do_not_stop_the_capture(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("postgres-logical", tmp_path) as app:
        await in_thread(app.execute, "CREATE TABLE doc (id integer PRIMARY KEY, body json, big numeric, f float8)")
        await add_configuration(store, receiver.url("/status/200"), table="doc", action="insert")
        async with capturing(app.spec(("doc",), data="row"), store, pipeline):
            await in_thread(
                app.executemany,
                "INSERT INTO doc (id, body, big, f) VALUES (?, ?, ?, ?)",
                [
                    (1, '{"a": 1e400}', 10**400, float("nan")),
                    (2, '{"b": [1]}', 2.5, 1.5),
                    (3, '{"n": [-12345678901234567890123]}', 12345678901234567890123, 0.5),
                ],
            )
            await delivered(pipeline, receiver, 3)
        bodies = receiver.bodies()
        got = {i["rowId"]: i["data"] for i in items(bodies)}
        assert got[1] == {"id": 1, "body": {"a": "1e400"}, "big": str(10**400), "f": "NaN"}
        assert got[2] == {"id": 2, "body": {"b": [1]}, "big": 2.5, "f": 1.5}
        # beyond 64 bits but within a double: their text too, not a float near them
        assert got[3] == {
            "id": 3,
            "body": {"n": ["-12345678901234567890123"]},
            "big": "12345678901234567890123",
            "f": 0.5,
        }


@pytest.mark.postgres
async def test_logical_a_transaction_ending_a_full_batch_is_confirmed(
    tmp_path: Path, store: Store, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhook_manager.capture import pump

    monkeypatch.setattr(pump, "BATCH_LIMIT", 10)
    with app_database("postgres-logical", tmp_path) as app:
        await in_thread(app.create_product_table)
        await add_configuration(store, "https://example.com/hook", table="product", action="insert")
        async with capturing(app.spec(), store, pipeline):
            await in_thread(
                app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(10)]
            )
            [(committed,)] = await in_thread(app.query, "SELECT pg_current_wal_lsn()")
            await confirmed_past(app, committed)


@pytest.mark.postgres
async def test_logical_capture_of_a_partitioned_table(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("postgres-logical", tmp_path) as app:
        await in_thread(
            app.execute,
            "CREATE TABLE parted (id integer PRIMARY KEY, v text) PARTITION BY RANGE (id)",
            "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100)",
            "CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (1000)",
        )
        await add_configuration(store, receiver.url("/status/200"), table="parted", action="insert")
        async with capturing(app.spec(("parted",)), store, pipeline):
            await in_thread(app.executemany, "INSERT INTO parted (id, v) VALUES (?, ?)", [(5, "a"), (500, "b")])
            await delivered(pipeline, receiver, 2)
        bodies = receiver.bodies()
        assert sorted(i["rowId"] for i in items(bodies)) == [5, 500]


@pytest.mark.parametrize(
    "kind",
    [pytest.param("postgres-logical", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)],
)
def test_a_transaction_cut_into_batches_resumes_after_what_was_taken(kind: str, tmp_path: Path) -> None:
    """The position of a batch that ends inside a transaction says how many of its changes were taken; a new
    source started from it gives exactly the rest."""
    with app_database(kind, tmp_path) as app:
        app.create_product_table()
        spec = app.spec()
        first = source_for(spec)
        first.open()
        try:
            first.setup()
            first.claim()
            first.resume(None)
            app.executemany("INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(1, 26)])
            batch = None
            deadline = time.monotonic() + 20
            while batch is None or not batch.changes:
                assert time.monotonic() < deadline
                batch = first.read(10, 0.5)
            assert [c[2] for c in batch.changes] == list(range(1, 11))
            assert not batch.position.endswith(":-1")  # inside the transaction
        finally:
            first.close()
        again = source_for(spec)
        again.open()
        try:
            again.claim()
            again.resume(batch.position)
            rest: list[Any] = []
            while not rest or not rest[-1].position.endswith(":-1"):
                assert time.monotonic() < deadline
                more = again.read(100, 0.5)
                if more is not None:
                    rest.append(more)
        finally:
            again.close()
        assert [c[2] for b in rest for c in b.changes] == list(range(11, 26))


@pytest.mark.mysql
async def test_mysql_a_change_logged_as_a_statement_is_one_delete_with_row_id_0(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("mysql", tmp_path) as app:
        await in_thread(app.create_product_table)
        await add_configuration(store, receiver.url("/ok/delete"), table="product", action="delete")
        await add_configuration(store, receiver.url("/ok/insert"), table="product", action="insert")
        async with capturing(app.spec(), store, pipeline):
            await in_thread(
                app.execute,
                "SET SESSION binlog_format = 'STATEMENT'",
                "INSERT INTO product (id, name) VALUES (1, 'a'), (2, 'b')",
            )
            await in_thread(app.execute, "INSERT INTO product (id, name) VALUES (3, 'c')")  # a new session: ROW
            await delivered(pipeline, receiver, 1, "/ok/delete")
            await delivered(pipeline, receiver, 1, "/ok/insert")
        deletes, inserts = receiver.bodies("/ok/delete"), receiver.bodies("/ok/insert")
        assert [(i["rowId"], i["data"]) for i in items(deletes)] == [(0, None)]
        assert [i["rowId"] for i in items(inserts)] == [3]


@pytest.mark.mysql
def test_mysql_savepoints_inside_a_transaction_keep_it_whole(tmp_path: Path) -> None:
    """MariaDB starts a transaction with a GTID event and no BEGIN; a SAVEPOINT inside it must not be taken
    for its end. Cut after two changes, the position must point at the transaction's start (with 2 taken),
    and a source resumed there gives the rest."""
    with app_database("mysql", tmp_path) as app:
        app.create_product_table()
        source = source_for(app.spec())
        source.open()
        try:
            source.claim()
            source.resume(None)
            [(file, start, *_)] = app.query("SHOW MASTER STATUS")
            app.execute(
                "INSERT INTO product (id, name) VALUES (1, 'a')",
                "SAVEPOINT s1",
                "INSERT INTO product (id, name) VALUES (2, 'b')",
                "ROLLBACK TO SAVEPOINT s1",
                "INSERT INTO product (id, name) VALUES (3, 'c')",
                "INSERT INTO product (id, name) VALUES (4, 'd')",
            )
            deadline = time.monotonic() + 20
            batch = None
            while batch is None or not batch.changes:
                assert time.monotonic() < deadline
                batch = source.read(2, 0.5)
        finally:
            source.close()
        assert [c[2] for c in batch.changes] == [1, 3]
        assert batch.position == f"{file}:{start}:2"
        again = source_for(app.spec())
        again.open()
        try:
            again.claim()
            again.resume(batch.position)
            rest = None
            while rest is None or not rest.changes:
                assert time.monotonic() < deadline
                rest = again.read(100, 0.5)
        finally:
            again.close()
        assert [c[2] for c in rest.changes] == [4]


@pytest.mark.mysql
async def test_mysql_xa_minimal_images_and_multi_table_statements(
    tmp_path: Path, store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    with app_database("mysql", tmp_path) as app:
        await in_thread(app.create_product_table)
        for action in ("insert", "update", "delete"):
            await add_configuration(store, receiver.url(f"/ok/{action}"), table="product", action=action)
        async with capturing(app.spec(), store, pipeline):
            # a two-phase transaction (its changes are taken when it is prepared)
            await in_thread(
                app.execute,
                "XA START 'wm1'",
                "INSERT INTO product (id, name) VALUES (1, 'a'), (2, 'b')",
                "XA END 'wm1'",
                "XA PREPARE 'wm1'",
                "XA COMMIT 'wm1'",
            )
            # an update logged with a minimal row image: the key is only in the before-image
            await in_thread(
                app.execute, "SET SESSION binlog_row_image = 'MINIMAL'", "UPDATE product SET name = 'z' WHERE id = 2"
            )
            # a multi-table DELETE logged as a statement
            await in_thread(
                app.execute,
                "SET SESSION binlog_format = 'STATEMENT'",
                "DELETE p FROM product p JOIN tag t ON t.name = p.name",
            )
            await delivered(pipeline, receiver, 2, "/ok/insert")
            await delivered(pipeline, receiver, 1, "/ok/update")
            await delivered(pipeline, receiver, 1, "/ok/delete")
        inserts, updates, deletes = (receiver.bodies(f"/ok/{action}") for action in ("insert", "update", "delete"))
        assert [i["rowId"] for i in items(inserts)] == [1, 2]
        assert [i["rowId"] for i in items(updates)] == [2]
        assert [i["rowId"] for i in items(deletes)] == [0]
