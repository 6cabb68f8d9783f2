"""The webhook-type catalogue (``GET /v1/webhook-type``, docs/api.md): what the capture sources of a client watch,
as each source kind finds it (and that what it says about ``rowId`` holds), gone at teardown; and the custom
event names a client sends, over real HTTP, each client seeing only its own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.capture_apps import KINDS, AppDb, app_database
from tests.conftest import LiveServer, serving
from tests.integration.pipeline_helpers import add_configuration
from tests.waiting import wait_until, wait_until_async
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.capture.supervisor import prepare_source, run_capture
from webhook_manager.domain.model import CapturedTable, WebhookTypes
from webhook_manager.settings import Settings
from webhook_manager.store import Store

# the HTTP tests: client 100 captures three tables of one SQLite file with the rows as data, client 200 one
# table of another file without them


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    first, second = tmp_path / "shop.db", tmp_path / "books.db"
    with contextlib.closing(sqlite3.connect(first)) as db:
        db.executescript(
            "CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE TABLE tag (name TEXT PRIMARY KEY);"
            "CREATE TABLE invoice (code TEXT PRIMARY KEY, number INTEGER);"
        )
    with contextlib.closing(sqlite3.connect(second)) as db:
        db.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY)")
    shop = CaptureSpec(
        kind="sqlite",
        database=str(first),
        client_code="100",
        tables=("product", "tag", "invoice"),
        data="row",
        row_id_columns={"invoice": "number"},
    )
    books = CaptureSpec(kind="sqlite", database=str(second), client_code="200", tables=("ledger",))
    return Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}", capture=(shop, books))


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with serving(settings, run_pipeline=True) as live:  # as `serve` does: the API, the pipeline and capture
        yield live


def types(http: httpx.Client, client: Any) -> Any:
    answer = http.get("/v1/webhook-type", headers=client.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def captured(http: httpx.Client, client: Any) -> Any:
    return wait_until(lambda: types(http, client)["captured"], what=f"client {client.code}'s captured tables")


def test_the_catalogue_lists_each_captured_table_with_what_its_events_carry(http: httpx.Client, login: Any) -> None:
    shop, books = login("100"), login("200")
    every = ["insert", "update", "delete"]
    assert captured(http, shop) == [
        {"table": "invoice", "actions": every, "rowIdGuaranteed": True, "content": "enriched"},
        {"table": "product", "actions": every, "rowIdGuaranteed": True, "content": "enriched"},
        {"table": "tag", "actions": every, "rowIdGuaranteed": False, "content": "enriched"},
    ]
    assert captured(http, books) == [
        {"table": "ledger", "actions": every, "rowIdGuaranteed": True, "content": "generic"}
    ]
    assert types(http, books)["custom"] == []


def test_custom_event_names_are_listed_by_table_each_client_its_own(http: httpx.Client, login: Any) -> None:
    shop, books = login("100"), login("200")
    sent = [("order", "confirm"), ("order", "insert"), ("product", "update"), ("order", "confirm")]
    for table, action in sent:  # no configuration matches: the names are listed all the same
        body = {"table": table, "action": action, "items": [{"rowId": 1}]}
        answer = http.post("/v1/event", json=body, headers=shop.headers)
        assert answer.json() == {"received": 1, "recorded": 0}
    refused = http.post("/v1/event", json={"table": "bad", "action": "insert", "items": []}, headers=shop.headers)
    assert refused.status_code == 400
    http.post("/v1/event", json={"table": "refund", "action": "confirm", "items": [{}]}, headers=books.headers)

    assert types(http, shop)["custom"] == [
        {"table": "order", "actions": ["insert", "confirm"]},
        {"table": "product", "actions": ["update"]},
    ]
    assert types(http, books)["custom"] == [{"table": "refund", "actions": ["confirm"]}]
    assert [t["table"] for t in captured(http, books)] == ["ledger"]  # none of client 100's tables


def test_the_catalogue_needs_a_session(http: httpx.Client) -> None:
    answer = http.get("/v1/webhook-type", headers={"clientCode": "100", "sessionKey": "x" * 48})
    assert answer.status_code == 401
    assert answer.json() == {"error": "the session key is not valid"}


# each source kind, in-process


@pytest.fixture(params=KINDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    with app_database(request.param, tmp_path) as app:
        yield app


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_a_source_says_which_tables_carry_row_ids_it_holds_and_teardown_forgets_them(
    app: AppDb, store: Store
) -> None:
    await in_thread(app.create_product_table)
    # tag's row id is a column outside its key: logical replication sends a delete's key columns only
    spec = app.spec(("product", "tag"), row_id_columns={"tag": "note"}, data="row")
    tag_row_ids = app.kind != "postgres-logical"
    for table in ("product", "tag"):
        for action in ("insert", "delete"):
            await add_configuration(store, "https://example.com/hook", table=table, action=action)
    await prepare_source(spec, lambda: contextlib.nullcontext(store))
    task = asyncio.create_task(run_capture(spec, store, "UTC"))
    try:
        async with asyncio.timeout(20):
            await wait_until_async(lambda: _captured(store), what="the capture to describe its tables")
        assert await store.webhook_types("100") == WebhookTypes(
            [CapturedTable("product", True, True), CapturedTable("tag", tag_row_ids, True)], []
        )
        await in_thread(
            app.execute,
            "INSERT INTO product (id, name) VALUES (5, 'p')",
            "INSERT INTO tag (name, note) VALUES ('t', '7')",
        )
        await in_thread(app.execute, "DELETE FROM product", "DELETE FROM tag")
        async with asyncio.timeout(20):
            await wait_until_async(lambda: _events(store, "tag", "delete"), what="the deletes to be recorded")
        assert [e.row_id for e in await store.list_events("100", "product", "insert", 10)] == [5]
        assert [e.row_id for e in await store.list_events("100", "product", "delete", 10)] == [5]
        assert [e.row_id for e in await store.list_events("100", "tag", "insert", 10)] == [7]
        assert [e.row_id for e in await store.list_events("100", "tag", "delete", 10)] == [7 if tag_row_ids else 0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if app.kind == "postgres-logical":  # a slot stays in use a moment after its reader has gone
        slot = f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{app.slot}'"
        async with asyncio.timeout(10):
            await wait_until_async(
                lambda: in_thread(lambda: app.query(slot) == [(None,)]), what="the slot to be released"
            )
    await prepare_source(spec, lambda: contextlib.nullcontext(store), teardown=True)
    assert await store.webhook_types("100") == WebhookTypes([], [])


async def _captured(store: Store) -> bool:
    return bool((await store.webhook_types("100")).captured)


async def _events(store: Store, table: str, action: str) -> bool:
    return bool(await store.list_events("100", table, action, 10))
